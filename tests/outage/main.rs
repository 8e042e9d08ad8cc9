//! The homeserver itself stops (SIGSTOP: it holds every connection and answers nothing)
//! in the middle of incoming and outgoing traffic, then goes on. This target runs alone
//! with a Synapse of its own, so freezing it disturbs no other story.

#[path = "../common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, WebhookReceiver, eventually, expect, link_device};

const DEVICE: &str = "237600000201";
const CONTACT: &str = "237698000333";

fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Resumes Synapse even if the story fails half-way, so the run's other tests are not stuck.
struct Frozen(u32);

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

async fn incoming(app: &TestApp, text: &str) -> String {
    let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": text });
    let injected = expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    injected["message_id"].as_str().unwrap().to_owned()
}

fn received_ids(receiver: &WebhookReceiver) -> BTreeSet<String> {
    receiver.received().iter().filter_map(|r| r.json()["message_id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn synapse_stopped_for_30_s_mid_traffic_loses_nothing_and_sends_nothing_twice() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let path = format!("/api/v1/devices/{DEVICE}/message");
    let send = |n: usize| {
        let request =
            app.bearer(Method::POST, &path, &token).json(&json!({ "contact": CONTACT, "text": format!("out {n}") }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut incoming_ids = BTreeSet::from([incoming(&app, "before").await]);
    receiver.wait_for(1).await;

    let frozen = Frozen(app.synapse.pid().expect("the run's Synapse"));
    let before = futures::future::join_all((0..3).map(send));
    let outage = async {
        signal(frozen.0, "-STOP");
        for n in 0..20 {
            incoming_ids.insert(incoming(&app, &format!("during {n}")).await);
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(frozen);
    };
    let (answers, ()) = tokio::join!(
        async { futures::future::join_all([before, futures::future::join_all((3..6).map(send))]).await },
        outage
    );

    // Every send answered once the homeserver was back: sent, or pending and sent later.
    let events: Vec<String> = answers
        .iter()
        .flatten()
        .map(|a| a["results"][0]["event_id"].as_str().unwrap_or_else(|| panic!("{a}")).to_owned())
        .collect();
    assert_eq!(events.iter().collect::<BTreeSet<_>>().len(), 6, "{answers:?}");
    eventually("every incoming message at the webhook", || async {
        (received_ids(&receiver) == incoming_ids).then_some(())
    })
    .await;
    app.quiet().await;
    assert_eq!(received_ids(&receiver), incoming_ids);
    let deliveries: BTreeSet<String> =
        receiver.received().iter().map(|r| r.header("x-mxgate-delivery").to_owned()).collect();
    let statuses = receiver.received().iter().filter(|r| r.json()["type"] == "message.status").count();
    assert_eq!(deliveries.len() - statuses, incoming_ids.len(), "one delivery per incoming message");
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    let mut texts: Vec<&str> = outbox.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    texts.sort();
    assert_eq!(texts, ["out 0", "out 1", "out 2", "out 3", "out 4", "out 5"], "each send once");
}
