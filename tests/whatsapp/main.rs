//! The bridge's stories again, on the `whatsapp` connector: mxgate's own whatsapp-rust
//! clients against `wa-sim`, a server speaking the WhatsApp Web protocol, with people's
//! phones as real whatsapp-rust clients that encrypt and decrypt for themselves.

mod cluster;
#[path = "../common/mod.rs"]
mod common;
mod reliability;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wa_sim::WaSim;
use whatsapp_rust::download::Downloadable;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::common::groups::{Cast, administer};
use crate::common::history::{Conversation, reads_back};
use crate::common::{
    Linked, Options, Phone, TestApp, WebhookReceiver, device_state_seen, eventually, expect, expect_error,
    link_device_with, link_on_wa_sim, room_bodies, wa_sim_options,
};

const DEVICE: &str = "237600000101";
const CONTACT: &str = "237698700202";

/// An mxgate on the simulator, a token with a webhook, and `DEVICE` linked.
async fn linked(app: impl AsyncFnOnce(Options) -> TestApp) -> Linked {
    link_on_wa_sim(DEVICE, app).await
}

fn send_path() -> String {
    format!("/api/v1/devices/{DEVICE}/message")
}

async fn send(linked: &Linked, body: Value) -> Value {
    let sent = expect(linked.app.bearer(Method::POST, &send_path(), &linked.token).json(&body), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    sent
}

/// The webhook payload of the incoming message `message_id` (statuses of sent messages
/// arrive beside it, in any order).
async fn delivery_of(linked: &Linked, message_id: &str) -> Value {
    eventually("the message at the webhook", || async {
        linked.receiver.received().into_iter().map(|r| r.json()).find(|p| p["message_id"] == message_id)
    })
    .await
}

fn text_of(message: &wa::Message) -> Option<&str> {
    message.conversation.as_deref().or_else(|| message.extended_text_message.as_option()?.text.as_deref())
}

#[tokio::test]
async fn a_device_linked_by_qr_sends_text_and_an_image_and_receives_a_reply() {
    let linked = linked(TestApp::with).await;
    let devices = expect(linked.app.bearer(Method::GET, "/api/v1/devices", &linked.token), StatusCode::OK).await;
    assert_eq!(devices, json!([{ "platform": "wa", "device_id": DEVICE, "status": "connected" }]));
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;

    let sent = send(&linked, json!({ "contact": CONTACT, "text": "Good morning from mxgate" })).await;
    let received = contact.next_message().await;
    assert_eq!(text_of(&received.message), Some("Good morning from mxgate"));
    assert_eq!(received.info.source.sender.user.as_str(), DEVICE);
    assert_eq!(received.info.id.to_string(), sent["results"][0]["message_id"].as_str().unwrap());

    let png = mxgate_bridge::qr::png("a picture for the contact").unwrap();
    let form = Form::new()
        .text("contact", CONTACT)
        .text("text", "the picture")
        .part("file", Part::bytes(png.clone()).file_name("picture.png"));
    let sent =
        expect(linked.app.bearer(Method::POST, &send_path(), &linked.token).multipart(form), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
    let received = contact.next_message().await;
    let image = received.message.image_message.as_option().expect("an image message");
    assert_eq!(image.caption.as_deref(), Some("the picture"));
    assert_eq!(image.mimetype.as_deref(), Some("image/png"));
    let (width, height) = mxgate_bridge::media::dimensions(&png).unwrap();
    assert_eq!((image.width, image.height), (Some(width), Some(height)));
    let downloadable: &dyn Downloadable = image;
    assert_eq!(contact.client.download(downloadable).await.expect("the contact downloads the image"), png);

    let reply = wa::Message { conversation: Some("Thanks, got it".into()), ..Default::default() };
    let reply_id = contact.client.send_message(whatsapp_rust::Jid::pn(DEVICE), reply).await.unwrap().message_id;
    let delivery = delivery_of(&linked, &reply_id).await;
    let puppet = format!("@{}{CONTACT}:mxgate.test", linked.app.slot.pair.bridge.prefix);
    assert!(delivery["id"].as_str().unwrap().starts_with('$'), "{delivery}");
    assert_eq!(delivery["type"], "m.text");
    assert_eq!(delivery["message"], "Thanks, got it");
    assert_eq!(delivery["from"], puppet);
    assert_eq!(delivery["to"], linked.identity);
    assert_eq!(delivery["device_id"], DEVICE);
    assert_eq!(delivery["message_id"], reply_id);
    assert_eq!(delivery["is_contact"], true);
    assert_eq!(delivery["chat_id"], format!("{CONTACT}@s.whatsapp.net"));

    // The same chat in a Matrix client, both directions, the contact named by their push name.
    let app = &linked.app;
    let client = app.matrix_client(&linked.token).await;
    let rooms = client.joined_rooms();
    assert_eq!(rooms.len(), 1, "one portal for the one chat");
    assert!(rooms[0].is_direct().await.unwrap());
    let puppet: matrix_sdk::ruma::OwnedUserId = puppet.try_into().unwrap();
    let member = rooms[0].get_member(&puppet).await.unwrap().expect("the contact's puppet is in the portal");
    assert_eq!(member.display_name(), Some("Contact Person (WhatsApp)"));
    let bodies = room_bodies(&rooms[0]).await;
    for body in ["Good morning from mxgate", "the picture", "Thanks, got it"] {
        assert!(bodies.iter().any(|b| b == body), "{body} in {bodies:?}");
    }
}

#[tokio::test]
async fn a_group_joined_by_invite_url_carries_messages_both_ways() {
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let group = linked.sim.create_group(CONTACT, "Team", &[CONTACT]).unwrap();

    send(&linked, json!({ "group_url": group.invite_link, "text": "hello team" })).await;
    let received = contact.next_message().await;
    assert_eq!(text_of(&received.message), Some("hello team"));
    assert_eq!(received.info.source.chat.to_string(), group.jid);
    assert!(linked.sim.group(&group.jid).unwrap().members.contains(&DEVICE.to_owned()));

    let message = wa::Message { conversation: Some("welcome!".into()), ..Default::default() };
    let jid: whatsapp_rust::Jid = group.jid.parse().unwrap();
    let id = contact.client.send_message(jid, message).await.unwrap().message_id;
    let delivery = delivery_of(&linked, &id).await;
    assert_eq!(delivery["message"], "welcome!");
    assert_eq!(delivery["message_id"], id);
    assert_eq!(delivery["chat_id"], group.jid);
    assert_eq!(delivery["is_contact"], false);
    assert_eq!(delivery["device_id"], DEVICE);
}

#[tokio::test]
async fn a_number_not_on_whatsapp_gets_its_own_error() {
    let linked = linked(TestApp::with).await;
    let body = json!({ "contact": "237611111999", "text": "anyone?" });
    let sent = expect(linked.app.bearer(Method::POST, &send_path(), &linked.token).json(&body), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "failed", "{sent}");
    assert!(sent["results"][0]["error"].as_str().unwrap().contains("not on WhatsApp"), "{sent}");
}

#[tokio::test]
async fn after_kill_9_and_restart_the_device_is_linked_without_a_new_qr() {
    let mut linked = linked(TestApp::start_process_with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    linked.app.kill_and_restart().await;

    let connected = json!([{ "platform": "wa", "device_id": DEVICE, "status": "connected" }]);
    eventually("the device to reconnect from its stored session", || async {
        let devices = expect(linked.app.bearer(Method::GET, "/api/v1/devices", &linked.token), StatusCode::OK).await;
        (devices == connected).then_some(())
    })
    .await;
    send(&linked, json!({ "contact": CONTACT, "text": "still here" })).await;
    assert_eq!(text_of(&contact.next_message().await.message), Some("still here"));
    let account = linked.sim.account(DEVICE).unwrap();
    assert_eq!(account.devices.len(), 1, "no second device was linked: {:?}", account.devices);
}

#[tokio::test]
async fn replies_quote_both_ways_and_receipts_become_message_statuses() {
    use whatsapp_rust::wacore::proto_helpers::{MessageBuilderExt, build_quote_context};
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    // A second webhook that takes only statuses.
    let statuses = WebhookReceiver::start().await;
    let hook = json!({ "url": statuses.url, "events": ["message.status"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;

    let sent = send(&linked, json!({ "contact": CONTACT, "text": "Shall we meet at 10?" })).await;
    let ours = &sent["results"][0];
    let original = contact.next_message().await;
    // The contact's phone acknowledges delivery by itself; the webhook hears of it.
    let status = linked.receiver.wait_for(1).await.remove(0).json();
    assert_eq!(status["type"], "message.status", "{status}");
    assert_eq!(status["status"], "delivered");
    assert_eq!(status["event_id"], ours["event_id"]);
    assert_eq!(status["message_id"], ours["message_id"]);
    assert_eq!(status["device_id"], DEVICE);

    let quote =
        build_quote_context(original.info.id.to_string(), format!("{DEVICE}@s.whatsapp.net"), &original.message);
    let answer = wa::Message::text_with_context("Yes, at the station", quote);
    let answer_id = contact.client.send_message(contact_device_chat(), answer).await.unwrap().message_id;
    let delivery = delivery_of(&linked, &answer_id).await;
    assert_eq!(delivery["message"], "Yes, at the station");
    assert_eq!(delivery["reply_to"], ours["event_id"], "the quote points at the event the API sent");

    let body = json!({ "contact": CONTACT, "text": "See you there", "reply_id": delivery["id"] });
    send(&linked, body).await;
    let reply = contact.next_message().await;
    let text = reply.message.extended_text_message.as_option().expect("a quoting reply is extended text");
    assert_eq!(text.text.as_deref(), Some("See you there"));
    let context = text.context_info.as_option().expect("the reply quotes");
    assert_eq!(context.stanza_id.as_deref(), Some(answer_id.as_str()));
    assert_eq!(context.participant.as_deref(), Some(format!("{CONTACT}@s.whatsapp.net").as_str()));
    assert_eq!(context.quoted_message.as_option().and_then(|m| text_of(m)), Some("Yes, at the station"));

    linked.app.quiet().await;
    let everything: Vec<Value> = linked.receiver.received().iter().map(|r| r.json()).collect();
    assert!(everything.iter().any(|p| p["event"] == "message"), "{everything:?}");
    let chosen: Vec<Value> = statuses.received().iter().map(|r| r.json()).collect();
    assert!(!chosen.is_empty() && chosen.iter().all(|p| p["event"] == "message.status"), "only statuses: {chosen:?}");
    let all_statuses = everything.iter().filter(|p| p["event"] == "message.status").count();
    assert_eq!(chosen.len(), all_statuses, "every status, to both webhooks");
}

#[tokio::test]
async fn a_device_that_cannot_reach_whatsapp_after_a_restart_is_reported_and_retried() {
    let mut linked = linked(TestApp::start_process_with).await;
    linked.sim.shutdown();
    linked.app.kill_and_restart().await;

    let device = eventually("the device to be reported in error", || async {
        let devices = expect(linked.app.bearer(Method::GET, "/api/v1/devices", &linked.token), StatusCode::OK).await;
        (devices[0]["status"] == "error").then(|| devices[0].clone())
    })
    .await;
    assert_eq!(device["device_id"], DEVICE);
    assert!(device["error"].as_str().unwrap().contains("retrying"), "{device}");
    let health = expect(linked.app.health(), StatusCode::OK).await;
    assert_eq!(health["status"], "ok", "a failing device does not make the service unhealthy: {health}");
    assert_eq!(health["devices"]["error"], 1, "{health}");
    assert_eq!(health["devices"]["failing"][0]["device_id"], DEVICE, "{health}");
    let body = json!({ "contact": CONTACT, "text": "anyone?" });
    let sent = expect(linked.app.bearer(Method::POST, &send_path(), &linked.token).json(&body), StatusCode::OK).await;
    assert_eq!(sent["results"][0]["status"], "failed", "{sent}");
    assert!(sent["results"][0]["error"].as_str().unwrap().contains("not connected"), "{sent}");
}

#[tokio::test]
async fn a_device_linked_by_pairing_code_and_removed_on_the_phone_is_reported_once() {
    let sim = WaSim::start().await.expect("the simulator starts");
    sim.create_account(DEVICE, "Device Owner").unwrap();
    let app = TestApp::with(wa_sim_options(&sim)).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let states = WebhookReceiver::start().await;
    let hook = json!({ "url": states.url, "events": ["device.state"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;

    let body = json!({ "platform": "wa", "phone": DEVICE });
    let link = expect(app.bearer(Method::POST, "/api/v1/devices", &token).json(&body), StatusCode::OK).await;
    let code = link["pair_code"].as_str().expect("a pairing code").to_owned();
    assert_eq!(code.len(), 8, "{link}");
    assert!(sim.enter_pair_code(DEVICE, "AAAA1111").await.is_err(), "a mistyped code links nothing");
    let device_jid = sim.enter_pair_code(DEVICE, &code).await.expect("the phone takes the right code");
    let connected = json!([{ "platform": "wa", "device_id": DEVICE, "status": "connected" }]);
    eventually("the device linked by code to be listed", || async {
        let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
        (devices == connected).then_some(())
    })
    .await;

    device_state_seen(&states, "connected").await;
    let device: u16 = device_jid.split(['@', ':']).nth(1).and_then(|d| d.parse().ok()).expect("a device number");
    sim.remove_device(DEVICE, device).unwrap();
    let delivery = receiver.wait_for(1).await.remove(0).json();
    assert_eq!(delivery["type"], "device.logged_out", "{delivery}");
    assert_eq!(delivery["device_id"], DEVICE);
    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices, json!([{ "platform": "wa", "device_id": DEVICE, "status": "logged_out" }]));
    let body = json!({ "contact": CONTACT, "text": "anyone?" });
    let send = app.bearer(Method::POST, &send_path(), &token).json(&body);
    let refused = expect_error(send, StatusCode::CONFLICT, "conflict").await;
    assert!(refused["message"].as_str().unwrap().contains("link it again"), "{refused}");
    assert_eq!(receiver.received().len(), 1, "one removal, one event");
    device_state_seen(&states, "logged_out").await;
    app.quiet().await;
    assert_eq!(states.in_event_order().last().unwrap()["state"], "logged_out", "{:?}", states.in_event_order());
}

#[tokio::test]
async fn deleting_a_device_logs_it_out_of_whatsapp() {
    let linked = linked(TestApp::with).await;
    assert_eq!(linked.sim.account(DEVICE).unwrap().devices.len(), 1);
    let body = json!({ "device_id": DEVICE, "platform": "wa" });
    expect(linked.app.bearer(Method::DELETE, "/api/v1/devices", &linked.token).json(&body), StatusCode::OK).await;
    assert_eq!(linked.sim.account(DEVICE).unwrap().devices, Vec::<u16>::new(), "the phone no longer lists it");
    let devices = expect(linked.app.bearer(Method::GET, "/api/v1/devices", &linked.token), StatusCode::OK).await;
    assert_eq!(devices, json!([]));
}

fn contact_device_chat() -> whatsapp_rust::Jid {
    whatsapp_rust::Jid::pn(DEVICE)
}

#[tokio::test]
async fn deleting_the_identitys_last_token_logs_its_device_out_of_whatsapp() {
    let linked = linked(TestApp::with).await;
    assert_eq!(linked.sim.account(DEVICE).unwrap().devices.len(), 1);
    let tokens = expect(linked.app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
    let id = tokens.as_array().unwrap().iter().find(|t| t["matrix_user_id"] == linked.identity.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = expect(linked.app.admin(Method::DELETE, &format!("/api/v1/tokens/{id}")), StatusCode::OK).await;
    assert_eq!(deleted["devices_unlinked"], json!([DEVICE]), "{deleted}");
    assert_eq!(linked.sim.account(DEVICE).unwrap().devices, Vec::<u16>::new(), "the phone no longer lists it");
}

#[tokio::test]
async fn a_phone_linked_again_under_another_identity_takes_its_portals_and_the_old_identity_leaves_them() {
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let text = |body: &str| wa::Message { conversation: Some(body.to_owned()), ..Default::default() };
    contact.client.send_message(whatsapp_rust::Jid::pn(DEVICE), text("before")).await.unwrap();
    linked.receiver.wait_for(1).await;
    let portal = linked.app.joined_rooms(&linked.identity).await;

    let second = linked.app.admin_token(false).await;
    let (token, identity) = (second["token"].as_str().unwrap(), second["matrix_user_id"].as_str().unwrap());
    let receiver = WebhookReceiver::start().await;
    linked.app.add_webhook(token, &receiver.url).await;
    let frames = link_device_with(&linked.app, token, 1, |code| {
        let scanned = linked.sim.scan_qr(DEVICE, &code);
        async move {
            scanned.expect("the phone scans the code");
        }
    })
    .await;
    assert_eq!(frames.last().unwrap(), &json!({ "type": "success", "device_id": DEVICE }), "{frames:?}");
    eventually("the portals handed over", || async {
        let moved = portal.is_subset(&linked.app.joined_rooms(identity).await);
        let left = linked.app.joined_rooms(&linked.identity).await.is_disjoint(&portal);
        (moved && left).then_some(())
    })
    .await;
    let devices = expect(linked.app.bearer(Method::GET, "/api/v1/devices", &linked.token), StatusCode::OK).await;
    assert_eq!(devices, json!([]), "the first identity no longer has the device");

    contact.client.send_message(whatsapp_rust::Jid::pn(DEVICE), text("after")).await.unwrap();
    receiver.wait_for(1).await;
    linked.app.quiet().await;
    let second_got: Vec<Value> = receiver.received().iter().map(|r| r.json()["message"].clone()).collect();
    assert_eq!(second_got, [json!("after")], "the second identity reads from the hand-over on");
    let first_got: Vec<Value> = linked.receiver.received().iter().map(|r| r.json()["message"].clone()).collect();
    assert_eq!(first_got, [json!("before")], "the first identity reads no more");
}

#[tokio::test]
async fn a_contacts_reactions_and_deletions_reach_a_webhook_that_chose_them() {
    use whatsapp_rust::send::RevokeType;
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let actions = WebhookReceiver::start().await;
    let hook = json!({ "url": actions.url, "events": ["message.reaction", "message.deleted"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;

    let sent = send(&linked, json!({ "contact": CONTACT, "text": "Lunch?" })).await;
    let ours = &sent["results"][0];
    contact.next_message().await;
    let key = wa::MessageKey {
        remote_jid: Some(format!("{DEVICE}@s.whatsapp.net")),
        from_me: Some(false),
        id: ours["message_id"].as_str().map(str::to_owned),
        ..Default::default()
    };
    contact.client.send_reaction(contact_device_chat(), key.clone(), "🍕").await.unwrap();
    contact.client.send_reaction(contact_device_chat(), key, "").await.unwrap();
    let plain = wa::Message { conversation: Some("Sorry, wrong chat".into()), ..Default::default() };
    let regret = contact.client.send_message(contact_device_chat(), plain).await.unwrap().message_id;
    let regretted = delivery_of(&linked, &regret).await;
    contact.client.revoke_message(contact_device_chat(), regret.clone(), RevokeType::Sender).await.unwrap();

    actions.wait_for(3).await;
    linked.app.quiet().await;
    let done = actions.in_event_order();
    let summary: Vec<(&Value, &Value, &Value, &Value)> =
        done.iter().map(|p| (&p["event"], &p["reaction"], &p["event_id"], &p["message_id"])).collect();
    let (reacted, reacted_id) = (&ours["event_id"], &ours["message_id"]);
    assert_eq!(
        summary,
        [
            (&json!("message.reaction"), &json!("🍕"), reacted, reacted_id),
            (&json!("message.reaction"), &json!(""), reacted, reacted_id),
            (&json!("message.deleted"), &Value::Null, &regretted["id"], &json!(regret)),
        ],
        "{done:?}"
    );
    let chosen_only =
        linked.receiver.received().iter().all(|r| !r.json()["event"].as_str().unwrap().contains("reaction"));
    assert!(chosen_only, "a webhook that chose nothing gets no reactions");
}

/// The protocol message inside `message`, bare or wrapped as an edit.
fn protocol_of(message: &wa::Message) -> Option<&wa::message::ProtocolMessage> {
    message
        .protocol_message
        .as_option()
        .or_else(|| message.edited_message.as_option()?.message.as_option()?.protocol_message.as_option())
}

#[tokio::test]
async fn reactions_edits_and_deletions_made_through_the_api_and_in_matrix_reach_the_contact() {
    use matrix_sdk::ruma::events::reaction::ReactionEventContent;
    use matrix_sdk::ruma::events::relation::Annotation;
    use whatsapp_rust::waproto::whatsapp::message::protocol_message::Type as ProtocolType;
    let linked = linked(TestApp::with).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let action = |method: Method, path: String| {
        linked.app.bearer(method, &format!("/api/v1/devices/{DEVICE}/messages/{path}"), &linked.token)
    };
    let sent = send(&linked, json!({ "contact": CONTACT, "text": "Dinner at 7?" })).await;
    let (ours, ours_id) =
        (sent["results"][0]["event_id"].as_str().unwrap().to_owned(), sent["results"][0]["message_id"].clone());
    contact.next_message().await;
    let plain = wa::Message { conversation: Some("Make it 8".into()), ..Default::default() };
    let theirs_id = contact.client.send_message(contact_device_chat(), plain).await.unwrap().message_id;
    let theirs = delivery_of(&linked, &theirs_id).await["id"].as_str().unwrap().to_owned();

    let answer =
        expect(action(Method::POST, format!("{theirs}/reaction")).json(&json!({ "emoji": "👍" })), StatusCode::OK)
            .await;
    assert_eq!(answer["status"], "sent", "{answer}");
    let got = contact.next_message().await;
    let reaction = got.message.reaction_message.as_option().expect("a reaction");
    assert_eq!((reaction.key.id.as_deref(), reaction.text.as_deref()), (Some(theirs_id.as_str()), Some("👍")));
    assert_eq!(reaction.key.from_me, Some(false), "on the contact's own message");

    let answer =
        expect(action(Method::PUT, ours.clone()).json(&json!({ "text": "Dinner at 8?" })), StatusCode::OK).await;
    assert_eq!(answer["status"], "sent", "{answer}");
    let got = contact.next_message().await;
    let edit = protocol_of(&got.message).expect("an edit");
    assert_eq!(edit.r#type, Some(ProtocolType::MESSAGE_EDIT), "{got:?}");
    assert_eq!(edit.key.id.as_deref(), ours_id.as_str());
    assert_eq!(edit.edited_message.as_option().and_then(|m| text_of(m)), Some("Dinner at 8?"));

    let answer = expect(action(Method::DELETE, ours.clone()), StatusCode::OK).await;
    assert_eq!(answer["status"], "sent", "{answer}");
    let got = contact.next_message().await;
    let revoke = protocol_of(&got.message).expect("a deletion");
    assert_eq!(revoke.r#type, Some(ProtocolType::REVOKE), "{got:?}");
    assert_eq!(revoke.key.id.as_deref(), ours_id.as_str());

    // In a Matrix client, the identity reacts to the contact's message.
    let client = linked.app.matrix_client(&linked.token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    room.send(ReactionEventContent::new(Annotation::new(theirs.parse().unwrap(), "🎉".into()))).await.unwrap();
    let got = contact.next_message().await;
    let reaction = got.message.reaction_message.as_option().expect("the Matrix client's reaction");
    assert_eq!((reaction.key.id.as_deref(), reaction.text.as_deref()), (Some(theirs_id.as_str()), Some("🎉")));
    linked.app.quiet().await;
}

#[tokio::test]
async fn every_kind_and_signal_reaches_the_contact_as_whatsapp_shows_it_and_the_contacts_come_back() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use whatsapp_rust::wacore::proto_helpers::MessageExt;
    let linked = linked(async |options| TestApp::with(Options { reject_calls: true, ..options }).await).await;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let ada = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL;type=CELL;waid=237677700001:+237677700001\nEND:VCARD";
    let bob = ada.replace("Ada", "Bob");

    send(
        &linked,
        json!({ "contact": CONTACT, "location": { "latitude": 4.0511, "longitude": 9.7679, "name": "Mall" } }),
    )
    .await;
    let got = contact.next_message().await;
    let location = got.message.location_message.as_option().expect("a location");
    assert_eq!((location.degrees_latitude, location.degrees_longitude), (Some(4.0511), Some(9.7679)));
    assert_eq!(location.name.as_deref(), Some("Mall"));

    send(&linked, json!({ "contact": CONTACT, "contact_cards": [{ "vcard": ada }, { "vcard": bob }] })).await;
    let got = contact.next_message().await;
    let cards = got.message.contacts_array_message.as_option().expect("contact cards");
    let names: Vec<_> = cards.contacts.iter().map(|c| (c.display_name.as_deref(), c.vcard.as_deref())).collect();
    assert_eq!(names, [(Some("Ada"), Some(ada)), (Some("Bob"), Some(bob.as_str()))]);

    send(&linked, json!({ "contact": CONTACT, "poll": { "question": "Lunch?", "options": ["Ndolé", "Eru"] } })).await;
    let got = contact.next_message().await;
    let poll = got.message.poll_creation_message_v3.as_option().expect("a single-choice poll");
    let options: Vec<_> = poll.options.iter().map(|o| o.option_name.as_deref()).collect();
    assert_eq!(
        (poll.name.as_deref(), options, poll.selectable_options_count),
        (Some("Lunch?"), vec![Some("Ndolé"), Some("Eru")], Some(1))
    );
    let secret = got.message.message_context_info.as_option().and_then(|c| c.message_secret.as_ref());
    assert_eq!(secret.map(Vec::len), Some(32), "the contact can vote");

    let voice = json!({ "contact": CONTACT, "media_base64": STANDARD.encode(b"OggS voice"), "mime_type": "audio/ogg; codecs=opus", "kind": "voice" });
    send(&linked, voice).await;
    let got = contact.next_message().await;
    let audio = got.message.audio_message.as_option().expect("a voice note");
    assert_eq!(audio.ptt, Some(true));
    assert_eq!(contact.client.download(audio as &dyn Downloadable).await.unwrap(), b"OggS voice");

    let sticker = json!({ "contact": CONTACT, "media_base64": STANDARD.encode(b"RIFF webp"), "mime_type": "image/webp", "kind": "sticker" });
    send(&linked, sticker).await;
    let got = contact.next_message().await;
    assert!(got.message.sticker_message.as_option().is_some(), "{got:?}");

    let png = mxgate_bridge::qr::png("just once").unwrap();
    let once = json!({ "contact": CONTACT, "media_base64": STANDARD.encode(&png), "file_name": "once.png", "view_once": true });
    send(&linked, once).await;
    let got = contact.next_message().await;
    assert!(got.message.is_view_once(), "{got:?}");
    let image = got.message.get_base_message().image_message.as_option().expect("an image");
    assert_eq!(contact.client.download(image as &dyn Downloadable).await.unwrap(), png);

    // The contact sends the same kinds back.
    let mut sent_back = Vec::new();
    for message in [
        wa::Message { location_message: got_location(-33.8568, 151.2153, "Opera House"), ..Default::default() },
        wa::Message {
            contact_message: whatsapp_rust::waproto::buffa::MessageField::some(wa::message::ContactMessage {
                display_name: Some("Ada".into()),
                vcard: Some(ada.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        wa::Message {
            poll_creation_message: whatsapp_rust::waproto::buffa::MessageField::some(
                wa::message::PollCreationMessage {
                    name: Some("Which day?".into()),
                    options: ["Mon", "Tue"]
                        .map(|o| wa::message::poll_creation_message::Option {
                            option_name: Some(o.into()),
                            ..Default::default()
                        })
                        .to_vec(),
                    selectable_options_count: Some(0),
                    ..Default::default()
                },
            ),
            ..Default::default()
        },
    ] {
        sent_back.push(contact.client.send_message(contact_device_chat(), message).await.unwrap().message_id);
    }
    let location = delivery_of(&linked, &sent_back[0]).await;
    assert_eq!(
        (location["type"].clone(), location["location"].clone()),
        (
            json!("m.location"),
            json!({ "latitude": -33.8568, "longitude": 151.2153, "name": "Opera House", "address": null })
        )
    );
    let card = delivery_of(&linked, &sent_back[1]).await;
    assert_eq!(card["contact_cards"], json!([{ "display_name": "Ada", "vcard": ada }]));
    let poll = delivery_of(&linked, &sent_back[2]).await;
    assert_eq!(poll["poll"], json!({ "question": "Which day?", "options": ["Mon", "Tue"], "multiple": true }));

    // The contact's location, forwarded back to it, shows as forwarded.
    let path = format!("/api/v1/devices/{DEVICE}/messages/{}/forward", location["id"].as_str().unwrap());
    let forwarded = expect(
        linked.app.bearer(Method::POST, &path, &linked.token).json(&json!({ "contact": CONTACT })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(forwarded["results"][0]["status"], "sent", "{forwarded}");
    let got = contact.next_message().await;
    let location = got.message.location_message.as_option().expect("the location again");
    assert_eq!((location.degrees_latitude, location.degrees_longitude), (Some(-33.8568), Some(151.2153)));
    let context = location.context_info.as_option().expect("a forward's context");
    assert_eq!((context.is_forwarded, context.forwarding_score), (Some(true), Some(1)));
    signals_reach_the_contact(&linked, &contact).await;
    the_accounts_other_device_writes(&linked, &contact).await;
    votes_cross_both_ways_and_a_call_is_turned_down(&linked, &contact).await;
}

/// The contact votes on the device's poll; the identity votes on the contact's in a Matrix
/// client, and the contact opens the vote with its poll's secret; the contact's call is
/// turned down (the story's mxgate has `MXGATE_REJECT_CALLS`).
async fn votes_cross_both_ways_and_a_call_is_turned_down(linked: &Linked, contact: &Phone) {
    use whatsapp_rust::Jid;
    use whatsapp_rust::types::events::Event;
    use whatsapp_rust::wacore::poll::compute_option_hash;
    use whatsapp_rust::wacore::stanza::call::{OfferParams, build_offer};
    use whatsapp_rust::wacore::types::call::CallAction;
    let hooked = WebhookReceiver::start().await;
    let hook = json!({ "url": hooked.url, "events": ["message", "poll.vote", "call"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;
    let payload = |event: &'static str, id: String| {
        let hooked = &hooked;
        eventually(event, move || {
            let id = id.clone();
            async move {
                let about = |p: &Value| p["message_id"] == id.as_str() || p["call_id"] == id.as_str();
                hooked.received().into_iter().map(|r| r.json()).find(|p| p["event"] == event && about(p))
            }
        })
    };

    let poll = json!({ "question": "Dinner?", "options": ["Ndolé", "Eru", "Koki"], "multiple": true });
    let sent = send(linked, json!({ "contact": CONTACT, "poll": poll })).await;
    let got = contact
        .wait_for(
            "the poll",
            |e| matches!(e, Event::Messages(b) if b.first().is_some_and(|m| m.message.poll_creation_message.is_set())),
        )
        .await;
    let Event::Messages(batch) = &*got else { unreachable!() };
    let batch = batch.first().unwrap();
    let secret = batch.message.message_context_info.as_option().unwrap().message_secret.clone().unwrap();
    let chosen = ["Eru".to_owned(), "Koki".to_owned()];
    contact
        .client
        .polls()
        .vote(contact_device_chat(), &batch.info.id, &Jid::pn(DEVICE), &secret, &chosen)
        .await
        .unwrap();
    let vote = payload("poll.vote", batch.info.id.to_string()).await;
    assert_eq!((&vote["event_id"], &vote["options"]), (&sent["results"][0]["event_id"], &json!(chosen)));

    let options = ["Mon".to_owned(), "Tue".to_owned()];
    let (created, secret) =
        contact.client.polls().create(contact_device_chat(), "Which day?", &options, 1).await.unwrap();
    let theirs = payload("message", created.message_id.clone()).await;
    let client = linked.app.matrix_client(&linked.token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    let event_id = matrix_sdk::ruma::EventId::parse(theirs["id"].as_str().unwrap()).unwrap();
    let start = room.event(&event_id, None).await.unwrap().raw().deserialize_as::<Value>().unwrap();
    let answers = start["content"]["org.matrix.msc3381.poll.start"]["answers"].as_array().unwrap().clone();
    let tue = answers.iter().find(|a| a["org.matrix.msc1767.text"] == "Tue").unwrap()["id"].clone();
    let response = json!({
        "m.relates_to": { "rel_type": "m.reference", "event_id": theirs["id"] },
        "org.matrix.msc3381.poll.response": { "answers": [tue] },
    });
    room.send_raw("org.matrix.msc3381.poll.response", response).await.unwrap();
    let hashes = next_vote(contact, "the vote", &secret, &created.message_id).await;
    assert_eq!(hashes, [compute_option_hash("Tue").to_vec()]);

    // The device changes its vote through the API.
    let path = format!("/api/v1/devices/{DEVICE}/messages/{}/vote", theirs["id"].as_str().unwrap());
    let voted = linked.app.bearer(Method::POST, &path, &linked.token).json(&json!({ "options": ["Mon"] }));
    assert_eq!(expect(voted, StatusCode::OK).await["status"], "sent");
    let hashes = next_vote(contact, "the second vote", &secret, &created.message_id).await;
    assert_eq!(hashes, [compute_option_hash("Mon").to_vec()]);

    let offer = build_offer(&OfferParams {
        call_id: "CALL0001",
        to: &Jid::pn(DEVICE),
        call_creator: &contact.jid(),
        device_keys: &[],
        privacy_token: None,
        capability: None,
        device_identity: None,
        id: Some("call-stanza-1"),
        multi_device: false,
        video: true,
        audio_rates: &["16000"],
    });
    contact.client.send_node(offer).await.unwrap();
    let rejected = contact
        .wait_for(
            "the call turned down",
            |e| matches!(e, Event::IncomingCall(c) if matches!(c.action, CallAction::Reject { .. })),
        )
        .await;
    let Event::IncomingCall(rejected) = &*rejected else { unreachable!() };
    assert_eq!(rejected.action.call_id(), "CALL0001");
    let call = payload("call", "CALL0001".into()).await;
    assert_eq!((&call["video"], &call["rejected"]), (&json!(true), &json!(true)), "{call}");
    linked.app.quiet().await;
}

/// The options (their hashes) of the next vote on poll `poll_id` the contact's client
/// receives, opened with the poll's `secret`.
async fn next_vote(contact: &Phone, what: &str, secret: &[u8], poll_id: &str) -> Vec<Vec<u8>> {
    use whatsapp_rust::Jid;
    use whatsapp_rust::types::events::Event;
    use whatsapp_rust::wacore::poll::PollVoteCiphertext;
    let got = contact
        .wait_for(
            what,
            |e| matches!(e, Event::Messages(b) if b.first().is_some_and(|m| m.message.poll_update_message.is_set())),
        )
        .await;
    let Event::Messages(batch) = &*got else { unreachable!() };
    let update = batch.first().unwrap().message.poll_update_message.as_option().unwrap();
    assert_eq!(update.poll_creation_message_key.as_option().unwrap().id.as_deref(), Some(poll_id));
    let vote = update.vote.as_option().unwrap();
    let ciphertext = PollVoteCiphertext {
        enc_payload: vote.enc_payload.as_deref().unwrap(),
        enc_iv: vote.enc_iv.as_deref().unwrap(),
    };
    contact.client.polls().decrypt_vote(ciphertext, secret, poll_id, &contact.jid(), &Jid::pn(DEVICE)).await.unwrap()
}

/// Marking read, typing and presence reach the contact's client, through the API and
/// from a Matrix client.
async fn signals_reach_the_contact(linked: &Linked, contact: &Phone) {
    use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType as MatrixReceipt;
    use matrix_sdk::ruma::events::receipt::ReceiptThread;
    use whatsapp_rust::types::events::Event;
    use whatsapp_rust::types::presence::ReceiptType;
    use whatsapp_rust::wacore::types::presence::ChatPresence;
    let post = |path: &str| linked.app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/{path}"), &linked.token);

    let mut ids = Vec::new();
    for text in ["one", "two"] {
        let message = wa::Message { conversation: Some(text.into()), ..Default::default() };
        ids.push(contact.client.send_message(contact_device_chat(), message).await.unwrap().message_id);
    }
    delivery_of(linked, &ids[1]).await;
    delivery_of(linked, &ids[0]).await;
    // The location, card and poll the contact sent before are unread too.
    assert_eq!(expect(post(&format!("chats/{CONTACT}/read")), StatusCode::OK).await, json!({ "read": 5 }));
    let mut unread: std::collections::BTreeSet<String> = ids.iter().cloned().collect();
    while !unread.is_empty() {
        let receipt = contact
            .wait_for("a read receipt", |e| matches!(e, Event::Receipt(r) if r.r#type == ReceiptType::Read))
            .await;
        let Event::Receipt(receipt) = &*receipt else { unreachable!() };
        assert_eq!(receipt.source.sender.user.as_str(), DEVICE, "{receipt:?}");
        for id in &receipt.message_ids {
            unread.remove(id.as_str());
        }
    }

    expect(post(&format!("chats/{CONTACT}/typing")).json(&json!({ "state": "composing" })), StatusCode::OK).await;
    let typing = contact.wait_for("typing", |e| matches!(e, Event::ChatPresence(_))).await;
    let Event::ChatPresence(typing) = &*typing else { unreachable!() };
    assert_eq!((typing.source.sender.user.as_str(), typing.state), (DEVICE, ChatPresence::Composing));

    contact.client.presence().subscribe(whatsapp_rust::Jid::pn(DEVICE)).await.unwrap();
    expect(post("presence").json(&json!({ "available": true })), StatusCode::OK).await;
    let online = contact.wait_for("presence", |e| matches!(e, Event::Presence(p) if !p.unavailable)).await;
    let Event::Presence(online) = &*online else { unreachable!() };
    assert_eq!(online.from.user.as_str(), DEVICE);

    // The same from a Matrix client in the portal: typing, stopping, reading.
    let client = linked.app.matrix_client(&linked.token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    room.typing_notice(true).await.unwrap();
    contact
        .wait_for("typing from Matrix", |e| matches!(e, Event::ChatPresence(p) if p.state == ChatPresence::Composing))
        .await;
    room.typing_notice(false).await.unwrap();
    contact.wait_for("stopped", |e| matches!(e, Event::ChatPresence(p) if p.state == ChatPresence::Paused)).await;
    let message = wa::Message { conversation: Some("read me in Element".into()), ..Default::default() };
    let unread = contact.client.send_message(contact_device_chat(), message).await.unwrap().message_id;
    let event = delivery_of(linked, &unread).await["id"].as_str().unwrap().parse().unwrap();
    room.send_single_receipt(MatrixReceipt::Read, ReceiptThread::Unthreaded, event).await.unwrap();
    contact
        .wait_for(
            "read from Matrix",
            |e| matches!(e, Event::Receipt(r) if r.r#type == ReceiptType::Read && r.message_ids.contains(&unread)),
        )
        .await;
    linked.app.quiet().await;
}

/// What the account writes on another linked device reaches a `message.sent` webhook.
async fn the_accounts_other_device_writes(linked: &Linked, contact: &Phone) {
    let sent_hook = WebhookReceiver::start().await;
    let hook = json!({ "url": sent_hook.url, "events": ["message.sent"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;

    // The account's phone is simulated; another linked client of the account writes.
    let own_other_device = Phone::new(&linked.sim, DEVICE, "Device Owner").await;
    let message = wa::Message { conversation: Some("sent from my laptop".into()), ..Default::default() };
    let id = own_other_device.client.send_message(contact.jid(), message).await.unwrap().message_id;
    assert_eq!(text_of(&contact.next_message().await.message), Some("sent from my laptop"));
    let sent = sent_hook.wait_for(1).await[0].json();
    linked.app.quiet().await;
    assert_eq!(
        (sent["event"].clone(), sent["from_me"].clone(), sent["message"].clone(), sent["message_id"].clone()),
        (json!("message.sent"), json!(true), json!("sent from my laptop"), json!(id)),
        "{sent}"
    );
    assert_eq!(sent["chat_id"], format!("{CONTACT}@s.whatsapp.net"));
    assert!(linked.receiver.received().iter().all(|r| r.json()["message_id"] != id), "not a contact's message");
}

fn got_location(
    latitude: f64,
    longitude: f64,
    name: &str,
) -> whatsapp_rust::waproto::buffa::MessageField<wa::message::LocationMessage> {
    whatsapp_rust::waproto::buffa::MessageField::some(wa::message::LocationMessage {
        degrees_latitude: Some(latitude),
        degrees_longitude: Some(longitude),
        name: Some(name.into()),
        ..Default::default()
    })
}

#[tokio::test]
async fn a_conversation_of_120_messages_reads_back_from_matrix_as_the_webhooks_had_it() {
    use whatsapp_rust::download::MediaType;
    use whatsapp_rust::upload::UploadOptions;
    const OLDER: &str = "237698700203";
    let linked = linked(TestApp::with).await;
    linked.sim.create_account(OLDER, "Someone Else").unwrap();
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let hooked = WebhookReceiver::start().await;
    let hook = json!({ "url": hooked.url, "events": ["message", "message.edited", "message.reaction"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&hook), StatusCode::CREATED).await;
    send(&linked, json!({ "contact": OLDER, "text": "an older chat" })).await;

    let png = mxgate_bridge::qr::png("a picture").unwrap();
    let chat = contact_device_chat();
    let (mut contact_ids, mut device_events, mut last_contact) = (Vec::new(), Vec::new(), String::new());
    let text = |text: String| wa::Message { conversation: Some(text), ..Default::default() };
    for n in 0..120 {
        let message = match n {
            // The device answers every eighth, quoting the contact's last message.
            _ if n % 8 == 4 => {
                let reply = delivery_of(&linked, &last_contact).await["id"].clone();
                let sent =
                    send(&linked, json!({ "contact": CONTACT, "text": format!("answer {n}"), "reply_id": reply }))
                        .await;
                device_events.push(sent["results"][0]["event_id"].as_str().unwrap().to_owned());
                continue;
            }
            7 => {
                let upload =
                    contact.client.upload(png.clone(), MediaType::Image, UploadOptions::default()).await.unwrap();
                let image = wa::message::ImageMessage {
                    url: Some(upload.url),
                    direct_path: Some(upload.direct_path),
                    media_key: Some(upload.media_key.to_vec()),
                    file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                    file_sha256: Some(upload.file_sha256.to_vec()),
                    file_length: Some(upload.file_length),
                    mimetype: Some("image/png".into()),
                    ..Default::default()
                };
                wa::Message {
                    image_message: whatsapp_rust::waproto::buffa::MessageField::some(image),
                    ..Default::default()
                }
            }
            30 | 70 | 90 => {
                let key = wa::MessageKey {
                    remote_jid: Some(format!("{DEVICE}@s.whatsapp.net")),
                    from_me: Some(true),
                    id: Some(last_contact.clone()),
                    ..Default::default()
                };
                contact.client.send_reaction(chat.clone(), key, "👍").await.unwrap();
                continue;
            }
            50 => {
                contact
                    .client
                    .edit_message(chat.clone(), last_contact.clone(), text("edited words".into()))
                    .await
                    .unwrap();
                continue;
            }
            3 => text("message three says zanzibar".into()),
            119 => text("the last word".into()),
            _ => text(format!("message {n}")),
        };
        last_contact = contact.client.send_message(chat.clone(), message).await.unwrap().message_id;
        contact_ids.push(last_contact.clone());
    }
    hooked.wait_for(contact_ids.len() + 4).await;
    linked.app.quiet().await;
    let chat_id = format!("{CONTACT}@s.whatsapp.net");
    let delivered: Vec<Value> =
        hooked.in_event_order().into_iter().filter(|p| p["chat_id"] == chat_id.as_str()).collect();
    let messages: Vec<&str> =
        delivered.iter().filter(|p| p["event"] == "message").map(|p| p["message_id"].as_str().unwrap()).collect();
    assert_eq!(messages, contact_ids, "bridged in the order the contact wrote");
    let by_text =
        |text: &str| delivered.iter().find(|p| p["message"] == text).unwrap()["id"].as_str().unwrap().to_owned();
    let image = delivered.iter().find(|p| p["type"] == "m.image").unwrap()["id"].as_str().unwrap().to_owned();
    let conversation = Conversation {
        device: DEVICE.into(),
        chat: chat_id,
        older_chat: format!("{OLDER}@s.whatsapp.net"),
        word: ("zanzibar".into(), by_text("message three says zanzibar")),
        image: (image, png),
        last_text: "the last word".into(),
        contact: delivered,
        device_events,
    };
    reads_back(&linked.app, &linked.token, &conversation).await;
}

#[tokio::test]
async fn fifty_numbers_are_checked_in_one_whatsapp_query_and_profiles_cross_both_ways() {
    let linked = linked(TestApp::with).await;
    let on: Vec<String> = (0..40).map(|n| format!("2376987008{n:02}")).collect();
    for phone in &on {
        linked.sim.create_account(phone, "Someone").unwrap();
    }
    linked.sim.make_business(&on[10]);
    linked.sim.make_business(&on[11]);
    let off: Vec<String> = (0..10).map(|n| format!("2376987009{n:02}")).collect();
    let phones: Vec<String> = on.iter().chain(&off).cloned().collect();
    let check = || {
        let path = format!("/api/v1/devices/{DEVICE}/contacts/check");
        linked.app.bearer(Method::POST, &path, &linked.token).json(&json!({ "phones": phones }))
    };
    let before = linked.sim.contact_queries(DEVICE).len();

    let answer = expect(check(), StatusCode::OK).await;
    for (result, phone) in answer["results"].as_array().unwrap().iter().zip(&phones) {
        let registered = on.contains(phone);
        let jid = registered.then(|| format!("{phone}@s.whatsapp.net"));
        let business = registered && (*phone == on[10] || *phone == on[11]);
        assert_eq!(result, &json!({ "phone": phone, "on_whatsapp": registered, "jid": jid, "business": business }));
    }
    assert_eq!(linked.sim.contact_queries(DEVICE)[before..], [50], "one usync query for the batch");
    assert_eq!(expect(check(), StatusCode::OK).await, answer);
    assert_eq!(linked.sim.contact_queries(DEVICE).len(), before + 1, "answered from what was kept");
    profiles_cross_both_ways(&linked).await;
}

/// The device's profile reaches a contact's client; the contact's reaches the API.
async fn profiles_cross_both_ways(linked: &Linked) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use whatsapp_rust::Jid;
    let contact = Phone::new(&linked.sim, CONTACT, "Contact Person").await;
    let path = format!("/api/v1/devices/{DEVICE}/profile");
    let png = mxgate_bridge::qr::png("shop logo").unwrap();
    let change = json!({ "push_name": "Ada's Shop", "about": "Open 9 to 5", "picture_base64": STANDARD.encode(&png) });
    let profile = expect(linked.app.bearer(Method::PUT, &path, &linked.token).json(&change), StatusCode::OK).await;
    assert_eq!((&profile["push_name"], &profile["about"]), (&json!("Ada's Shop"), &json!("Open 9 to 5")));
    let device = Jid::pn(DEVICE);
    let info = contact.client.contacts().get_user_info(std::slice::from_ref(&device)).await.unwrap();
    assert_eq!(info.values().next().and_then(|i| i.status.as_deref()), Some("Open 9 to 5"));
    let picture = contact.client.contacts().get_profile_picture(&device, false).await.unwrap().expect("a picture");
    assert_eq!(profile["picture_url"], picture.url.as_str());

    contact.client.profile().set_status_text("Gone fishing").await.unwrap();
    contact.client.profile().set_profile_picture(png.clone()).await.unwrap();
    let path = format!("/api/v1/devices/{DEVICE}/contacts/{CONTACT}");
    let seen = expect(linked.app.bearer(Method::GET, &path, &linked.token), StatusCode::OK).await;
    assert_eq!(seen["about"], "Gone fishing");
    assert!(seen["picture_url"].as_str().is_some_and(|u| u.contains(CONTACT)), "{seen}");
}

#[tokio::test]
async fn a_group_is_made_and_administered_and_the_members_clients_and_the_portal_follow() {
    use whatsapp_rust::features::GroupSubject;
    use whatsapp_rust::types::events::Event;
    use whatsapp_rust::wacore::stanza::groups::GroupNotificationAction as Action;
    const FIRST: &str = "237698700471";
    const SECOND: &str = "237698700472";
    let linked = linked(TestApp::with).await;
    let _first = Phone::new(&linked.sim, FIRST, "First").await;
    let second = Phone::new(&linked.sim, SECOND, "Second").await;
    let hook = WebhookReceiver::start().await;
    let body = json!({ "url": hook.url, "events": ["group.created", "group.updated", "group.participants"] });
    expect(linked.app.bearer(Method::POST, "/api/v1/webhooks", &linked.token).json(&body), StatusCode::CREATED).await;

    // A number with no WhatsApp account is the stranger.
    let cast = Cast { device: DEVICE, first: FIRST, second: SECOND, stranger: "237698700479" };
    let made = administer(&linked.app, &linked.token, &cast, &hook).await;

    // WhatsApp itself, and the member's client, have each change.
    let group = linked.sim.group(&made.chat_id).unwrap();
    assert_eq!((group.subject.as_str(), group.description.as_deref()), ("Team Δ", Some("Plans")));
    assert_eq!(group.members, [DEVICE, SECOND]);
    assert!(group.admins.contains(&SECOND.to_owned()) && group.announce && group.locked, "{group:?}");
    second
        .wait_for("the subject at the member's client", |event| {
            matches!(event, Event::GroupUpdate(u) if matches!(&u.action, Action::Subject { subject, .. } if subject == "Team Δ"))
        })
        .await;

    // The promoted member renames the group from their client.
    let jid: whatsapp_rust::Jid = made.chat_id.parse().unwrap();
    second.client.groups().set_subject(jid, GroupSubject::new("Team Ω").unwrap()).await.unwrap();
    let renamed = hook.wait_for(made.delivered + 1).await[made.delivered].json();
    assert_eq!(
        (&renamed["event"], &renamed["subject"], &renamed["by"]),
        (&json!("group.updated"), &json!("Team Ω"), &json!(SECOND))
    );
    linked.app.quiet().await;
    let client = linked.app.matrix_client(&linked.token).await;
    assert_eq!(client.get_room(&made.room_id).unwrap().name().as_deref(), Some("Team Ω"));
}
