//! A group administered through the API, as both the `sim` and the whatsapp-connector
//! stories run it: each change answers as it should, reaches the webhook as a `group.*`
//! event, and shows in the portal as a Matrix client sees it.

use std::collections::BTreeSet;

use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::{OwnedRoomId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, WebhookReceiver, expect, expect_error};

/// The people of the story: `first` is in the group from the start and removed later,
/// `second` is added and promoted; `stranger` is a number not on WhatsApp.
pub struct Cast<'a> {
    pub device: &'a str,
    pub first: &'a str,
    pub second: &'a str,
    pub stranger: &'a str,
}

/// What the story made.
pub struct Made {
    pub chat_id: String,
    pub room_id: OwnedRoomId,
    /// The `group.*` deliveries so far.
    pub delivered: usize,
}

/// A group's payloads as the story expects them, one `(event, what)` each.
fn told(payload: &Value) -> (String, String) {
    let what = match payload["event"].as_str().unwrap() {
        "group.participants" => format!("{} {}", payload["action"], payload["participants"]),
        "group.updated" => payload["change"].as_str().unwrap().to_owned(),
        _ => payload["subject"].as_str().unwrap().to_owned(),
    };
    (payload["event"].as_str().unwrap().to_owned(), what)
}

pub async fn administer(app: &TestApp, token: &str, cast: &Cast<'_>, hook: &WebhookReceiver) -> Made {
    let Cast { device, first, second, stranger } = *cast;
    let groups = format!("/api/v1/devices/{device}/groups");

    // Refusals first: nothing is made by them.
    for (body, what) in [
        (json!({ "subject": " ", "participants": [first] }), "a blank subject"),
        (json!({ "subject": "x".repeat(101), "participants": [first] }), "a subject too long"),
        (json!({ "subject": "Team", "participants": ["12"] }), "a number too short"),
        (json!({ "subject": "Team" }), "no participants"),
    ] {
        let refused = app.bearer(Method::POST, &groups, token).json(&body).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }
    let listed = expect(app.bearer(Method::GET, &groups, token), StatusCode::OK).await;
    assert_eq!(listed["groups"], json!([]), "no group was made by a refused request");

    let made = expect(
        app.bearer(Method::POST, &groups, token).json(&json!({ "subject": "Team", "participants": [first] })),
        StatusCode::CREATED,
    )
    .await;
    let chat_id = made["chat_id"].as_str().unwrap().to_owned();
    assert!(chat_id.ends_with("@g.us"), "{made}");
    assert_eq!(roles(&made), [(device.into(), "owner".into()), (first.into(), "member".into())].into());
    let room_id: OwnedRoomId = made["room_id"].as_str().expect("the portal is made at once").try_into().unwrap();
    let group = format!("{groups}/{chat_id}");

    let members = |action: &str, phones: Value| {
        app.bearer(Method::POST, &format!("{group}/participants"), token)
            .json(&json!({ "action": action, "phones": phones }))
    };
    let added = expect(members("add", json!([second, first, stranger, second])), StatusCode::OK).await;
    let results: Vec<(Value, Value)> =
        added["results"].as_array().unwrap().iter().map(|r| (r["phone"].clone(), r["error"].clone())).collect();
    assert_eq!(
        results,
        [
            (json!(second), Value::Null),
            (json!(first), json!("already_member")),
            (json!(stranger), json!("not_on_whatsapp")),
            (json!(second), Value::Null),
        ]
    );
    assert_eq!(expect(members("promote", json!([second])), StatusCode::OK).await["results"][0]["ok"], true);
    assert_eq!(expect(members("remove", json!([first])), StatusCode::OK).await["results"][0]["ok"], true);
    for (body, code) in [
        (json!({ "action": "kick", "phones": [first] }), "validation_failed"),
        (json!({ "action": "add", "phones": [] }), "validation_failed"),
        (json!({ "action": "add", "phones": ["nope"] }), "validation_failed"),
    ] {
        let path = format!("{group}/participants");
        expect_error(app.bearer(Method::POST, &path, token).json(&body), StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }

    let update = |body: Value| app.bearer(Method::PUT, &group, token).json(&body);
    let renamed = expect(update(json!({ "subject": "Team Δ", "description": "Plans" })), StatusCode::OK).await;
    assert_eq!((&renamed["subject"], &renamed["description"]), (&json!("Team Δ"), &json!("Plans")));
    let settled = expect(update(json!({ "announce": true, "locked": true })), StatusCode::OK).await;
    assert_eq!((&settled["announce"], &settled["locked"]), (&json!(true), &json!(true)));
    let picture = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(mxgate_bridge::qr::png("team picture").unwrap())
    };
    expect(update(json!({ "picture_base64": picture })), StatusCode::OK).await;
    expect_error(
        update(json!({ "picture_base64": "bm90IGEgcGljdHVyZQ==" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(update(json!({})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(update(json!({ "subject": "" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let invite = format!("{group}/invite");
    let link = expect(app.bearer(Method::GET, &invite, token), StatusCode::OK).await["invite_url"].clone();
    let new_link = expect(app.bearer(Method::DELETE, &invite, token), StatusCode::OK).await["invite_url"].clone();
    assert!(link.as_str().unwrap().starts_with("https://chat.whatsapp.com/"), "{link}");
    assert_ne!(link, new_link, "a revoked link is replaced");

    let now = expect(app.bearer(Method::GET, &group, token), StatusCode::OK).await;
    assert_eq!(roles(&now), [(device.into(), "owner".into()), (second.into(), "admin".into())].into());
    assert_eq!(now["room_id"], made["room_id"]);
    let listed = expect(app.bearer(Method::GET, &groups, token), StatusCode::OK).await;
    assert_eq!(listed["groups"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["groups"][0]["chat_id"], json!(chat_id));
    expect_error(
        app.bearer(Method::GET, &format!("{groups}/{first}"), token),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        app.bearer(Method::GET, &format!("{groups}/120363999999999999@g.us"), token),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Every change reached the webhook once, as the device's own. A change's notice may
    // still be on its way from WhatsApp when its request answers: wait for them all,
    // then for quiet, so that one too many would show.
    let mut wanted: Vec<(String, String)> = [
        ("group.created", "Team".to_owned()),
        ("group.participants", format!("\"added\" [\"{second}\"]")),
        ("group.participants", format!("\"promoted\" [\"{second}\"]")),
        ("group.participants", format!("\"removed\" [\"{first}\"]")),
        ("group.updated", "subject".to_owned()),
        ("group.updated", "description".to_owned()),
        ("group.updated", "announce".to_owned()),
        ("group.updated", "locked".to_owned()),
        ("group.updated", "invite_revoked".to_owned()),
        ("group.updated", "picture".to_owned()),
    ]
    .into_iter()
    .map(|(e, w)| (e.to_owned(), w))
    .collect();
    wanted.sort();
    hook.wait_for(wanted.len()).await;
    app.quiet().await;
    let payloads: Vec<Value> = hook.received().iter().map(|d| d.json()).collect();
    let mut got: Vec<(String, String)> = payloads.iter().map(told).collect();
    got.sort();
    assert_eq!(got, wanted, "{payloads:#?}");
    for payload in &payloads {
        assert_eq!(
            (&payload["by"], &payload["chat_id"], &payload["device_id"]),
            (&json!(device), &json!(chat_id), &json!(device))
        );
    }

    // The portal shows each change to a Matrix client.
    let client = app.matrix_client(token).await;
    let room = client.get_room(&room_id).expect("the identity is in the portal");
    assert_eq!(room.name().as_deref(), Some("Team Δ"));
    assert_eq!(room.topic().as_deref(), Some("Plans"));
    assert!(room.avatar_url().is_some(), "the group's picture is the portal's avatar");
    let second_puppet = puppet_in(&room, second).await.expect("the added member's puppet");
    let first_puppet = puppet_in(&room, first).await.expect("the removed member's puppet");
    let member = room.get_member_no_sync(&second_puppet).await.unwrap().unwrap();
    assert_eq!(*member.membership(), MembershipState::Join);
    let gone = room.get_member_no_sync(&first_puppet).await.unwrap().unwrap();
    assert_eq!(*gone.membership(), MembershipState::Leave, "the removed member's puppet was kicked");
    let levels = room.power_levels().await.unwrap();
    assert_eq!(levels.users.get(&second_puppet).map(|l| i64::from(*l)), Some(50), "an admin's puppet moderates");
    assert_eq!(i64::from(levels.events_default), 50, "announce: only admins send");
    Made { chat_id, room_id, delivered: payloads.len() }
}

fn roles(group: &Value) -> BTreeSet<(String, String)> {
    let participants = group["participants"].as_array().unwrap();
    participants.iter().map(|p| (p["phone"].as_str().unwrap().into(), p["role"].as_str().unwrap().into())).collect()
}

/// The puppet of `phone` among the portal's members, whatever their membership.
pub async fn puppet_in(room: &matrix_sdk::Room, phone: &str) -> Option<matrix_sdk::ruma::OwnedUserId> {
    let members = room.members_no_sync(matrix_sdk::RoomMemberships::all()).await.unwrap();
    members.iter().map(|m| m.user_id()).find(|u| u.localpart().contains(phone)).map(|u: &UserId| u.to_owned())
}
