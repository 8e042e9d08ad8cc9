//! The payloads of the webhook catalogue, built from a portal's Matrix events: what
//! webhooks and the event feed deliver, and what history and search answer, in one shape.

use mxgate_bridge::content::{CALL, GROUP_EVENT, POLL_CHOICE, POLL_RESPONSE, POLL_START};
use mxgate_bridge::network::{GroupChange, Structured};
use mxgate_bridge::{MESSAGE_STATUS, NETWORK_ID_FIELD, store as bridge_store};
use ruma::UserId;
use serde_json::{Value, json};

use super::catalogue::EventType;
use crate::state::AppState;

/// The portal events a payload is made of.
pub const TYPES: [&str; 7] =
    ["m.room.message", "m.sticker", "m.reaction", "m.room.redaction", POLL_START, POLL_RESPONSE, GROUP_EVENT];

/// Where a file's bytes go in a payload: inline (base64 in `media.content`, as webhooks
/// always had them) or only as `media.url`, the API's download route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// `media.content` holds the file, and `media.url` names it too.
    #[default]
    Inline,
    /// `media.content` is `null`; fetch `media.url` with the token.
    Url,
}

/// The payload of one portal event and its type in the catalogue; `None` for what no
/// payload tells (a bridge notice, a state event). A message the identity wrote is a
/// `message.sent` with `from_me: true`.
pub async fn of_event(
    state: &AppState,
    event: &Value,
    portal: &bridge_store::PortalRow,
    owner: &str,
    media: MediaMode,
) -> Result<Option<(EventType, Value)>, sqlx::Error> {
    let payload = match event["type"].as_str().unwrap_or_default() {
        MESSAGE_STATUS => (EventType::MessageStatus, status_payload(event, portal, owner)),
        "m.reaction" => (EventType::MessageReaction, reaction_payload(state, event, portal, owner).await?),
        "m.room.redaction" => redaction_payload(state, event, portal, owner).await?,
        POLL_RESPONSE => (EventType::PollVote, vote_payload(state, event, portal, owner).await?),
        GROUP_EVENT => match group_payload(event, portal, owner) {
            Some(told) => told,
            None => return Ok(None),
        },
        _ if event["content"][CALL].is_object() => (EventType::Call, call_payload(event, portal, owner)),
        "m.room.message" | "m.sticker" | POLL_START => {
            let mut payload = message_payload(state, event, portal, owner, media).await;
            if event["sender"].as_str() == Some(owner) {
                payload["from_me"] = true.into();
                (EventType::MessageSent, payload)
            } else if payload["replaces"].is_string() {
                (EventType::MessageEdited, payload)
            } else {
                (EventType::Message, payload)
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(payload))
}

/// The API route that downloads a message's file.
pub fn media_url(device_id: &str, event_id: &str) -> String {
    format!("/api/v1/devices/{device_id}/media/{event_id}")
}

/// The incoming-message payload of DESIGN.md, field for field, and `media.url`.
async fn message_payload(
    state: &AppState,
    event: &Value,
    portal: &bridge_store::PortalRow,
    owner: &str,
    mode: MediaMode,
) -> Value {
    let relation = &event["content"]["m.relates_to"];
    // An edit is delivered with its new content and the event it replaces.
    let edited = relation["rel_type"] == "m.replace";
    let content = if edited { &event["content"]["m.new_content"] } else { &event["content"] };
    let event_type = event["type"].as_str().unwrap_or_default();
    let msgtype = match event_type {
        "m.sticker" | POLL_START => event_type,
        _ => content["msgtype"].as_str().unwrap_or("m.text"),
    };
    let sender = event["sender"].as_str().unwrap_or_default();
    let mut media = json!({
        "content": null,
        "info": { "size": 0, "mime_type": "", "width": 0, "height": 0, "blur_hash": "" },
    });
    if let Some(url) = content["url"].as_str() {
        let info = &content["info"];
        media["info"] = json!({
            "size": info["size"].as_u64().unwrap_or(0),
            "mime_type": info["mimetype"].as_str().unwrap_or_default(),
            "width": info["w"].as_u64().unwrap_or(0),
            "height": info["h"].as_u64().unwrap_or(0),
            "blur_hash": info["xyz.amorgan.blurhash"].as_str().unwrap_or_default(),
        });
        media["url"] = media_url(&portal.account_id, event["event_id"].as_str().unwrap_or_default()).into();
        let acting = UserId::parse(owner).ok().filter(|_| mode == MediaMode::Inline);
        match acting {
            Some(acting) => match state.homeserver.client.download(&acting, url).await {
                Ok(data) => {
                    use base64::Engine;
                    media["content"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
                }
                Err(error) => tracing::warn!(url, error = %error, "media not downloaded for a webhook"),
            },
            None if mode == MediaMode::Url => {}
            None => tracing::warn!(owner, "device owner is not a valid user id"),
        }
    }
    let is_media = content["url"].is_string();
    // A file's body is its name unless it has a caption; a sticker's only describes the picture.
    let message = if is_media && (msgtype == "m.sticker" || content["filename"].as_str() == content["body"].as_str()) {
        ""
    } else {
        content["body"].as_str().unwrap_or_default()
    };
    let mut payload = json!({
        "id": event["event_id"],
        "is_contact": portal.is_direct,
        "type": msgtype,
        "from": sender,
        "to": owner,
        "message": message,
        "device_id": portal.account_id,
        "media": media,
        "chat_id": portal.chat_id,
        "reply_to": relation["m.in_reply_to"]["event_id"],
        "message_id": event["content"][mxgate_bridge::SOURCE_FIELD]["network_message_id"],
        "timestamp": event["origin_server_ts"],
        "replaces": if edited { relation["event_id"].clone() } else { Value::Null },
    });
    // What the message is beyond text and a file, read as the bridge reads it.
    match mxgate_bridge::content::parse(event_type, content) {
        Ok(parsed) => {
            match parsed.structured {
                Some(Structured::Location(location)) => payload["location"] = json!(location),
                Some(Structured::ContactCards { cards }) => payload["contact_cards"] = json!(cards),
                Some(Structured::Poll(poll)) => payload["poll"] = json!(poll),
                None => {}
            }
            if parsed.file.is_some_and(|f| f.view_once) {
                payload["view_once"] = json!(true);
            }
        }
        Err(error) => {
            tracing::debug!(event = %event["event_id"], error = %error, "a message not read as the bridge would")
        }
    }
    payload
}

/// The fields every payload about a message in a portal has.
fn about_a_message(event: &Value, portal: &bridge_store::PortalRow, owner: &str, kind: EventType) -> Value {
    json!({
        "id": event["event_id"],
        "type": kind.as_str(),
        "from": event["sender"],
        "to": owner,
        "device_id": portal.account_id,
        "is_contact": portal.is_direct,
        "chat_id": portal.chat_id,
        "timestamp": event["origin_server_ts"],
    })
}

/// WhatsApp's id of the message behind `event_id`, when the bridge knows it.
async fn network_id(state: &AppState, event_id: &str) -> Result<Value, sqlx::Error> {
    Ok(bridge_store::message_by_event(&state.db, event_id).await?.map_or(Value::Null, |m| m.network_id.into()))
}

/// A `message.reaction` payload: `reaction` is the emoji, `event_id` the message it is on.
async fn reaction_payload(
    state: &AppState,
    event: &Value,
    portal: &bridge_store::PortalRow,
    owner: &str,
) -> Result<Value, sqlx::Error> {
    let relation = &event["content"]["m.relates_to"];
    let target = relation["event_id"].as_str().unwrap_or_default();
    let mut payload = about_a_message(event, portal, owner, EventType::MessageReaction);
    payload["reaction"] = relation["key"].clone();
    payload["event_id"] = target.into();
    payload["message_id"] = network_id(state, target).await?;
    Ok(payload)
}

/// A redaction by a puppet (or the bot, for a group admin): a reaction taken back, when
/// the log holds the redacted event as a reaction, else a message deleted.
async fn redaction_payload(
    state: &AppState,
    event: &Value,
    portal: &bridge_store::PortalRow,
    owner: &str,
) -> Result<(EventType, Value), sqlx::Error> {
    // Room versions from 11 carry `redacts` in the content, earlier ones beside it.
    let redacts = event["content"]["redacts"].as_str().or_else(|| event["redacts"].as_str()).unwrap_or_default();
    let logged = crate::events::store::payload(&state.db, owner, redacts).await?;
    let logged: Value = logged.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default();
    if logged["event"] == EventType::MessageReaction.as_str() {
        let mut payload = about_a_message(event, portal, owner, EventType::MessageReaction);
        payload["reaction"] = "".into();
        payload["event_id"] = logged["event_id"].clone();
        payload["message_id"] = logged["message_id"].clone();
        return Ok((EventType::MessageReaction, payload));
    }
    let mut payload = about_a_message(event, portal, owner, EventType::MessageDeleted);
    payload["event_id"] = redacts.into();
    payload["message_id"] = network_id(state, redacts).await?;
    Ok((EventType::MessageDeleted, payload))
}

/// A `poll.vote` payload: `options` the names chosen, `event_id` the poll.
async fn vote_payload(
    state: &AppState,
    event: &Value,
    portal: &bridge_store::PortalRow,
    owner: &str,
) -> Result<Value, sqlx::Error> {
    let poll = event["content"]["m.relates_to"]["event_id"].as_str().unwrap_or_default();
    let mut payload = about_a_message(event, portal, owner, EventType::PollVote);
    payload["options"] = event["content"][POLL_CHOICE].clone();
    payload["event_id"] = poll.into();
    payload["message_id"] = network_id(state, poll).await?;
    Ok(payload)
}

/// A `call` payload, from the notice the bridge posted for it.
fn call_payload(event: &Value, portal: &bridge_store::PortalRow, owner: &str) -> Value {
    let call = &event["content"][CALL];
    let mut payload = about_a_message(event, portal, owner, EventType::Call);
    payload["call_id"] = event["content"][mxgate_bridge::SOURCE_FIELD]["network_message_id"].clone();
    payload["video"] = call["video"].clone();
    payload["rejected"] = call["rejected"].clone();
    payload
}

/// A `group.*` payload, from the bridge's record of the change; `None` for a record
/// this version cannot read.
fn group_payload(event: &Value, portal: &bridge_store::PortalRow, owner: &str) -> Option<(EventType, Value)> {
    let change: GroupChange = serde_json::from_value(event["content"]["group"].clone()).ok()?;
    let (kind, fields) = match change {
        GroupChange::Created { subject, members } => {
            (EventType::GroupCreated, json!({ "subject": subject, "participants": members }))
        }
        GroupChange::Members { action, phones } => {
            (EventType::GroupParticipants, json!({ "action": action.done(), "participants": phones }))
        }
        GroupChange::Subject { subject } => {
            (EventType::GroupUpdated, json!({ "change": "subject", "subject": subject }))
        }
        GroupChange::Description { description } => {
            (EventType::GroupUpdated, json!({ "change": "description", "description": description }))
        }
        GroupChange::Picture { removed } => {
            (EventType::GroupUpdated, json!({ "change": "picture", "picture_removed": removed }))
        }
        GroupChange::Announce { announce } => {
            (EventType::GroupUpdated, json!({ "change": "announce", "announce": announce }))
        }
        GroupChange::Locked { locked } => (EventType::GroupUpdated, json!({ "change": "locked", "locked": locked })),
        GroupChange::InviteRevoked => (EventType::GroupUpdated, json!({ "change": "invite_revoked" })),
    };
    let mut payload = about_a_message(event, portal, owner, kind);
    payload["by"] = event["content"]["by"].clone();
    if let (Some(payload), Value::Object(fields)) = (payload.as_object_mut(), fields) {
        // The record is the bot's: who made the change is `by`.
        payload.remove("from");
        payload.extend(fields);
    }
    Some((kind, payload))
}

/// A `message.status` payload: a contact received or read a message the device sent.
fn status_payload(event: &Value, portal: &bridge_store::PortalRow, owner: &str) -> Value {
    let content = &event["content"];
    let mut payload = about_a_message(event, portal, owner, EventType::MessageStatus);
    payload["status"] = content["status"].clone();
    payload["event_id"] = content["m.relates_to"]["event_id"].clone();
    payload["message_id"] = content[NETWORK_ID_FIELD].clone();
    // The receipt is the bot's event; who received or read the message is in its content.
    payload["from"] = content["reader"].clone();
    payload
}
