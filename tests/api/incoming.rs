use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use matrix_sdk::config::SyncSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Received, TestApp, WebhookReceiver, eventually, expect, expect_error, link_device, room_bodies};

const DEVICE: &str = "237600000002";
const CONTACT: &str = "2376987654321";

struct Linked {
    app: TestApp,
    token: String,
    identity: String,
    receiver: WebhookReceiver,
    secret: String,
    webhook_id: String,
}

async fn linked_with_webhook() -> Linked {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    let hook = app.add_webhook(&token, &receiver.url).await;
    Linked {
        identity: issued["matrix_user_id"].as_str().unwrap().to_owned(),
        secret: hook["secret"].as_str().unwrap().to_owned(),
        webhook_id: hook["id"].as_str().unwrap().to_owned(),
        app,
        token,
        receiver,
    }
}

async fn inject(app: &TestApp, body: Value) -> String {
    let injected = expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    injected["message_id"].as_str().unwrap().to_owned()
}

fn verify_signature(delivery: &Received, secret: &str) {
    assert!(secret.starts_with("whsec_"), "a Standard Webhooks secret: {secret}");
    assert!(delivery.signed_with(secret), "signed with the webhook's secret");
    assert!(!delivery.header("x-mxgate-delivery").is_empty());
}

#[tokio::test]
async fn an_incoming_text_reaches_the_webhook_with_the_exact_payload_and_a_valid_signature() {
    let linked = linked_with_webhook().await;
    let message_id = inject(&linked.app, json!({ "device_id": DEVICE, "from": CONTACT, "text": "Good morning" })).await;
    let delivery = linked.receiver.wait_for(1).await.remove(0);
    verify_signature(&delivery, &linked.secret);
    let payload = delivery.json();
    let puppet = format!("@{}{CONTACT}:mxgate.test", linked.app.slot.pair.bridge.prefix);
    assert!(payload["id"].as_str().unwrap().starts_with('$'));
    assert_eq!(payload["is_contact"], true);
    assert_eq!(payload["type"], "m.text");
    assert_eq!(payload["from"], puppet);
    assert_eq!(payload["to"], linked.identity);
    assert_eq!(payload["message"], "Good morning");
    assert_eq!(payload["device_id"], DEVICE);
    assert_eq!(payload["message_id"], message_id);
    assert!(payload["timestamp"].as_u64().is_some_and(|ts| ts > 1_700_000_000_000));
    assert_eq!(
        payload["media"],
        json!({ "content": null, "info": { "size": 0, "mime_type": "", "width": 0, "height": 0, "blur_hash": "" } })
    );

    let log = expect(
        linked.app.bearer(Method::GET, &format!("/api/v1/webhooks/{}/deliveries", linked.webhook_id), &linked.token),
        StatusCode::OK,
    )
    .await;
    let entry = eventually("the delivery to be logged as delivered", || {
        let log = log.clone();
        async move { (log[0]["status"] == "delivered").then_some(log[0].clone()) }
    })
    .await;
    assert_eq!(entry["id"], delivery.header("x-mxgate-delivery"));
    assert_eq!(entry["event_id"], payload["id"]);
}

#[tokio::test]
async fn an_incoming_image_carries_its_bytes_size_type_and_dimensions() {
    let linked = linked_with_webhook().await;
    let png = mxgate_bridge::qr::png("incoming picture").unwrap();
    let media = json!({ "base64": STANDARD.encode(&png), "mime_type": "image/png", "file_name": "photo.png" });
    inject(&linked.app, json!({ "device_id": DEVICE, "from": CONTACT, "media": media, "text": "look" })).await;
    let delivery = linked.receiver.wait_for(1).await.remove(0);
    verify_signature(&delivery, &linked.secret);
    let payload = delivery.json();
    assert_eq!(payload["type"], "m.image");
    assert_eq!(payload["message"], "look");
    let (width, height) = mxgate_bridge::media::dimensions(&png).unwrap();
    assert_eq!(
        payload["media"]["info"],
        json!({ "size": png.len(), "mime_type": "image/png", "width": width, "height": height, "blur_hash": "" })
    );
    assert_eq!(STANDARD.decode(payload["media"]["content"].as_str().unwrap()).unwrap(), png);
}

