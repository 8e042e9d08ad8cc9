//! Two API processes on one database and one homeserver, as behind a load balancer: what
//! one started or was told, the other knows.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Replica, TestApp, WebhookReceiver, expect};

/// mxgate and a replica of its API, with `device` linked under a new token.
async fn two_processes(device: &str) -> (TestApp, Replica, String) {
    let app = TestApp::start().await;
    let replica = app.replica().await;
    let token = app.token_with_device(device).await;
    (app, replica, token)
}

#[tokio::test]
async fn a_ticket_redeemed_at_one_process_is_refused_at_another() {
    // A ticket one process issued opens a socket at the other, once.
    let app = TestApp::start().await;
    let replica = app.replica().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let link =
        expect(app.bearer(Method::POST, "/api/v1/devices", &token).json(&json!({ "platform": "wa" })), StatusCode::OK)
            .await;
    let url = link["qr_code_url"].as_str().unwrap().to_owned();
    let at_replica = url.replace(&app.base.replace("http", "ws"), &replica.base.replace("http", "ws"));
    assert_ne!(at_replica, url);
    let (first, _) = tokio_tungstenite::connect_async(at_replica.clone()).await.expect("the replica takes the ticket");
    drop(first);
    for url in [url, at_replica] {
        let reused = tokio_tungstenite::connect_async(url).await;
        assert!(
            matches!(reused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401),
            "{reused:?}"
        );
    }
}

#[tokio::test]
async fn a_send_through_a_process_the_homeserver_does_not_push_to_reports_sent() {
    // Synapse pushes the bridge's send status to one process; the send asked at the other
    // learns it from the send queue's record.
    const DEVICE: &str = "237600000201";
    let (app, replica, token) = two_processes(DEVICE).await;
    let send = app
        .http
        .post(format!("{}/api/v1/devices/{DEVICE}/message", replica.base))
        .bearer_auth(&token)
        .json(&json!({ "contact": "237698765432", "text": "through the other process" }));
    let sent = expect(send, StatusCode::OK).await;
    let result = &sent["results"][0];
    assert_eq!(result["status"], "sent", "{sent}");
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(outbox.as_array().unwrap().len(), 1, "{outbox}");
    assert_eq!(outbox[0]["message_id"], result["message_id"], "{outbox}");
}

#[tokio::test]
async fn deliveries_queued_while_two_processes_run_are_each_posted_once() {
    // Both processes run a delivery worker over the one queue; a claim is a conditional
    // update, so each delivery is attempted by one of them.
    const DEVICE: &str = "237600000202";
    let (app, replica, token) = two_processes(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let mut sent = BTreeSet::new();
    for n in 0..20 {
        let body = json!({ "device_id": DEVICE, "from": "237698000222", "text": format!("message {n}") });
        let injected = expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
        sent.insert(injected["message_id"].as_str().unwrap().to_owned());
    }
    receiver.wait_for(sent.len()).await;
    app.quiet().await;
    let received = receiver.received();
    let ids: BTreeSet<String> = received.iter().map(|r| r.json()["message_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, sent);
    assert_eq!(received.len(), sent.len(), "one attempt per delivery");
    drop(replica);
}
