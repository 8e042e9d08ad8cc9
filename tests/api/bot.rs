use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room::v3::Request as CreateRoom;
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::ruma::{OwnedUserId, UserId};
use matrix_sdk::{Client, Room};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, eventually, expect};

/// Every message the bot sent in `room`, oldest first, as (msgtype, body).
async fn bot_messages(client: &Client, room: &Room, bot: &UserId) -> Vec<(String, String)> {
    // No long-poll: the caller polls, and a sync answers at once with what is there.
    client.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    let mut options = MessagesOptions::backward();
    options.limit = 100u32.into();
    let chunk = room.messages(options).await.unwrap().chunk;
    let mut said: Vec<(String, String)> = chunk
        .iter()
        .filter_map(|event| {
            let raw: Value = event.raw().deserialize_as().ok()?;
            (raw["type"] == "m.room.message" && raw["sender"] == bot.as_str()).then(|| {
                let content = &raw["content"];
                (
                    content["msgtype"].as_str().unwrap_or_default().to_owned(),
                    content["body"].as_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect();
    said.reverse();
    said
}

async fn command(
    client: &Client,
    room: &Room,
    bot: &UserId,
    text: &str,
    reply_contains: &str,
) -> Vec<(String, String)> {
    let before = bot_messages(client, room, bot).await.len();
    room.send(RoomMessageEventContent::text_plain(text)).await.unwrap();
    eventually(&format!("the bot to answer `{text}`"), || async {
        let said = bot_messages(client, room, bot).await;
        said[before..].iter().any(|(_, body)| body.contains(reply_contains)).then(|| said[before..].to_vec())
    })
    .await
}

/// A person in a Matrix client manages WhatsApp through the bot's direct room.
#[tokio::test]
async fn a_person_links_and_uses_whatsapp_through_bot_commands() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let login = expect(app.bearer(Method::POST, "/api/v1/matrix/credentials", &token), StatusCode::OK).await;
    let client = Client::builder().homeserver_url(app.synapse.url.as_str()).build().await.unwrap();
    client
        .matrix_auth()
        .login_username(login["username"].as_str().unwrap(), login["password"].as_str().unwrap())
        .await
        .unwrap();
    let bot: OwnedUserId = format!("@{}:mxgate.test", app.slot.pair.bridge.sender_localpart).try_into().unwrap();
    let mut request = CreateRoom::new();
    request.invite = vec![bot.clone()];
    request.is_direct = true;
    let room = client.create_room(request).await.unwrap();
    eventually("the bot to greet with its help", || async {
        let said = bot_messages(&client, &room, &bot).await;
        said.iter().any(|(_, body)| body.contains("Commands:")).then_some(())
    })
    .await;

    command(&client, &room, &bot, "list", "No linked accounts").await;
    let said = command(&client, &room, &bot, "login", "Scan this QR code").await;
    let (kind, code) = &said[0];
    assert_eq!(kind, "m.image", "the QR code comes as an image whose body is the code");
    assert!(code.starts_with("2@"), "{code}");
    expect(app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": "237600000009" })), StatusCode::OK).await;
    eventually("the bot to confirm the link", || async {
        let said = bot_messages(&client, &room, &bot).await;
        said.iter().any(|(_, body)| body == "Linked +237600000009").then_some(())
    })
    .await;
    command(&client, &room, &bot, "list", "+237600000009").await;

    let dm = command(&client, &room, &bot, "pm 237698765432", "Direct chat with +237698765432").await;
    assert!(dm.iter().any(|(_, body)| body.contains(" is !")), "{dm:?}");
    command(&client, &room, &bot, "pm 000111222333", "not on WhatsApp").await;
    let group = expect(
        app.request(Method::POST, "/sim/groups").json(&json!({ "name": "Team", "members": ["237698765432"] })),
        StatusCode::OK,
    )
    .await;
    command(&client, &room, &bot, &format!("join {}", group["invite_url"].as_str().unwrap()), "Joined Team").await;
    command(&client, &room, &bot, "join https://example.com/x", "not a WhatsApp group invite").await;
    command(&client, &room, &bot, "frobnicate", "Unknown command").await;
    command(&client, &room, &bot, "logout 237600000009", "Logged out +237600000009").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await, json!([]));
}