#[tokio::test]
async fn a_group_message_and_a_reply_reach_the_webhook() {
    let linked = linked_with_webhook().await;
    let app = &linked.app;
    let group = expect(
        app.request(Method::POST, "/sim/groups").json(&json!({ "name": "Team", "members": [CONTACT] })),
        StatusCode::OK,
    )
    .await;
    let body = json!({ "group_url": group["invite_url"], "text": "hello team" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &linked.token).json(&body),
        StatusCode::OK,
    )
    .await;
    let ours = &sent["results"][0];
    let reply = json!({
        "device_id": DEVICE, "from": CONTACT, "group_jid": group["jid"], "text": "hi!", "reply_to": ours["message_id"],
    });
    inject(app, reply).await;
    let payload = linked.receiver.wait_for(1).await.remove(0).json();
    assert_eq!(payload["is_contact"], false);
    assert_eq!(payload["message"], "hi!");
    assert_eq!(payload["reply_to"], ours["event_id"]);
    assert_eq!(payload["chat_id"], group["jid"]);
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_delivery_once_it_is_back() {
    let linked = linked_with_webhook().await;
    linked.receiver.set_down(true);
    for n in 0..3 {
        inject(&linked.app, json!({ "device_id": DEVICE, "from": CONTACT, "text": format!("message {n}") })).await;
    }
    let path = format!("/api/v1/webhooks/{}/deliveries", linked.webhook_id);
    eventually("three failed attempts to be logged", || async {
        let log = expect(linked.app.bearer(Method::GET, &path, &linked.token), StatusCode::OK).await;
        let retried = log.as_array().unwrap().iter().filter(|d| d["attempts"].as_i64() >= Some(1)).count();
        (retried == 3).then_some(())
    })
    .await;
    linked.receiver.set_down(false);
    let received = linked.receiver.wait_for(3).await;
    let mut texts: Vec<String> = received.iter().map(|r| r.json()["message"].as_str().unwrap().to_owned()).collect();
    texts.sort();
    assert_eq!(texts, ["message 0", "message 1", "message 2"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(linked.receiver.received().len(), 3, "each event is delivered once");
}

#[tokio::test]
async fn a_matrix_client_sees_the_portal_with_both_directions_of_the_conversation() {
    let linked = linked_with_webhook().await;
    let app = &linked.app;
    let body = json!({ "contact": CONTACT, "text": "from the API" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &linked.token).json(&body),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["results"][0]["status"], "sent");
    inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "text": "from WhatsApp" })).await;
    linked.receiver.wait_for(1).await;

    let client = app.matrix_client(&linked.token).await;
    let rooms = client.joined_rooms();
    assert_eq!(rooms.len(), 1, "one portal for the one chat");
    let room = &rooms[0];
    assert!(room.is_direct().await.unwrap(), "a contact's portal is a direct chat");
    let puppet: matrix_sdk::ruma::OwnedUserId =
        format!("@{}{CONTACT}:mxgate.test", app.slot.pair.bridge.prefix).try_into().unwrap();
    let member = room.get_member(&puppet).await.unwrap().expect("the puppet is in the portal");
    assert_eq!(member.display_name(), Some(format!("Contact {CONTACT} (WhatsApp)").as_str()));
    assert!(member.avatar_url().is_some(), "the puppet carries the contact's picture");
    let bodies = room_bodies(room).await;
    assert!(bodies.contains(&"from the API".to_owned()), "{bodies:?}");
    assert!(bodies.contains(&"from WhatsApp".to_owned()), "{bodies:?}");

    let group = expect(
        app.request(Method::POST, "/sim/groups").json(&json!({ "name": "Team", "members": [CONTACT, DEVICE] })),
        StatusCode::OK,
    )
    .await;
    inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "group_jid": group["jid"], "text": "in the group" }))
        .await;
    linked.receiver.wait_for(2).await;
    client.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    let portal =
        client.joined_rooms().into_iter().find(|r| r.name().as_deref() == Some("Team")).expect("a group portal");
    assert!(!portal.is_direct().await.unwrap());
    assert_eq!(portal.topic().as_deref(), Some("2 members"));
    assert!(portal.avatar_url().is_some(), "the group's picture is the portal's avatar");

    let rename = json!({ "jid": group["jid"], "name": "Team North" });
    expect(app.request(Method::POST, "/sim/groups/rename").json(&rename), StatusCode::OK).await;
    eventually("the portal to follow the group's new name", || async {
        client.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
        let room = client.get_room(portal.room_id()).unwrap();
        (room.name().as_deref() == Some("Team North")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_receiver_that_hangs_does_not_hold_up_another() {
    let linked = linked_with_webhook().await;
    let slow = WebhookReceiver::start().await;
    slow.hang();
    // A second token on the same identity, whose webhook never answers.
    let other = linked.app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    linked.app.add_webhook(&other, &slow.url).await;
    for n in 0..3 {
        inject(&linked.app, json!({ "device_id": DEVICE, "from": CONTACT, "text": format!("message {n}") })).await;
    }
    let fast = linked.receiver.wait_for(3).await;
    assert_eq!(fast.len(), 3);
    assert!(slow.received().is_empty(), "the slow receiver is still hanging while the other got everything");
    slow.release();
}

#[tokio::test]
async fn reactions_edits_deletions_and_receipts_reach_matrix_and_the_webhook() {
    let linked = linked_with_webhook().await;
    let app = &linked.app;
    let actions = WebhookReceiver::start().await;
    let hook = json!({ "url": actions.url, "events": ["message.reaction", "message.deleted"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;
    let body = json!({ "contact": CONTACT, "text": "Dinner at 7?" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &linked.token).json(&body),
        StatusCode::OK,
    )
    .await;
    let ours = sent["results"][0].clone();
    assert_eq!(ours["status"], "sent");

    // The contact's phone gets it, the contact reads it, reacts, answers and corrects the answer.
    for kind in ["delivered", "read"] {
        let receipt =
            json!({ "device_id": DEVICE, "from": CONTACT, "message_ids": [ours["message_id"]], "kind": kind });
        expect(app.request(Method::POST, "/sim/receipts").json(&receipt), StatusCode::OK).await;
    }
    let react = |emoji: &str| json!({ "device_id": DEVICE, "from": CONTACT, "reaction": { "target": ours["message_id"], "emoji": emoji } });
    inject(app, react("👍")).await;
    let answer = inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "text": "Yes, at 8" })).await;
    inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "edit": { "target": answer, "text": "Yes, at 7" } }))
        .await;

    let payloads: Vec<Value> = linked.receiver.wait_for(4).await.iter().map(|r| r.json()).collect();
    let statuses: Vec<&Value> = payloads.iter().filter(|p| p["type"] == "message.status").collect();
    let puppet = format!("@{}{CONTACT}:mxgate.test", app.slot.pair.bridge.prefix);
    let mut kinds: Vec<&str> = statuses.iter().map(|s| s["status"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["delivered", "read"]);
    for status in &statuses {
        assert_eq!(status["event_id"], ours["event_id"]);
        assert_eq!(status["message_id"], ours["message_id"]);
        assert_eq!(status["from"], puppet);
        assert_eq!(status["device_id"], DEVICE);
        assert_eq!(status["is_contact"], true);
    }
    let texts: Vec<&Value> = payloads.iter().filter(|p| p["type"] == "m.text").collect();
    assert_eq!(texts.len(), 2);
    let first = texts.iter().find(|t| t["replaces"].is_null()).expect("the answer");
    let edit = texts.iter().find(|t| !t["replaces"].is_null()).expect("its edit");
    assert_eq!(first["message"], "Yes, at 8");
    assert_eq!((&edit["message"], &edit["replaces"]), (&json!("Yes, at 7"), &first["id"]));

    // Then takes the reaction back and deletes the answer.
    inject(app, react("")).await;
    inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "delete": { "target": answer } })).await;
    actions.wait_for(3).await;
    let done = actions.in_event_order();
    let summary: Vec<(&Value, &Value, &Value)> =
        done.iter().map(|p| (&p["event"], &p["reaction"], &p["event_id"])).collect();
    let (reacted, deleted) = (&ours["event_id"], &first["id"]);
    assert_eq!(
        summary,
        [
            (&json!("message.reaction"), &json!("👍"), reacted),
            (&json!("message.reaction"), &json!(""), reacted),
            (&json!("message.deleted"), &Value::Null, deleted),
        ],
        "{done:?}"
    );
    assert_eq!(done[0]["message_id"], ours["message_id"]);
    assert_eq!(done[2]["message_id"], json!(answer));
    assert!(done.iter().all(|p| p["from"] == puppet && p["device_id"] == DEVICE), "{done:?}");

    let client = app.matrix_client(&linked.token).await;
    let events = eventually("the deletion to reach the portal", || {
        let client = client.clone();
        async move {
            client.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.ok()?;
            let room = client.joined_rooms().into_iter().next()?;
            let messages = room.messages(matrix_sdk::room::MessagesOptions::backward()).await.ok()?;
            let events: Vec<Value> = messages.chunk.iter().filter_map(|e| e.raw().deserialize_as().ok()).collect();
            (events.iter().filter(|e| e["type"] == "m.room.redaction").count() == 2).then_some(events)
        }
    })
    .await;
    let reaction = events.iter().find(|e| e["type"] == "m.reaction").expect("the reaction is in the portal");
    assert_eq!(reaction["sender"], puppet);
    let redacted: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "m.room.redaction").map(|e| &e["redacts"]).collect();
    assert!(redacted.contains(&&reaction["event_id"]), "the reaction taken back is redacted");
    assert!(redacted.contains(&&first["id"]), "the deleted answer is redacted");

    let room = client.joined_rooms().remove(0);
    let puppet: matrix_sdk::ruma::OwnedUserId = puppet.try_into().unwrap();
    let (read, _) = room
        .load_user_receipt(
            matrix_sdk::ruma::events::receipt::ReceiptType::Read,
            matrix_sdk::ruma::events::receipt::ReceiptThread::Unthreaded,
            &puppet,
        )
        .await
        .unwrap()
        .expect("the contact's puppet has a read receipt");
    assert_eq!(read.as_str(), ours["event_id"].as_str().unwrap());
}

