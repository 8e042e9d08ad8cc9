//! Votes on polls both ways, calls, and deleting a message for the device alone, on the
//! simulated network: the network's outbox and signals show what reached WhatsApp.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Options, TestApp, WebhookReceiver, eventually, expect, expect_error};

const DEVICE: &str = "237600000451";
const CONTACT: &str = "237698700451";

#[tokio::test]
async fn votes_cross_both_ways_a_call_is_told_and_a_message_deleted_for_me_stays_on_whatsapp() {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let everything = WebhookReceiver::start().await;
    let hook = json!({ "url": everything.url, "events": ["message", "poll.vote", "call", "message.deleted"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;
    let calls = WebhookReceiver::start().await;
    let hook = json!({ "url": calls.url, "events": ["call"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;

    // The device's poll; the contact votes, changes its mind, then takes its vote back.
    let poll = json!({ "question": "Which day?", "options": ["Mon", "Tue", "Wed"], "multiple": true });
    let path = format!("/api/v1/devices/{DEVICE}/message");
    let sent = expect(
        app.bearer(Method::POST, &path, &token).json(&json!({ "contact": CONTACT, "poll": poll })),
        StatusCode::OK,
    )
    .await;
    let poll_event = sent["results"][0]["event_id"].clone();
    let poll_id = app.sim_outbox(DEVICE).await[0]["message_id"].as_str().unwrap().to_owned();
    for options in [json!(["Tue", "Wed"]), json!(["Mon"]), json!([])] {
        app.inject(DEVICE, CONTACT, json!({ "poll_vote": { "target": poll_id, "options": options } })).await;
    }
    let votes: Vec<Value> = everything.wait_for(3).await.iter().map(|d| d.json()).collect();
    for (vote, options) in votes.iter().zip([json!(["Tue", "Wed"]), json!(["Mon"]), json!([])]) {
        assert_eq!(vote["event"], "poll.vote", "{vote}");
        assert_eq!(
            (&vote["event_id"], &vote["message_id"], &vote["options"]),
            (&poll_event, &json!(poll_id), &options)
        );
        assert!(vote["from"].as_str().unwrap().contains(CONTACT), "the contact's puppet: {vote}");
    }

    // The contact's poll; the identity votes on it in a Matrix client (by MSC3381 answer id).
    let theirs =
        app.inject(DEVICE, CONTACT, json!({ "poll": { "question": "Lunch?", "options": ["Ndolé", "Eru"] } })).await;
    let message = everything.wait_for(4).await[3].json();
    assert_eq!(message["message_id"], theirs.as_str());
    let client = app.matrix_client(&token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    let event_id = matrix_sdk::ruma::EventId::parse(message["id"].as_str().unwrap()).unwrap();
    let start = room.event(&event_id, None).await.unwrap().raw().deserialize_as::<Value>().unwrap();
    let answers = &start["content"]["org.matrix.msc3381.poll.start"]["answers"];
    let eru = answers.as_array().unwrap().iter().find(|a| a["org.matrix.msc1767.text"] == "Eru").unwrap()["id"].clone();
    let response = json!({
        "m.relates_to": { "rel_type": "m.reference", "event_id": message["id"] },
        "org.matrix.msc3381.poll.response": { "answers": [eru] },
    });
    room.send_raw("org.matrix.msc3381.poll.response", response).await.unwrap();
    eventually("the vote at the network", || async {
        app.sim_outbox(DEVICE).await.into_iter().find(|m| m["action"] == "poll_vote")
    })
    .await;
    app.quiet().await;
    let vote = app.sim_outbox(DEVICE).await.into_iter().find(|m| m["action"] == "poll_vote").unwrap();
    assert_eq!((&vote["target"], &vote["options"]), (&json!(theirs), &json!(["Eru"])));

    // The device changes its mind through the API; what the poll does not allow changes nothing.
    let vote_on = |id: &Value, options: Value| {
        let path = format!("/api/v1/devices/{DEVICE}/messages/{}/vote", id.as_str().unwrap());
        app.bearer(Method::POST, &path, &token).json(&json!({ "options": options }))
    };
    let before = app.sim_outbox(DEVICE).await.len();
    for refused in [json!(["Pizza"]), json!(["Eru", "Ndolé"]), json!(["Eru", "Eru"])] {
        expect_error(vote_on(&message["id"], refused), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    expect_error(vote_on(&poll_event, json!(["Mon", "Mon"])), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    let voted = expect(vote_on(&message["id"], json!(["Ndolé"])), StatusCode::OK).await;
    assert_eq!(voted["status"], "sent", "{voted}");
    let sent = app.sim_outbox(DEVICE).await;
    assert_eq!(sent.len(), before + 1);
    assert_eq!((&sent[before]["target"], &sent[before]["options"]), (&json!(theirs), &json!(["Ndolé"])));

    // A video call: told in the chat and to the webhooks that chose calls, not turned down.
    let call_id = app.inject(DEVICE, CONTACT, json!({ "call": { "video": true } })).await;
    let call = calls.wait_for(1).await[0].json();
    assert_eq!(call["event"], "call");
    assert_eq!((&call["call_id"], &call["video"], &call["rejected"]), (&json!(call_id), &json!(true), &json!(false)));
    assert_eq!(call["chat_id"], format!("{CONTACT}@s.whatsapp.net"));

    // Deleted for the device alone: gone from Matrix, WhatsApp never told.
    let text = app.inject(DEVICE, CONTACT, json!({ "text": "only for your eyes" })).await;
    let received = everything.wait_for(6).await.iter().map(|d| d.json()).find(|p| p["message_id"] == text).unwrap();
    let delete = |id: &Value, scope: &str| {
        let path = format!("/api/v1/devices/{DEVICE}/messages/{}{scope}", id.as_str().unwrap());
        app.bearer(Method::DELETE, &path, &token)
    };
    expect_error(delete(&received["id"], ""), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(delete(&received["id"], "?for=them"), StatusCode::BAD_REQUEST, "bad_request").await;
    let not_a_poll = vote_on(&received["id"], json!(["Mon"]));
    expect_error(not_a_poll, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let before = app.sim_outbox(DEVICE).await.len();
    let deleted = expect(delete(&received["id"], "?for=me"), StatusCode::OK).await;
    assert_eq!(deleted["status"], "deleted", "{deleted}");
    let event_id = matrix_sdk::ruma::EventId::parse(received["id"].as_str().unwrap()).unwrap();
    eventually("the message redacted in Matrix", || async {
        let event = room.event(&event_id, None).await.ok()?.raw().deserialize_as::<Value>().ok()?;
        event["content"].as_object().is_some_and(|c| c.is_empty()).then_some(())
    })
    .await;
    app.quiet().await;
    assert_eq!(app.sim_outbox(DEVICE).await.len(), before, "nothing went to WhatsApp");
    let got: Vec<Value> = everything.received().iter().map(|d| d.json()).collect();
    assert!(got.iter().all(|p| p["event"] != "message.deleted"), "{got:?}");
    assert_eq!(calls.received().len(), 1, "the call-only webhook got the call alone");
}

#[tokio::test]
async fn with_reject_calls_a_call_is_turned_down_as_it_rings() {
    let app = TestApp::with(Options { reject_calls: true, ..Options::default() }).await;
    let token = app.token_with_device(DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    let hook = json!({ "url": receiver.url, "events": ["call"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;

    let call_id = app.inject(DEVICE, CONTACT, json!({ "call": {} })).await;
    let call = receiver.wait_for(1).await[0].json();
    assert_eq!((&call["call_id"], &call["video"], &call["rejected"]), (&json!(call_id), &json!(false), &json!(true)));
    let signals = expect(app.request(Method::GET, &format!("/sim/signals?device_id={DEVICE}")), StatusCode::OK).await;
    assert_eq!(signals, json!([{ "kind": "call_rejected", "call_id": call_id, "caller": CONTACT }]));
}
