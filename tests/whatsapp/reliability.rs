//! Nothing lost, nothing sent twice, on the real connector: mxgate's whatsapp-rust client
//! acks a message to wa-sim only once the inbox has it, and wa-sim, like WhatsApp, keeps
//! what was not acked and delivers it again on the next login.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatsapp_rust::Jid;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::common::{Gate, Options, Phone, TestApp, eventually, expect, expect_error, patiently, routed, wait_until};
use crate::{CONTACT, DEVICE, linked, send_path, text_of};

#[tokio::test]
async fn a_contact_writing_through_two_kill_9s_reaches_the_webhook_once_per_message() {
    const MESSAGES: usize = 200;
    let mut linked = linked(TestApp::start_process_with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let client = contact.client.clone();
    let writer = tokio::spawn(async move {
        let mut sent = BTreeSet::new();
        for n in 0..MESSAGES {
            let message = wa::Message { conversation: Some(format!("message {n}")), ..Default::default() };
            sent.insert(client.send_message(Jid::pn(DEVICE), message).await.expect("wa-sim takes it").message_id);
        }
        sent
    });
    for seen in [MESSAGES / 4, MESSAGES / 2] {
        let arrived = || async { (linked.events_by_message().len() >= seen).then_some(()) };
        patiently("messages at the webhook", Duration::from_secs(120), arrived).await;
        linked.app.kill_and_restart().await;
    }
    let sent = writer.await.unwrap();

    let arrived = || linked.events_by_message().keys().cloned().collect::<BTreeSet<_>>();
    // Quiet: wa-sim holds nothing unacked for mxgate's device, and mxgate's queues are empty.
    let device = linked.sim.account(DEVICE).unwrap().devices.into_iter().max().unwrap();
    linked
        .sim
        .wait_until(Duration::from_secs(60), |sim| sim.pending_for(DEVICE, device).is_ok_and(|n| n == 0))
        .await
        .expect("mxgate's device acks everything");
    linked.app.quiet().await;
    // Synapse may still be pushing; the assertion below says what is missing if it never comes.
    wait_until(Duration::from_secs(120), || arrived() == sent).await;
    let missing: Vec<_> = sent.difference(&arrived()).cloned().collect();
    let health = expect(linked.app.health(), StatusCode::OK).await;
    let held: Vec<_> =
        linked.sim.account(DEVICE).unwrap().devices.iter().map(|d| linked.sim.pending_for(DEVICE, *d)).collect();
    let synapse_holds = linked.app.synapse.appservice_backlog(&linked.app.slot.pair.api_id()).await;
    assert!(
        missing.is_empty(),
        "{} missing once quiet: {missing:?}; health {health}; wa-sim holds {held:?}; Synapse holds {synapse_holds}",
        missing.len()
    );
    let events = linked.events_by_message();
    assert_eq!(events.keys().cloned().collect::<BTreeSet<_>>(), sent, "exactly the messages the contact sent");
    let repeated: Vec<_> = events.iter().filter(|(_, events)| events.len() > 1).collect();
    assert!(repeated.is_empty(), "one Matrix event per message: {repeated:?}");
    let deliveries: BTreeSet<String> =
        linked.receiver.received().iter().map(|r| r.header("x-mxgate-delivery").to_owned()).collect();
    let statuses = linked.receiver.received().iter().filter(|r| r.json()["type"] != "m.text").count();
    assert!(deliveries.len() >= MESSAGES && deliveries.len() - MESSAGES <= statuses, "one delivery per message");
}

#[tokio::test]
async fn a_paced_batch_longer_than_the_homeserver_push_timeout_goes_out_once() {
    // 80 sends 0.8 s apart outlive Synapse's 60 s push: before the send queue, the pushed
    // transaction timed out, came again, and its messages went out twice.
    const MESSAGES: usize = 80;
    let paced = async |options: Options| TestApp::with(Options { send_interval_ms: 800, ..options }).await;
    let linked = linked(paced).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let requests = (0..MESSAGES).map(|n| {
        let body = json!({ "contact": CONTACT, "text": format!("batch {n}") });
        expect(linked.app.bearer(Method::POST, &send_path(), &linked.token).json(&body), StatusCode::OK)
    });
    let answers = futures::future::join_all(requests).await;
    let events: BTreeSet<&str> = answers.iter().map(|a| a["results"][0]["event_id"].as_str().unwrap()).collect();
    assert_eq!(events.len(), MESSAGES, "one event per request");

    let mut received = BTreeMap::<String, usize>::new();
    while received.len() < MESSAGES {
        let event = contact.wait_for("a message", |e| matches!(e, Event::Messages(_))).await;
        let Event::Messages(batch) = &*event else { unreachable!() };
        for message in batch.iter() {
            assert!(text_of(&message.message).is_some_and(|t| t.starts_with("batch ")));
            *received.entry(message.info.id.to_string()).or_default() += 1;
        }
    }
    linked.app.quiet().await;
    assert!(received.values().all(|&n| n == 1), "each message once: {received:?}");
    let routed = routed(&linked.sim, DEVICE, CONTACT);
    assert_eq!(routed.keys().map(|(id, _)| id).collect::<BTreeSet<_>>().len(), MESSAGES);
    assert!(routed.values().all(|&n| n == 1), "wa-sim routed each message once per device: {routed:?}");
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once_and_answers_the_same() {
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let send = |key: &str, text: &str| {
        linked.send(DEVICE).header("Idempotency-Key", key).json(&json!({ "contact": CONTACT, "text": text }))
    };

    let first = expect(send("order-1234", "Your order shipped"), StatusCode::OK).await;
    assert_eq!(first["results"][0]["status"], "sent", "{first}");
    let again = expect(send("order-1234", "Your order shipped"), StatusCode::OK).await;
    assert_eq!(again, first, "the first answer, again");
    let other =
        expect_error(send("order-1234", "Something else"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(other["message"].as_str().unwrap().contains("different request"), "{other}");
    let second = expect(send("order-1235", "Your order shipped"), StatusCode::OK).await;
    assert_eq!(second["results"][0]["status"], "sent", "{second}");

    // The device's queue sends in order: a second copy of the first would come between them.
    let ids = [&first, &second].map(|a| a["results"][0]["message_id"].as_str().unwrap().to_owned());
    for id in &ids {
        assert_eq!(&contact.next_message().await.info.id.to_string(), id);
    }
    linked.app.quiet().await;
    let routed = routed(&linked.sim, DEVICE, CONTACT);
    assert_eq!(routed.keys().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>(), BTreeSet::from(ids), "{routed:?}");
    assert!(routed.values().all(|&n| n == 1), "each message once per device: {routed:?}");
}

#[tokio::test]
async fn started_with_the_homeserver_down_it_links_and_a_later_outage_loses_nothing() {
    let gate = Gate::start(&crate::common::synapse().url, false).await;
    let down_at_start = async |options: Options| {
        let app = TestApp::start_process_with(Options { homeserver_url: Some(gate.url.clone()), ..options }).await;
        let health = app.request(Method::GET, "/health").send().await.unwrap();
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        gate.open();
        eventually("a healthy mxgate", || async {
            let health = app.request(Method::GET, "/health").send().await.ok()?;
            (health.status() == StatusCode::OK).then_some(())
        })
        .await;
        app
    };
    let linked = linked(down_at_start).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let write = async |text: String| {
        let message = wa::Message { conversation: Some(text), ..Default::default() };
        contact.client.send_message(Jid::pn(DEVICE), message).await.expect("wa-sim takes it").message_id
    };
    let mut sent = BTreeSet::from([write("before".into()).await]);
    patiently("the first message at the webhook", Duration::from_secs(60), || async {
        (linked.events_by_message().len() == 1).then_some(())
    })
    .await;

    gate.close();
    for n in 0..10 {
        sent.insert(write(format!("during the outage {n}")).await);
    }
    let refused = expect_error(
        linked.send(DEVICE).json(&json!({ "contact": CONTACT, "text": "not now" })),
        StatusCode::SERVICE_UNAVAILABLE,
        "homeserver_unavailable",
    )
    .await;
    assert!(refused["message"].as_str().unwrap().contains("homeserver"), "{refused}");
    // Committed to the inbox, so acked: wa-sim holds nothing for mxgate's device.
    let device = linked.sim.account(DEVICE).unwrap().devices.into_iter().max().unwrap();
    linked
        .sim
        .wait_until(Duration::from_secs(60), |sim| sim.pending_for(DEVICE, device).is_ok_and(|n| n == 0))
        .await
        .expect("mxgate's device acks what it committed");

    gate.open();
    let arrived =
        || async { (linked.events_by_message().keys().cloned().collect::<BTreeSet<_>>() == sent).then_some(()) };
    patiently("every message at the webhook", Duration::from_secs(120), arrived).await;
    linked.app.quiet().await;
    let events = linked.events_by_message();
    assert_eq!(events.keys().cloned().collect::<BTreeSet<_>>(), sent, "exactly the messages the contact sent");
    assert!(events.values().all(|e| e.len() == 1), "one Matrix event per message: {events:?}");
    let deliveries: BTreeSet<String> = linked
        .receiver
        .received()
        .iter()
        .filter(|r| r.json()["type"] == "m.text")
        .map(|r| r.header("x-mxgate-delivery").to_owned())
        .collect();
    assert_eq!(deliveries.len(), sent.len(), "one delivery per message");
    assert_eq!(routed(&linked.sim, DEVICE, CONTACT), BTreeMap::new(), "the refused send went nowhere");
}

/// Three sends at once, paced 5 s apart by the connector, from requests that wait 1 s: the
/// later two answer `pending` whatever the machine's speed. Each pending answer's outcome
/// reaches the webhook once as `message.status`, read from the send queue; status events
/// go into the room only when the setting asks for them.
async fn pending_sends_learn_their_outcome_by_webhook(status_events: bool) {
    let paced = async |options: Options| {
        let options =
            Options { send_interval_ms: 5_000, send_timeout_secs: 1, message_status_events: status_events, ..options };
        TestApp::with(options).await
    };
    let linked = linked(paced).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let requests = (0..3).map(|n| {
        let body = json!({ "contact": CONTACT, "text": format!("paced {n}") });
        expect(linked.send(DEVICE).json(&body), StatusCode::OK)
    });
    let answers: Vec<Value> =
        futures::future::join_all(requests).await.iter().map(|a| a["results"][0].clone()).collect();
    let pending: BTreeSet<String> = answers
        .iter()
        .filter(|a| a["status"] == "pending")
        .map(|a| a["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(pending.len() >= 2, "the paced sends answer pending: {answers:?}");

    let mut delivered = BTreeMap::new();
    for _ in 0..3 {
        let message = contact.next_message().await;
        delivered.insert(message.info.id.to_string(), text_of(&message.message).map(str::to_owned));
    }
    linked.app.quiet().await;
    let statuses: Vec<Value> =
        linked.receiver.received().iter().map(|r| r.json()).filter(|p| p["type"] == "message.status").collect();
    let late: BTreeMap<String, &Value> = statuses
        .iter()
        .filter(|s| s["status"] == "sent")
        .map(|s| (s["event_id"].as_str().unwrap().to_owned(), s))
        .collect();
    assert_eq!(
        late.keys().cloned().collect::<BTreeSet<_>>(),
        pending,
        "one late status per pending send: {statuses:?}"
    );
    assert_eq!(late.len(), statuses.iter().filter(|s| s["status"] == "sent").count(), "each once: {statuses:?}");
    for status in late.values() {
        assert!(delivered.contains_key(status["message_id"].as_str().unwrap()), "the id the contact got: {status}");
        assert_eq!(status["device_id"], DEVICE);
        assert_eq!(status["is_contact"], true);
    }

    let rooms = linked.app.joined_rooms(&linked.identity).await;
    let room = rooms.iter().next().expect("the contact's portal");
    let types = linked.app.room_event_types(&linked.identity, room).await;
    let posted = types.iter().filter(|t| *t == mxgate_bridge::SEND_STATUS).count();
    assert_eq!(posted, if status_events { 3 } else { 0 }, "status events in the room: {types:?}");
}

#[tokio::test]
async fn a_pending_send_learns_its_outcome_by_webhook_without_status_events() {
    pending_sends_learn_their_outcome_by_webhook(false).await;
}

#[tokio::test]
async fn a_pending_send_learns_its_outcome_by_webhook_with_status_events_in_the_room() {
    pending_sends_learn_their_outcome_by_webhook(true).await;
}