#[tokio::test]
async fn a_webhook_gets_only_the_event_types_it_chose_and_every_payload_names_its_type() {
    let linked = linked_with_webhook().await;
    let app = &linked.app;
    let hook = |url: &str, events: Value| {
        app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&json!({ "url": url, "events": events }))
    };
    let (statuses, edits) = (WebhookReceiver::start().await, WebhookReceiver::start().await);
    let chosen = expect(hook(&statuses.url, json!(["message.status"])), StatusCode::CREATED).await;
    assert_eq!(chosen["events"], json!(["message.status"]));
    // Made to take messages first, then changed to edits only.
    let changed = expect(hook(&edits.url, json!(["message"])), StatusCode::CREATED).await;
    let path = format!("/api/v1/webhooks/{}", changed["id"].as_str().unwrap());
    let put = |body: Value| app.bearer(Method::PUT, &path, &linked.token).json(&body);
    expect(put(json!({ "events": ["message.edited"] })), StatusCode::OK).await;
    // Bad lists change nothing.
    let unknown =
        expect_error(put(json!({ "events": ["message.typo"] })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .await;
    assert!(unknown["message"].as_str().unwrap().contains("message.typo"), "{unknown}");
    let none = expect_error(put(json!({ "events": [] })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(none["message"].as_str().unwrap().contains("active"), "{none}");
    let listed = expect(app.bearer(Method::GET, "/api/v1/webhooks", &linked.token), StatusCode::OK).await;
    let events_of = |id: &Value| listed.as_array().unwrap().iter().find(|w| &w["id"] == id).unwrap()["events"].clone();
    assert_eq!(events_of(&changed["id"]), json!(["message.edited"]));
    assert_eq!(
        events_of(&json!(linked.webhook_id)),
        json!(["message", "message.edited", "message.status", "device.logged_out"]),
        "a webhook that chose nothing gets what every webhook got before"
    );

    let body = json!({ "contact": CONTACT, "text": "Dinner at 7?" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &linked.token).json(&body),
        StatusCode::OK,
    )
    .await;
    let ours = &sent["results"][0];
    let receipt = json!({ "device_id": DEVICE, "from": CONTACT, "message_ids": [ours["message_id"]], "kind": "read" });
    expect(app.request(Method::POST, "/sim/receipts").json(&receipt), StatusCode::OK).await;
    let answer = inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "text": "Yes, at 8" })).await;
    inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "edit": { "target": answer, "text": "Yes, at 7" } }))
        .await;
    linked.receiver.wait_for(3).await;
    app.quiet().await;

    let events = |receiver: &WebhookReceiver| {
        let mut events: Vec<String> =
            receiver.received().iter().map(|r| r.json()["event"].as_str().unwrap().to_owned()).collect();
        events.sort();
        events
    };
    assert_eq!(events(&linked.receiver), ["message", "message.edited", "message.status"]);
    assert_eq!(events(&statuses), ["message.status"]);
    assert_eq!(events(&edits), ["message.edited"]);
    let edit = edits.received()[0].json();
    assert_eq!(
        (&edit["type"], &edit["message"]),
        (&json!("m.text"), &json!("Yes, at 7")),
        "the payload as before: {edit}"
    );
    // The event log keeps every event, whatever the webhooks chose: the link's device.state too.
    let feed = expect(app.bearer(Method::GET, "/api/v1/events", &linked.token), StatusCode::OK).await;
    let mut logged: Vec<&str> =
        feed["events"].as_array().unwrap().iter().map(|e| e["payload"]["event"].as_str().unwrap()).collect();
    logged.sort();
    assert_eq!(logged, ["device.state", "message", "message.edited", "message.status"], "{feed}");
}

