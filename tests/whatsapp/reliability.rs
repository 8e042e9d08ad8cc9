//! Nothing lost, nothing sent twice, on the real connector: mxgate's whatsapp-rust client
//! acks a message to wa-sim only once the inbox has it, and wa-sim, like WhatsApp, keeps
//! what was not acked and delivers it again on the next login.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use whatsapp_rust::Jid;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::common::{Options, Phone, TestApp, expect, patiently};
use crate::{CONTACT, DEVICE, linked, send_path, text_of};

/// Matrix events per WhatsApp message id, as the webhook received them.
fn events_by_message(linked: &crate::Linked) -> BTreeMap<String, BTreeSet<String>> {
    let mut events: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for payload in linked.receiver.received().iter().map(|r| r.json()).filter(|p| p["type"] == "m.text") {
        let (Some(message), Some(event)) = (payload["message_id"].as_str(), payload["id"].as_str()) else { continue };
        events.entry(message.to_owned()).or_default().insert(event.to_owned());
    }
    events
}

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
        let arrived = || async { (events_by_message(&linked).len() >= seen).then_some(()) };
        patiently("messages at the webhook", Duration::from_secs(120), arrived).await;
        linked.app.kill_and_restart().await;
    }
    let sent = writer.await.unwrap();

    let arrived = || events_by_message(&linked).keys().cloned().collect::<BTreeSet<_>>();
    // Quiet: wa-sim holds nothing unacked for mxgate's device, and mxgate's queues are empty.
    let device = linked.sim.account(DEVICE).unwrap().devices.into_iter().max().unwrap();
    linked
        .sim
        .wait_until(Duration::from_secs(60), |sim| sim.pending_for(DEVICE, device).is_ok_and(|n| n == 0))
        .await
        .expect("mxgate's device acks everything");
    linked.app.quiet().await;
    // Synapse may still be pushing; the assertion below says what is missing if it never comes.
    for _ in 0..1200 {
        if arrived() == sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<_> = sent.difference(&arrived()).cloned().collect();
    let health = expect(linked.app.request(Method::GET, "/health"), StatusCode::OK).await;
    let held: Vec<_> =
        linked.sim.account(DEVICE).unwrap().devices.iter().map(|d| linked.sim.pending_for(DEVICE, *d)).collect();
    assert!(
        missing.is_empty(),
        "{} missing once quiet: {missing:?}; health {health}; wa-sim holds {held:?}",
        missing.len()
    );
    let events = events_by_message(&linked);
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
    let mut routed = BTreeMap::<(String, u16), usize>::new();
    for stanza in linked.sim.received(CONTACT).unwrap().into_iter().filter(|r| r.tag == "message") {
        *routed.entry((stanza.id, stanza.device)).or_default() += 1;
    }
    assert_eq!(routed.keys().map(|(id, _)| id).collect::<BTreeSet<_>>().len(), MESSAGES);
    assert!(routed.values().all(|&n| n == 1), "wa-sim routed each message once per device: {routed:?}");
}
