//! The homeserver itself stops (SIGSTOP: it holds every connection and answers nothing)
//! in the middle of incoming and outgoing traffic, then goes on; on both connectors. This
//! target runs alone with a Synapse of its own, so freezing it disturbs no other story.

#[path = "../common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatsapp_rust::Jid;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::common::{Linked, Phone, TestApp, WebhookReceiver, eventually, expect, link_device, link_on_wa_sim, routed};

const DEVICE: &str = "237600000201";
const CONTACT: &str = "237698000333";

/// One story freezes the run's Synapse at a time: two overlapping freezes would each be shorter.
static FREEZER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// The contact at the other end: the `sim` network's test API, or a person's whatsapp-rust
/// client on wa-sim.
enum Contact {
    Sim,
    WhatsApp(Box<Phone>, wa_sim::WaSim),
}

struct Story {
    app: TestApp,
    token: String,
    receiver: WebhookReceiver,
    contact: Contact,
}

impl Story {
    async fn on_sim() -> Self {
        let app = TestApp::start().await;
        let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
        link_device(&app, &token, DEVICE).await;
        let receiver = WebhookReceiver::start().await;
        app.add_webhook(&token, &receiver.url).await;
        Self { app, token, receiver, contact: Contact::Sim }
    }

    async fn on_whatsapp() -> Self {
        let Linked { sim, app, token, receiver, .. } = link_on_wa_sim(DEVICE, TestApp::with).await;
        let phone = Phone::new(&sim, CONTACT, "Contact Person").await;
        Self { app, token, receiver, contact: Contact::WhatsApp(Box::new(phone), sim) }
    }

    /// The contact writes `text` to the device; the WhatsApp message id.
    async fn incoming(&self, text: &str) -> String {
        match &self.contact {
            Contact::Sim => {
                let body = json!({ "device_id": DEVICE, "from": CONTACT, "text": text });
                let injected =
                    expect(self.app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
                injected["message_id"].as_str().unwrap().to_owned()
            }
            Contact::WhatsApp(phone, _) => {
                let message = wa::Message { conversation: Some(text.into()), ..Default::default() };
                phone.client.send_message(Jid::pn(DEVICE), message).await.expect("wa-sim takes it").message_id
            }
        }
    }

    /// Every text the contact received, one entry per copy; waits for `count` distinct ones.
    async fn received_by_contact(&self, count: usize) -> Vec<String> {
        match &self.contact {
            Contact::Sim => {
                let path = format!("/sim/outbox?device_id={DEVICE}");
                let outbox = expect(self.app.request(Method::GET, &path), StatusCode::OK).await;
                outbox.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
            }
            Contact::WhatsApp(phone, sim) => {
                let mut texts = BTreeMap::<String, String>::new();
                while texts.len() < count {
                    let event = phone.wait_for("a message", |e| matches!(e, Event::Messages(_))).await;
                    let Event::Messages(batch) = &*event else { unreachable!() };
                    for message in batch.iter() {
                        let text = message.message.conversation.clone().unwrap_or_default();
                        texts.insert(message.info.id.to_string(), text);
                    }
                }
                self.app.quiet().await;
                // wa-sim's own count: a copy the client dropped as a repeat would still show here.
                let routed = routed(sim, DEVICE, CONTACT);
                let ids: BTreeSet<&String> = routed.keys().map(|(id, _)| id).collect();
                assert_eq!(ids, texts.keys().collect(), "wa-sim routed what the contact read: {routed:?}");
                // Copies of one message are what each device got of it, not the sum over devices.
                let mut copies = BTreeMap::<&String, usize>::new();
                for ((id, _), &n) in &routed {
                    let most = copies.entry(id).or_default();
                    *most = (*most).max(n);
                }
                copies.into_iter().flat_map(|(id, n)| std::iter::repeat_n(texts[id].clone(), n)).collect()
            }
        }
    }

    /// The WhatsApp ids of the incoming messages at the webhook (statuses of sends carry ids too).
    fn received_ids(&self) -> BTreeSet<String> {
        let received = self.receiver.received();
        let texts = received.iter().map(|r| r.json()).filter(|p| p["type"] == "m.text");
        texts.filter_map(|p| p["message_id"].as_str().map(str::to_owned)).collect()
    }
}

async fn synapse_stopped_for_30_s_mid_traffic(story: Story) {
    let Story { app, token, receiver, .. } = &story;
    let path = format!("/api/v1/devices/{DEVICE}/message");
    let send = |n: usize| {
        let request =
            app.bearer(Method::POST, &path, token).json(&json!({ "contact": CONTACT, "text": format!("out {n}") }));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let mut incoming_ids = BTreeSet::from([story.incoming("before").await]);
    eventually("the first message at the webhook", || async { (story.received_ids() == incoming_ids).then_some(()) })
        .await;

    let frozen = Frozen(app.synapse.pid().expect("the run's Synapse"));
    let before = futures::future::join_all((0..3).map(send));
    let outage = async {
        signal(frozen.0, "-STOP");
        for n in 0..20 {
            incoming_ids.insert(story.incoming(&format!("during {n}")).await);
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
    // Synapse's back-off towards mxgate, and the inbox relay's towards Synapse, grew during the freeze.
    for _ in 0..1200 {
        if story.received_ids() == incoming_ids {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<_> = incoming_ids.difference(&story.received_ids()).cloned().collect();
    let health = expect(app.health(), StatusCode::OK).await;
    assert!(missing.is_empty(), "{} incoming missing: {missing:?}; health {health}", missing.len());
    let mut texts = story.received_by_contact(6).await;
    app.quiet().await;
    assert_eq!(story.received_ids(), incoming_ids);
    let deliveries: BTreeSet<String> =
        receiver.received().iter().map(|r| r.header("x-mxgate-delivery").to_owned()).collect();
    let statuses = receiver.received().iter().filter(|r| r.json()["type"] == "message.status").count();
    assert_eq!(deliveries.len() - statuses, incoming_ids.len(), "one delivery per incoming message");
    texts.sort();
    assert_eq!(texts, ["out 0", "out 1", "out 2", "out 3", "out 4", "out 5"], "each send once");
}

#[tokio::test]
async fn synapse_stopped_for_30_s_mid_traffic_loses_nothing_and_sends_nothing_twice() {
    let _freezer = FREEZER.lock().await;
    synapse_stopped_for_30_s_mid_traffic(Story::on_sim().await).await;
}

#[tokio::test]
async fn on_whatsapp_synapse_stopped_for_30_s_mid_traffic_loses_nothing_and_sends_nothing_twice() {
    let _freezer = FREEZER.lock().await;
    synapse_stopped_for_30_s_mid_traffic(Story::on_whatsapp().await).await;
}
