//! Nothing lost, nothing sent twice: stories that break things on purpose (a `kill -9`, the
//! homeserver out of reach, a replayed send, a full-size transaction) and then count, once
//! the system is quiet, that every message arrived exactly once.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{
    Gate, Options, TestApp, WebhookReceiver, eventually, expect, expect_error, patiently, relay, wait_until,
};

const CONTACT: &str = "237698000222";

async fn incoming(app: &TestApp, device: &str, text: &str) -> String {
    let body = json!({ "device_id": device, "from": CONTACT, "text": text });
    let injected = expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    injected["message_id"].as_str().unwrap().to_owned()
}

/// A device linked under a new token whose webhook posts to a receiver of its own.
async fn linked_with_receiver(app: &TestApp, device: &str) -> (String, WebhookReceiver) {
    let token = app.token_with_device(device).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    (token, receiver)
}

/// The WhatsApp message ids the receiver got, and how many deliveries carried them.
fn received_ids(receiver: &WebhookReceiver) -> (BTreeSet<String>, usize) {
    let received = receiver.received();
    let ids = received.iter().filter_map(|r| r.json()["message_id"].as_str().map(str::to_owned)).collect();
    (ids, received.len())
}

/// Distinct deliveries (by `X-Mxgate-Delivery`): a receiver may see one twice, never two for one message.
fn distinct_deliveries(receiver: &WebhookReceiver) -> usize {
    receiver.received().iter().map(|r| r.header("x-mxgate-delivery").to_owned()).collect::<BTreeSet<_>>().len()
}

