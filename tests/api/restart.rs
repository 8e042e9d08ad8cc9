use reqwest::{Method, StatusCode};
use serde_json::json;

use std::time::Duration;

use crate::common::{Options, TestApp, WebhookReceiver, eventually, expect};

const DEVICE: &str = "237600000003";
const CONTACT: &str = "237698000111";

/// `kill -9` in the middle of things: linked devices come back without a new QR,
/// queued deliveries go out, and nothing is delivered twice.
#[tokio::test]
async fn after_kill_9_and_restart_devices_are_restored_and_queued_deliveries_go_out_once() {
    // The receiver is down across the restart: with the default backoff its next attempt
    // could be minutes away; this story is about the restart, not the backoff.
    let options = Options { webhook_retry_max_delay: Duration::from_secs(1), ..Options::default() };
    let mut app = TestApp::start_process_with(options).await;
    let token = app.token_with_device(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    let hook = app.add_webhook(&token, &receiver.url).await;
    receiver.set_down(true);
    for n in 0..3 {
        let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": format!("before the crash {n}") });
        expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    }
    let log_path = format!("/api/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap());
    eventually("three queued deliveries", || async {
        let log = expect(app.bearer(Method::GET, &log_path, &token), StatusCode::OK).await;
        (log.as_array().unwrap().len() == 3).then_some(())
    })
    .await;

    app.kill_and_restart().await;

    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices[0]["device_id"], DEVICE, "the device is restored without a new QR");
    receiver.set_down(false);
    let received = receiver.wait_for(3).await;
    let mut texts: Vec<String> = received.iter().map(|r| r.json()["message"].as_str().unwrap().to_owned()).collect();
    texts.sort();
    assert_eq!(texts, ["before the crash 0", "before the crash 1", "before the crash 2"]);

    let body = json!({ "contact": CONTACT, "text": "after the restart" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token).json(&body),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    let incoming = json!({ "device_id": DEVICE, "from": CONTACT, "text": "after the restart too" });
    expect(app.request(Method::POST, "/sim/incoming").json(&incoming), StatusCode::OK).await;
    receiver.wait_for(4).await;
    app.quiet().await;
    let deliveries: std::collections::BTreeSet<String> =
        receiver.received().iter().map(|r| r.header("x-mxgate-delivery").to_owned()).collect();
    assert_eq!(deliveries.len(), 4, "one delivery per message, once the queues are empty");
    let log = expect(app.bearer(Method::GET, &log_path, &token), StatusCode::OK).await;
    assert_eq!(log.as_array().unwrap().len(), 4);
    assert!(log.as_array().unwrap().iter().all(|d| d["status"] == "delivered"), "{log}");
}
