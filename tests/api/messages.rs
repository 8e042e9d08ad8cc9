use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, expect, expect_error, link_device};

const DEVICE: &str = "237600000001";

async fn linked() -> (TestApp, String) {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    (app, token)
}

fn send_path() -> String {
    format!("/api/v1/devices/{DEVICE}/message")
}

#[tokio::test]
async fn each_contact_in_a_list_gets_its_own_result() {
    let (app, token) = linked().await;
    let body = json!({ "contact": "237698765432, +237 677 777 777,000111222333,not-a-phone", "text": "Good morning" });
    let sent = expect(app.bearer(Method::POST, &send_path(), &token).json(&body), StatusCode::OK).await;
    let results = sent["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{sent}");
    for ok in &results[..2] {
        assert_eq!(ok["status"], "sent", "{ok}");
        assert!(ok["event_id"].as_str().unwrap().starts_with('$'));
    }
    assert_eq!(results[2]["status"], "failed");
    assert!(results[2]["error"].as_str().unwrap().contains("not on WhatsApp"), "{}", results[2]);
    assert!(results[3]["error"].as_str().unwrap().contains("not a phone number"), "{}", results[3]);

    // Recipients are served concurrently, so the network may see them in either order.
    let outbox = app.sim_outbox(DEVICE).await;
    assert_eq!(outbox.len(), 2);
    for (result, to) in results[..2].iter().zip(["237698765432@s.whatsapp.net", "237677777777@s.whatsapp.net"]) {
        let received = outbox.iter().find(|m| m["message_id"] == result["message_id"]).expect("in the outbox");
        assert_eq!((received["to"].as_str(), received["text"].as_str()), (Some(to), Some("Good morning")));
    }
}

#[tokio::test]
async fn a_group_invite_url_is_joined_and_wins_over_contacts() {
    let (app, token) = linked().await;
    let group = expect(
        app.request(Method::POST, "/sim/groups").json(&json!({ "name": "Family", "members": ["237698765432"] })),
        StatusCode::OK,
    )
    .await;
    let invite = group["invite_url"].as_str().unwrap();
    let body = json!({ "group_url": invite, "contact": "237698765432", "text": "Hello family" });
    let sent = expect(app.bearer(Method::POST, &send_path(), &token).json(&body), StatusCode::OK).await;
    assert_eq!(sent["results"].as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    let bad = json!({ "group_url": "https://chat.whatsapp.com/Nonexistent1234", "text": "x" });
    let refused = expect(app.bearer(Method::POST, &send_path(), &token).json(&bad), StatusCode::OK).await;
    assert_eq!(refused["results"][0]["status"], "failed");
    assert!(refused["results"][0]["error"].as_str().unwrap().contains("invalid"), "{refused}");

    let outbox = app.sim_outbox(DEVICE).await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0]["to"], group["jid"]);
    assert_eq!(outbox[0]["text"], "Hello family");
}

#[tokio::test]
async fn a_reply_with_a_file_carries_the_quote_and_the_bytes() {
    let (app, token) = linked().await;
    let first = json!({ "contact": "237698765432", "text": "Here comes a picture" });
    let first = expect(app.bearer(Method::POST, &send_path(), &token).json(&first), StatusCode::OK).await;
    let reply_id = first["results"][0]["event_id"].as_str().unwrap().to_owned();

    let png = mxgate_bridge::qr::png("a small picture").unwrap();
    let form = Form::new()
        .text("contact", "237698765432")
        .text("text", "the picture")
        .text("reply_id", reply_id)
        .part("file", Part::bytes(png.clone()).file_name("picture.png"));
    let sent = expect(app.bearer(Method::POST, &send_path(), &token).multipart(form), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");

    let outbox = app.sim_outbox(DEVICE).await;
    let reply = &outbox[1];
    assert_eq!(reply["reply_to"], first["results"][0]["message_id"]);
    assert_eq!(reply["text"], "the picture");
    assert_eq!(reply["media"]["mime_type"], "image/png");
    assert_eq!(reply["media"]["file_name"], "picture.png");
    assert_eq!(STANDARD.decode(reply["media"]["base64"].as_str().unwrap()).unwrap(), png);
}

#[tokio::test]
async fn bad_message_requests_get_clear_errors_and_send_nothing() {
    let (app, token) = linked().await;
    let post = |body: Value| app.bearer(Method::POST, &send_path(), &token).json(&body);
    expect_error(post(json!({ "contact": "237698765432" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    expect_error(post(json!({ "text": "to nobody" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(
        post(json!({ "contact": "abc,def", "text": "x" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        post(json!({ "contact": "237698765432", "text": "x", "reply_id": "nope" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        post(json!({ "contact": "237698765432", "text": "x", "platform": "sms" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        post(json!({ "contact": "237698765432", "text": "x", "extra": 1 })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let other_device = app
        .bearer(Method::POST, "/api/v1/devices/237999999999/message", &token)
        .json(&json!({ "contact": "237698765432", "text": "x" }));
    expect_error(other_device, StatusCode::NOT_FOUND, "not_found").await;
    let no_extension =
        Form::new().text("contact", "237698765432").part("file", Part::bytes(vec![1, 2, 3]).file_name("blob"));
    expect_error(
        app.bearer(Method::POST, &send_path(), &token).multipart(no_extension),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let too_big = Form::new()
        .text("contact", "237698765432")
        .part("file", Part::bytes(vec![0; 3 * 1024 * 1024]).file_name("big.bin"));
    expect_error(
        app.bearer(Method::POST, &send_path(), &token).multipart(too_big),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let plain = app.bearer(Method::POST, &send_path(), &token).body("contact=1");
    expect_error(plain, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert!(app.sim_outbox(DEVICE).await.is_empty());
}

/// The homeserver retries a transaction it thinks failed; the bridge must not send twice.
#[tokio::test]
async fn a_replayed_appservice_transaction_sends_nothing_twice() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let (token, identity) = (issued["token"].as_str().unwrap(), issued["matrix_user_id"].as_str().unwrap());
    link_device(&app, token, DEVICE).await;
    let dm = app
        .http
        .post(format!(
            "{}/_matrix/provision/v3/create_dm/237698765432?user_id={}&login_id={DEVICE}",
            app.bridge_url,
            identity.replace('@', "%40").replace(':', "%3A")
        ))
        .bearer_auth(&app.provisioning_secret);
    let room = expect(dm, StatusCode::CREATED).await["dm_room_mxid"].as_str().unwrap().to_owned();
    let event = json!({
        "type": "m.room.message", "room_id": room, "sender": identity, "event_id": "$replayed-event",
        "content": { "msgtype": "m.text", "body": "only once" },
    });
    let push = |txn: &str| {
        app.http
            .put(format!("{}/_matrix/app/v1/transactions/{txn}", app.bridge_url))
            .bearer_auth(&app.slot.pair.bridge.hs_token)
            .json(&json!({ "events": [event] }))
    };
    for txn in ["txn-1", "txn-1", "txn-2"] {
        expect(push(txn), StatusCode::OK).await;
    }
    let wrong = app.http.put(format!("{}/_matrix/app/v1/transactions/txn-3", app.bridge_url)).bearer_auth("nope");
    expect(wrong.json(&json!({ "events": [] })), StatusCode::FORBIDDEN).await;
    // A transaction is answered once its events are queued; the send goes out after.
    app.quiet().await;
    let outbox = app.sim_outbox(DEVICE).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0]["text"], "only once");
}