#[tokio::test]
async fn messages_accepted_before_a_kill_9_or_a_sigterm_reach_the_webhook_once_each() {
    const DEVICE: &str = "237600000101";
    let mut app = TestApp::start_process().await;
    let (_, receiver) = linked_with_receiver(&app, DEVICE).await;

    let mut sent = BTreeSet::new();
    let mut order = Vec::new();
    for n in 0..50 {
        order.push(incoming(&app, DEVICE, &format!("message {n}")).await);
    }
    // Accepted means committed: whatever was still on its way to Matrix survives this.
    app.kill_and_restart().await;
    for n in 50..55 {
        order.push(incoming(&app, DEVICE, &format!("message {n}")).await);
    }
    // A graceful stop in the middle of traffic: what was in flight is finished or resumed.
    app.terminate_and_restart().await;
    for n in 55..60 {
        order.push(incoming(&app, DEVICE, &format!("message {n}")).await);
    }
    sent.extend(order.iter().cloned());

    // Two restarts: a delivery in flight at the kill waits out its claim, and Synapse's
    // back-off towards mxgate has grown (it retries a stopped appservice after 2, 4, 8, … s):
    // quiet, patience for Synapse, then say what is missing and where things stand.
    app.quiet().await;
    wait_until(Duration::from_secs(120), || received_ids(&receiver).0 == sent).await;
    let (ids, _) = received_ids(&receiver);
    let missing: Vec<_> = sent.difference(&ids).collect();
    let health = expect(app.health(), StatusCode::OK).await;
    if !missing.is_empty() {
        // Where each one stopped: sent (0–49 before the kill, 50–54 before SIGTERM), bridged
        // into Matrix (its event), in the event log.
        let db = mxgate::db::Db::connect(&app.database_url).await.unwrap();
        let mut stops = Vec::new();
        for id in &missing {
            let n = order.iter().position(|o| o == *id);
            let event: Option<String> =
                sqlx::query_scalar("SELECT event_id FROM bridge_messages WHERE network_id = $1")
                    .bind(id.as_str())
                    .fetch_optional(&db.pool)
                    .await
                    .unwrap();
            let logged: Option<i64> = match &event {
                Some(event) => sqlx::query_scalar("SELECT seq FROM events WHERE event_id = $1")
                    .bind(event)
                    .fetch_optional(&db.pool)
                    .await
                    .unwrap(),
                None => None,
            };
            stops.push(format!("message {n:?} ({id}): Matrix event {event:?}, event log seq {logged:?}"));
        }
        let synapse_holds = app.synapse.appservice_backlog(&app.slot.pair.api_id()).await;
        panic!(
            "{} never reached the webhook: {stops:#?}; health {health}; Synapse holds {synapse_holds}",
            missing.len()
        );
    }
    assert_eq!(ids, sent, "exactly the messages sent, no other");
    assert_eq!(distinct_deliveries(&receiver), sent.len(), "one delivery per message");
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once_and_answers_the_same() {
    const DEVICE: &str = "237600000102";
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let path = format!("/api/v1/devices/{DEVICE}/message");
    let send = |key: &str, text: &str| {
        app.bearer(Method::POST, &path, &token)
            .header("Idempotency-Key", key)
            .json(&json!({ "contact": CONTACT, "text": text }))
    };

    let first = expect(send("order-1234", "Your order shipped"), StatusCode::OK).await;
    assert_eq!(first["results"][0]["status"], "sent", "{first}");
    let again = expect(send("order-1234", "Your order shipped"), StatusCode::OK).await;
    assert_eq!(again, first, "the first answer, again");
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(outbox.as_array().unwrap().len(), 1, "sent once: {outbox}");

    let other =
        expect_error(send("order-1234", "Something else"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(other["message"].as_str().unwrap().contains("different request"), "{other}");
    expect_error(send("", "empty key"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(send("with space", "bad key"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(outbox.as_array().unwrap().len(), 1, "refused requests sent nothing: {outbox}");

    // Another key is another message.
    let second = expect(send("order-1235", "Your order shipped"), StatusCode::OK).await;
    assert_ne!(second["results"][0]["event_id"], first["results"][0]["event_id"]);
}

/// 100 events of 64 KiB: the most a homeserver puts in one transaction.
fn full_transaction(room: &str, sender: &str) -> Value {
    let padding = "x".repeat(64 * 1024 - 512);
    let events: Vec<Value> = (0..100)
        .map(|n| {
            json!({
                "type": "m.room.message", "room_id": room, "sender": sender, "event_id": format!("$big{n}"),
                "origin_server_ts": 0, "content": { "msgtype": "m.text", "body": padding },
            })
        })
        .collect();
    json!({ "events": events })
}

#[tokio::test]
async fn a_full_size_transaction_is_taken_by_both_appservices_and_traffic_flows_after_it() {
    const DEVICE: &str = "237600000103";
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let body = full_transaction("!elsewhere:mxgate.test", "@someone:mxgate.test");
    assert!(body.to_string().len() > 6 * 1024 * 1024);
    let pair = app.slot.pair;
    for (base, hs_token) in [(&app.base, &pair.api.hs_token), (&app.bridge_url, &pair.bridge.hs_token)] {
        let url = format!("{base}/_matrix/app/v1/transactions/full-{}", rand_suffix());
        let answer = app.http.put(url).bearer_auth(hs_token).json(&body).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{base}: {}", answer.text().await.unwrap());
    }

    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let id = incoming(&app, DEVICE, "after the big one").await;
    receiver.wait_for(1).await;
    assert_eq!(received_ids(&receiver).0, BTreeSet::from([id]));
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token)
            .json(&json!({ "contact": CONTACT, "text": "and out" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
}

#[tokio::test]
async fn a_transaction_id_the_homeserver_hands_out_again_is_a_new_transaction() {
    // Synapse on SQLite numbers transactions on from the highest one it holds when it
    // starts: after a restart with none held, it uses ids again. Such a transaction carries
    // other events than the first under that id; a replay carries the same ones.
    const DEVICE: &str = "237600000105";
    let app = TestApp::start().await;
    let (_, receiver) = linked_with_receiver(&app, DEVICE).await;
    let id = incoming(&app, DEVICE, "through the homeserver").await;
    receiver.wait_for(1).await;
    let delivered = receiver.received()[0].json();
    let db = mxgate::db::Db::connect(&app.database_url).await.unwrap();
    let room: String = sqlx::query_scalar("SELECT room_id FROM bridge_messages WHERE network_id = $1")
        .bind(&id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let event = |n: u32| {
        json!({
            "event_id": format!("$reused-{n}-{}", rand_suffix()),
            "room_id": room,
            "sender": delivered["from"],
            "type": "m.room.message",
            "origin_server_ts": 1_700_000_000_000u64 + u64::from(n),
            "content": { "msgtype": "m.text", "body": format!("pushed {n}") },
        })
    };
    let (first, second) = (event(1), event(2));
    let push = |events: Vec<Value>| {
        let url = format!("{}/_matrix/app/v1/transactions/7", app.base);
        app.http.put(url).bearer_auth(&app.slot.pair.api.hs_token).json(&json!({ "events": events })).send()
    };
    for events in [vec![first.clone()], vec![first.clone()], vec![second.clone()]] {
        assert_eq!(push(events).await.unwrap().status(), StatusCode::OK);
    }

    receiver.wait_for(3).await;
    app.quiet().await;
    let ids: Vec<String> = receiver.received().iter().map(|r| r.json()["id"].as_str().unwrap().to_owned()).collect();
    let expected =
        [&delivered["id"], &first["event_id"], &second["event_id"]].map(|id| id.as_str().unwrap().to_owned());
    assert_eq!(ids.iter().collect::<BTreeSet<_>>(), expected.iter().collect(), "the replay is not a new one");
    assert_eq!(ids.len(), 3, "each event once: {ids:?}");
}

#[tokio::test]
async fn a_message_whose_push_the_homeserver_lost_still_reaches_the_webhook_once() {
    // Synapse can strand a transaction (src/appservice/catch_up.rs says how); here the
    // relay in front of the API answers Synapse's push itself, so it is lost for certain.
    const DEVICE: &str = "237600000106";
    let app = TestApp::start().await;
    let (_, receiver) = linked_with_receiver(&app, DEVICE).await;
    let api = &app.slot.pair.api.url;

    relay::lose(api);
    let id = incoming(&app, DEVICE, "pushed to nobody").await;
    patiently("Synapse's push of the message", Duration::from_secs(60), || async {
        relay::lost(api).iter().any(|body| body.contains(&id)).then_some(())
    })
    .await;
    relay::point(api, app.base.trim_start_matches("http://").parse().unwrap());

    // The API finds it missing from its event log and fetches it from the homeserver.
    wait_until(Duration::from_secs(120), || !receiver.received().is_empty()).await;
    app.quiet().await;
    let (ids, deliveries) = received_ids(&receiver);
    assert_eq!(ids, BTreeSet::from([id]));
    assert_eq!(deliveries, 1, "once");
}

#[tokio::test]
async fn a_send_whose_push_to_the_bridge_the_homeserver_lost_still_goes_out_once() {
    // The API hands its send to the bridge's queue itself; the homeserver's push to the
    // bridge, lost here for certain, is not what the send waits on. Pushed late, it finds
    // the send queued and sends nothing again.
    const DEVICE: &str = "237600000108";
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let bridge = &app.slot.pair.bridge.url;

    relay::lose(bridge);
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token)
            .json(&json!({ "contact": CONTACT, "text": "past the homeserver's push" })),
        StatusCode::OK,
    )
    .await;
    let result = &sent["results"][0];
    assert_eq!(result["status"], "sent", "{sent}");
    let event_id = result["event_id"].as_str().unwrap().to_owned();
    patiently("Synapse's push of the send to the bridge", Duration::from_secs(60), || async {
        relay::lost(bridge).iter().any(|body| body.contains(&event_id)).then_some(())
    })
    .await;
    relay::point(bridge, app.bridge_url.trim_start_matches("http://").parse().unwrap());
    for (n, body) in relay::lost(bridge).into_iter().enumerate() {
        let url = format!("{}/_matrix/app/v1/transactions/late-{n}-{}", app.bridge_url, rand_suffix());
        let answer = app.http.put(url).bearer_auth(&app.slot.pair.bridge.hs_token).body(body).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }

    app.quiet().await;
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(outbox.as_array().unwrap().len(), 1, "sent once: {outbox}");
    assert_eq!(outbox[0]["message_id"], result["message_id"], "{outbox}");
}

fn rand_suffix() -> String {
    mxgate::secret::random_hex(6)
}

#[tokio::test]
async fn mxgate_started_while_the_homeserver_is_down_becomes_healthy_when_it_is_up() {
    let gate = Gate::start(&crate::common::synapse().url, false).await;
    let app =
        TestApp::start_process_with(Options { homeserver_url: Some(gate.url.clone()), ..Options::default() }).await;
    let health = app.health().send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["homeserver"]["ok"], false, "{health}");

    gate.open();
    eventually("a healthy mxgate", || async {
        let health = app.request(Method::GET, "/health").send().await.ok()?;
        (health.status() == StatusCode::OK).then_some(())
    })
    .await;
    // The bridge registered its bot meanwhile: linking and sending work.
    const DEVICE: &str = "237600000104";
    let token = app.token_with_device(DEVICE).await;
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token)
            .json(&json!({ "contact": CONTACT, "text": "up at last" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
}

#[tokio::test]
async fn a_homeserver_outage_delays_messages_and_loses_none() {
    const DEVICE: &str = "237600000107";
    let gate = Gate::start(&crate::common::synapse().url, true).await;
    let app = TestApp::with(Options { homeserver_url: Some(gate.url.clone()), ..Options::default() }).await;
    let (token, receiver) = linked_with_receiver(&app, DEVICE).await;
    let before = incoming(&app, DEVICE, "before").await;
    receiver.wait_for(1).await;

    gate.close();
    let mut sent = BTreeSet::from([before]);
    for n in 0..10 {
        sent.insert(incoming(&app, DEVICE, &format!("during the outage {n}")).await);
    }
    let refused = expect_error(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token)
            .json(&json!({ "contact": CONTACT, "text": "not now" })),
        StatusCode::SERVICE_UNAVAILABLE,
        "homeserver_unavailable",
    )
    .await;
    assert!(refused["message"].as_str().unwrap().contains("homeserver"), "{refused}");

    gate.open();
    eventually("every message at the webhook", || async { (received_ids(&receiver).0 == sent).then_some(()) }).await;
    app.quiet().await;
    assert_eq!(received_ids(&receiver).0, sent);
    assert_eq!(distinct_deliveries(&receiver), sent.len(), "one delivery per message");
    let outbox = expect(app.request(Method::GET, &format!("/sim/outbox?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(outbox, json!([]), "the refused send went nowhere");
}
