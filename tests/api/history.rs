//! A conversation of 120 messages on the simulated network reads back from Matrix: the
//! chat list, history, search and the files (see `common::history`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::history::{Conversation, reads_back};
use crate::common::{TestApp, WebhookReceiver, eventually, expect};

const DEVICE: &str = "237600000471";
const CONTACT: &str = "237698700471";
const OLDER: &str = "237698700472";

#[tokio::test]
async fn a_conversation_of_120_messages_reads_back_from_matrix_as_the_webhooks_had_it() {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    let hook = json!({ "url": receiver.url, "events": ["message", "message.edited", "message.reaction"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;
    app.inject(DEVICE, OLDER, json!({ "text": "an older chat" })).await;
    receiver.wait_for(1).await;

    let png = mxgate_bridge::qr::png("a picture").unwrap();
    let send = |body: Value| app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token).json(&body);
    let (mut contact_ids, mut device_events, mut last_contact) = (Vec::new(), Vec::new(), String::new());
    for n in 0..120 {
        let id = match n {
            // The device answers every eighth, quoting the contact's last message.
            _ if n % 8 == 4 => {
                let reply = last_payload_id(&receiver, &last_contact).await;
                let sent = expect(
                    send(json!({ "contact": CONTACT, "text": format!("answer {n}"), "reply_id": reply })),
                    StatusCode::OK,
                )
                .await;
                assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
                device_events.push(sent["results"][0]["event_id"].as_str().unwrap().to_owned());
                continue;
            }
            7 => app.inject(
                DEVICE,
                CONTACT,
                json!({ "media": { "base64": STANDARD.encode(&png), "mime_type": "image/png", "file_name": "p.png" } }),
            )
            .await,
            30 | 70 | 90 => {
                app.inject(DEVICE, CONTACT, json!({ "reaction": { "target": last_contact, "emoji": "👍" } })).await
            }
            50 => {
                app.inject(DEVICE, CONTACT, json!({ "edit": { "target": last_contact, "text": "edited words" } })).await
            }
            3 => app.inject(DEVICE, CONTACT, json!({ "text": "message three says zanzibar" })).await,
            119 => app.inject(DEVICE, CONTACT, json!({ "text": "the last word" })).await,
            _ => app.inject(DEVICE, CONTACT, json!({ "text": format!("message {n}") })).await,
        };
        match n {
            30 | 50 | 70 | 90 => {}
            _ => {
                last_contact = id.clone();
                contact_ids.push(id);
            }
        }
    }
    receiver.wait_for(1 + contact_ids.len() + 4).await;
    app.quiet().await;
    let chat = format!("{CONTACT}@s.whatsapp.net");
    let contact: Vec<Value> = receiver.in_event_order().into_iter().filter(|p| p["chat_id"] == chat.as_str()).collect();
    // Bridged in the order the contact wrote.
    let messages: Vec<&str> =
        contact.iter().filter(|p| p["event"] == "message").map(|p| p["message_id"].as_str().unwrap()).collect();
    let written: Vec<&str> = contact_ids.iter().map(String::as_str).filter(|id| messages.contains(id)).collect();
    assert_eq!((messages.len(), &messages), (contact_ids.len(), &written));
    let delivered = &contact;
    let by_text =
        |text: &str| delivered.iter().find(|p| p["message"] == text).unwrap()["id"].as_str().unwrap().to_owned();
    let image = delivered.iter().find(|p| p["type"] == "m.image").unwrap()["id"].as_str().unwrap().to_owned();
    let conversation = Conversation {
        device: DEVICE.into(),
        chat,
        older_chat: format!("{OLDER}@s.whatsapp.net"),
        contact: contact.clone(),
        device_events,
        word: ("zanzibar".into(), by_text("message three says zanzibar")),
        image: (image, png),
        last_text: "the last word".into(),
    };
    reads_back(&app, &token, &conversation).await;
}

/// The Matrix event of the contact's message `network_id`, once delivered.
async fn last_payload_id(receiver: &WebhookReceiver, network_id: &str) -> String {
    eventually("the contact's message delivered", || async {
        let delivered = receiver.received();
        let payload =
            delivered.iter().map(|d| d.json()).find(|p| p["message_id"] == network_id && p["event"] == "message")?;
        payload["id"].as_str().map(str::to_owned)
    })
    .await
}
