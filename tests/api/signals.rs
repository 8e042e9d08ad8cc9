//! Marking read, typing and presence on the simulated network, which records each signal
//! a device shows; refusals show nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, expect, expect_error};

const DEVICE: &str = "237600000431";
const CONTACT: &str = "237698700431";

/// The signals the device showed; the messages of one read receipt in id order (one
/// receipt carries them all, in no order that matters).
async fn signals(app: &TestApp) -> Vec<Value> {
    let shown = expect(app.request(Method::GET, &format!("/sim/signals?device_id={DEVICE}")), StatusCode::OK).await;
    let mut shown = shown.as_array().unwrap().clone();
    for signal in &mut shown {
        if let Some(messages) = signal.get_mut("messages").and_then(Value::as_array_mut) {
            messages.sort_by_key(|m| m["message_id"].as_str().unwrap().to_owned());
        }
    }
    shown
}

async fn inject(app: &TestApp, text: &str) -> String {
    app.inject(DEVICE, CONTACT, json!({ "text": text })).await
}

#[tokio::test]
async fn a_device_marks_a_chat_or_one_message_read_types_and_shows_itself_online() {
    let app = TestApp::start().await;
    let (token, receiver) = app.token_with_receiver(DEVICE).await;
    let post = |path: &str| app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/{path}"), &token);
    let chat = format!("{CONTACT}@s.whatsapp.net");

    let first = [inject(&app, "one").await, inject(&app, "two").await];
    let reaction = json!({ "device_id": DEVICE, "from": CONTACT, "reaction": { "target": first[0], "emoji": "👍" } });
    expect(app.request(Method::POST, "/sim/incoming").json(&reaction), StatusCode::OK).await;
    let sent = expect(post("message").json(&json!({ "contact": CONTACT, "text": "mine" })), StatusCode::OK).await;
    let ours = sent["results"][0]["event_id"].as_str().unwrap().to_owned();
    // The reaction goes only to webhooks that chose reactions.
    receiver.wait_for(2).await;
    app.quiet().await;

    // Refusals show nothing.
    expect_error(post(&format!("messages/{ours}/read")), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(post("messages/$unknown:mxgate.test/read"), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(post("chats/not-a-chat/read"), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(
        post(&format!("chats/{CONTACT}/typing")).json(&json!({ "state": "dancing" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        post("presence").json(&json!({ "available": "yes" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let other = app.bearer(Method::POST, "/api/v1/devices/237600000999/presence", &token);
    expect_error(other.json(&json!({ "available": true })), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(signals(&app).await, Vec::<Value>::new());

    // The whole chat: both messages (the reaction is nothing to read), then nothing more.
    assert_eq!(expect(post(&format!("chats/{chat}/read")), StatusCode::OK).await, json!({ "read": 2 }));
    assert_eq!(expect(post(&format!("chats/{CONTACT}/read")), StatusCode::OK).await, json!({ "read": 0 }));
    // One message, by the id its webhook carried.
    let third = inject(&app, "three").await;
    let delivered = receiver.wait_for(3).await;
    let third_event = delivered.iter().map(|d| d.json()).find(|p| p["message_id"] == third).unwrap()["id"].clone();
    let third_event = third_event.as_str().unwrap();
    assert_eq!(expect(post(&format!("messages/{third_event}/read")), StatusCode::OK).await, json!({ "read": 1 }));

    for state in ["composing", "recording", "paused"] {
        expect(post(&format!("chats/{CONTACT}/typing")).json(&json!({ "state": state })), StatusCode::OK).await;
    }
    expect(post("presence").json(&json!({ "available": true })), StatusCode::OK).await;

    let read = |ids: &[&String]| {
        let mut ids = ids.to_vec();
        ids.sort();
        let messages: Vec<Value> = ids.iter().map(|id| json!({ "message_id": id, "sender": CONTACT })).collect();
        json!({ "kind": "read", "to": chat, "messages": messages })
    };
    let typing = |state: &str| json!({ "kind": "typing", "to": chat, "state": state });
    assert_eq!(
        signals(&app).await,
        [
            read(&[&first[0], &first[1]]),
            read(&[&third]),
            typing("composing"),
            typing("recording"),
            typing("paused"),
            json!({ "kind": "presence", "available": true }),
        ]
    );
}

#[tokio::test]
async fn typing_and_reading_in_a_matrix_client_reach_the_network() {
    use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
    use matrix_sdk::ruma::events::receipt::ReceiptThread;
    let app = TestApp::start().await;
    let (token, receiver) = app.token_with_receiver(DEVICE).await;
    let ids = [inject(&app, "one").await, inject(&app, "two").await, inject(&app, "three").await];
    let delivered: Vec<Value> = receiver.wait_for(3).await.iter().map(|d| d.json()).collect();
    let event_of =
        |id: &str| delivered.iter().find(|p| p["message_id"] == id).unwrap()["id"].as_str().unwrap().to_owned();

    let client = app.matrix_client(&token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    room.typing_notice(true).await.unwrap();
    crate::common::eventually("typing at the network", || async { (signals(&app).await.len() == 1).then_some(()) })
        .await;
    room.typing_notice(false).await.unwrap();
    crate::common::eventually("stopped at the network", || async { (signals(&app).await.len() == 2).then_some(()) })
        .await;
    // Reading the second message reads the first too; the third stays unread.
    let second = event_of(&ids[1]).parse().unwrap();
    room.send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, second).await.unwrap();
    crate::common::eventually("read at the network", || async { (signals(&app).await.len() == 3).then_some(()) }).await;
    app.quiet().await;

    let chat = format!("{CONTACT}@s.whatsapp.net");
    let mut read: Vec<&String> = ids[..2].iter().collect();
    read.sort();
    let read: Vec<Value> = read.iter().map(|id| json!({ "message_id": id, "sender": CONTACT })).collect();
    assert_eq!(
        signals(&app).await,
        [
            json!({ "kind": "typing", "to": chat, "state": "composing" }),
            json!({ "kind": "typing", "to": chat, "state": "paused" }),
            json!({ "kind": "read", "to": chat, "messages": read }),
        ]
    );
    let post = app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/chats/{CONTACT}/read"), &token);
    assert_eq!(expect(post, StatusCode::OK).await, json!({ "read": 1 }), "only the third was left");
}
