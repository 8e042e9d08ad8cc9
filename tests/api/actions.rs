//! Reactions, edits and deletions of messages, by their Matrix event id, through the API
//! and from a Matrix client in the portal; the simulated network records what it was sent.

use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, eventually, expect, expect_error};

const DEVICE: &str = "237600000411";
const CONTACT: &str = "237698700411";

#[tokio::test]
async fn a_message_is_reacted_to_edited_and_deleted_by_its_event_id_through_the_api_and_from_matrix() {
    let app = TestApp::start().await;
    let (token, receiver) = app.token_with_receiver(DEVICE).await;
    let action =
        |method: Method, path: String| app.bearer(method, &format!("/api/v1/devices/{DEVICE}/messages/{path}"), &token);

    let body = json!({ "contact": CONTACT, "text": "Dinner at 7?" });
    let sent = expect(
        app.bearer(Method::POST, &format!("/api/v1/devices/{DEVICE}/message"), &token).json(&body),
        StatusCode::OK,
    )
    .await;
    let (ours, ours_id) =
        (sent["results"][0]["event_id"].as_str().unwrap().to_owned(), sent["results"][0]["message_id"].clone());
    let incoming = json!({ "device_id": DEVICE, "from": CONTACT, "text": "Make it 8" });
    let theirs_id =
        expect(app.request(Method::POST, "/sim/incoming").json(&incoming), StatusCode::OK).await["message_id"].clone();
    let theirs = receiver.wait_for(1).await[0].json()["id"].as_str().unwrap().to_owned();

    // Refusals change nothing.
    let before = app.sim_outbox(DEVICE).await.len();
    expect_error(
        action(Method::PUT, theirs.clone()).json(&json!({ "text": "mine now" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(action(Method::DELETE, theirs.clone()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(
        action(Method::PUT, ours.clone()).json(&json!({ "text": " " })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        action(Method::POST, format!("{theirs}/reaction")).json(&json!({ "emoji": "" })),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(action(Method::DELETE, "$nothing:mxgate.test".into()), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(action(Method::DELETE, "not-an-event".into()), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    expect_error(
        action(Method::POST, format!("{ours}/reaction")).json(&json!({ "emoji": 7 })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.sim_outbox(DEVICE).await.len(), before, "nothing was sent");

    let done = |answer: &Value| assert_eq!(answer["status"], "sent", "{answer}");
    done(
        &expect(action(Method::POST, format!("{theirs}/reaction")).json(&json!({ "emoji": "👍" })), StatusCode::OK)
            .await,
    );
    done(
        &expect(action(Method::POST, format!("{theirs}/reaction")).json(&json!({ "emoji": "" })), StatusCode::OK).await,
    );
    done(&expect(action(Method::PUT, ours.clone()).json(&json!({ "text": "Dinner at 8?" })), StatusCode::OK).await);
    done(&expect(action(Method::DELETE, ours.clone()), StatusCode::OK).await);

    // The identity, in a Matrix client, reacts to the contact's message and takes it back.
    let client = app.matrix_client(&token).await;
    let room = client.joined_rooms().into_iter().next().expect("the contact's portal");
    let target: matrix_sdk::ruma::OwnedEventId = theirs.parse().unwrap();
    let reaction = room.send(ReactionEventContent::new(Annotation::new(target, "🎉".into()))).await.unwrap();
    eventually("the Matrix client's reaction at the network", || async {
        (app.sim_outbox(DEVICE).await.iter().filter(|m| m["action"] == "reaction").count() == 3).then_some(())
    })
    .await;
    room.redact(&reaction.response.event_id, None, None).await.unwrap();
    eventually("its taking back at the network", || async {
        (app.sim_outbox(DEVICE).await.len() == before + 6).then_some(())
    })
    .await;
    app.quiet().await;

    let sent = app.sim_outbox(DEVICE).await;
    let actions: Vec<(&Value, &Value, &Value, &Value)> =
        sent[before..].iter().map(|m| (&m["action"], &m["target"], &m["emoji"], &m["text"])).collect();
    let none = Value::Null;
    assert_eq!(
        actions,
        [
            (&json!("reaction"), &theirs_id, &json!("👍"), &none),
            (&json!("reaction"), &theirs_id, &json!(""), &none),
            (&json!("edit"), &ours_id, &none, &json!("Dinner at 8?")),
            (&json!("delete"), &ours_id, &none, &none),
            (&json!("reaction"), &theirs_id, &json!("🎉"), &none),
            (&json!("reaction"), &theirs_id, &json!(""), &none),
        ],
        "{sent:?}"
    );
}