#[tokio::test]
async fn what_the_account_writes_on_its_phone_is_the_identitys_in_matrix_and_a_message_sent_event() {
    let linked = linked_with_webhook().await;
    let (app, token) = (&linked.app, &linked.token);
    let sent_hook = WebhookReceiver::start().await;
    let hook = json!({ "url": sent_hook.url, "events": ["message.sent"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", token).json(&hook), StatusCode::CREATED).await;

    let mine =
        inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "from_me": true, "text": "from my phone" })).await;
    let theirs = inject(app, json!({ "device_id": DEVICE, "from": CONTACT, "text": "got it" })).await;
    let sent = sent_hook.wait_for(1).await[0].json();
    let got = linked.receiver.wait_for(1).await[0].json();
    app.quiet().await;

    assert_eq!((sent["event"].clone(), sent["from_me"].clone()), (json!("message.sent"), json!(true)), "{sent}");
    assert_eq!((sent["message"].clone(), sent["message_id"].clone()), (json!("from my phone"), json!(mine)));
    assert_eq!(sent["from"], linked.identity, "the identity wrote it, in Matrix too");
    assert_eq!(sent["chat_id"], format!("{CONTACT}@s.whatsapp.net"));
    assert_eq!((got["event"].clone(), got["message_id"].clone()), (json!("message"), json!(theirs)));
    assert_eq!(linked.receiver.received().len(), 1, "a webhook that did not choose message.sent does not get it");
    assert_eq!(sent_hook.received().len(), 1);

    // It is the device's own message: it can be edited, and it is nothing to mark read.
    let path = format!("/api/v1/devices/{DEVICE}/messages/{}", sent["id"].as_str().unwrap());
    let edited =
        expect(app.bearer(Method::PUT, &path, token).json(&json!({ "text": "from my phone!" })), StatusCode::OK).await;
    assert_eq!(edited["status"], "sent", "{edited}");
    let read = app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/chats/{CONTACT}/read"), token);
    assert_eq!(expect(read, StatusCode::OK).await, json!({ "read": 1 }), "only the contact's message");
}

/// The homeserver calls mxgate made so far, by appservice, method and endpoint, from its
/// metrics; without those that come on their own time, not a message's: the health
/// checks' `/versions` (a test's waiting makes them) and the appservice pings of the first
/// minute after a start.
async fn homeserver_calls(app: &TestApp) -> std::collections::BTreeMap<String, u64> {
    let metrics = app.request(Method::GET, "/metrics").bearer_auth(&app.metrics_token).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("mxgate_homeserver_requests_total{"))
        .filter(|line| !line.contains("/versions") && !line.contains("/ping"))
        .map(|line| {
            let (labels, count) = line.rsplit_once("} ").unwrap();
            (labels.to_owned(), count.parse().unwrap())
        })
        .collect()
}

/// README's list of homeserver calls per incoming message, held to: once a chat's portal
/// and a sender's puppet exist, a message is one event and nothing else — no profile
/// lookup, invite, join or `m.direct` update again, in a direct chat or a group, and the
/// API's forwarding to the webhook calls the homeserver not at all.
#[tokio::test]
async fn a_message_in_a_known_chat_costs_the_homeserver_one_call() {
    // Its own process: the metrics are the process's, and other tests run beside this one.
    let app = TestApp::start_process().await;
    let (_, receiver) = app.token_with_receiver(DEVICE).await;
    let group = json!({ "name": "Team", "members": [CONTACT, DEVICE] });
    let group = expect(app.request(Method::POST, "/sim/groups").json(&group), StatusCode::OK).await;
    let chats = [json!({}), json!({ "group_jid": group["jid"] })];
    // The first message of each chat makes its portal and the sender's puppet.
    for chat in &chats {
        app.inject(DEVICE, CONTACT, json!({ "text": "first", "group_jid": chat["group_jid"] })).await;
    }
    receiver.wait_for(2).await;
    app.quiet().await;
    let before = homeserver_calls(&app).await;

    const LATER: u64 = 3;
    for n in 0..LATER {
        for chat in &chats {
            app.inject(DEVICE, CONTACT, json!({ "text": format!("later {n}"), "group_jid": chat["group_jid"] })).await;
        }
    }
    receiver.wait_for(2 + 2 * LATER as usize).await;
    app.quiet().await;
    let after = homeserver_calls(&app).await;

    let made: Vec<(String, u64)> = after
        .iter()
        .map(|(call, count)| (call.clone(), count - before.get(call).copied().unwrap_or(0)))
        .filter(|(_, made)| *made > 0)
        .collect();
    let event = r#"appservice="bridge",method="PUT",endpoint="/_matrix/client/v3/rooms/{}/send/{}/{}""#;
    assert_eq!(made, vec![(event.to_owned(), 2 * LATER)], "every call since the first messages");
}
