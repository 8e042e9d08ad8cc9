//! The API's own appservice endpoints. The homeserver pushes every event of the rooms
//! token identities are in; the API turns puppets' messages into webhook deliveries
//! and receipts into `message.status` deliveries. (Send outcomes are read from the send
//! queue's record, not from pushed status events: see `messages::late`.)

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mxgate_bridge::content::{CALL, POLL_CHOICE, POLL_RESPONSE, POLL_START};
use mxgate_bridge::network::Structured;
use mxgate_bridge::{MESSAGE_STATUS, NETWORK_ID_FIELD, store as bridge_store};
use ruma::{RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod catch_up;

use crate::extract::Json;
use crate::state::AppState;
use crate::webhooks::catalogue::EventType;
use crate::webhooks::delivery::{self, Event};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(transaction)).routes(routes!(query_user)).routes(routes!(ping))
}

/// The homeserver, authenticated by the API registration's `hs_token`.
pub struct FromHomeserver;

impl FromRequestParts<AppState> for FromHomeserver {
    type Rejection = mxgate_bridge::HsTokenError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        mxgate_bridge::check_hs_token(parts, &state.config.homeserver.api_hs_token).map(|()| Self)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Empty {}

fn unavailable(error: sqlx::Error) -> Response {
    tracing::error!(error = %error, "appservice transaction not stored");
    let body = json!({ "errcode": "M_UNKNOWN", "error": "store unavailable" });
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// A homeserver transaction; fields beside `events` (ephemeral events, later Matrix
/// versions' additions) are not the API's concern.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Transaction {
    pub events: Vec<Value>,
}

/// Receives the homeserver's events. Deliveries are stored before the transaction is
/// acknowledged; a replayed transaction id changes nothing.
#[utoipa::path(put, path = "/_matrix/app/v1/transactions/{txn_id}", tag = "appservice",
    security(("homeserver" = [])),
    params(("txn_id" = String, Path)),
    request_body = Transaction,
    responses((status = 200, body = Empty), (status = 401), (status = 403)))]
async fn transaction(
    State(state): State<AppState>,
    _: FromHomeserver,
    Path(txn_id): Path<String>,
    Json(body): Json<Transaction>,
) -> Response {
    let key = mxgate_bridge::transaction_key(&txn_id, &body.events);
    match bridge_store::transaction_seen(&state.db, "api", &key).await {
        Ok(true) => return axum::Json(json!({})).into_response(),
        Ok(false) => {}
        Err(error) => return unavailable(error),
    }
    for event in &body.events {
        if let Err(error) = handle_event(&state, event).await {
            return unavailable(error);
        }
    }
    if let Err(error) = bridge_store::mark_transaction(&state.db, "api", &key).await {
        return unavailable(error);
    }
    state.deliveries.notify_one();
    axum::Json(json!({})).into_response()
}

/// One pushed event (or one `catch_up` fetched). Handling it again changes nothing.
async fn handle_event(state: &AppState, event: &Value) -> Result<(), sqlx::Error> {
    let Some(room) = event["room_id"].as_str().and_then(|r| RoomId::parse(r).ok()) else { return Ok(()) };
    match event["type"].as_str() {
        Some("m.room.member") => {
            let invited = event["content"]["membership"] == "invite";
            if let Some(user) = event["state_key"].as_str().and_then(|u| UserId::parse(u).ok())
                && invited
                && is_identity(state, &user)
                && let Err(error) = state.homeserver.client.join(&user, &room).await
            {
                tracing::warn!(room = %room, error = %error, "identity could not accept an invite");
            }
        }
        Some(
            kind @ ("m.room.message" | "m.sticker" | "m.reaction" | "m.room.redaction" | POLL_START | POLL_RESPONSE
            | MESSAGE_STATUS),
        ) => {
            let Some(portal) = bridge_store::portal_by_room(&state.db, room.as_str()).await? else {
                tracing::debug!(room = %room, event = %event["event_id"], "message outside a portal");
                return Ok(());
            };
            let Some(login) = bridge_store::login(&state.db, &portal.account_id).await? else { return Ok(()) };
            tracing::debug!(room = %room, event = %event["event_id"], sender = %event["sender"], "portal message");
            let Some(event_id) = event["event_id"].as_str() else { return Ok(()) };
            // Only what the network said is delivered: the identity's own sends are not
            // echoed, but what the account wrote on its phone (bridged as the identity, with
            // its network source) is news.
            if event["sender"].as_str() == Some(login.owner.as_str()) {
                let from_phone = event["content"][mxgate_bridge::SOURCE_FIELD].is_object();
                if from_phone && matches!(kind, "m.room.message" | "m.sticker" | POLL_START) {
                    let mut payload = webhook_payload(state, event, &portal, &login.owner).await;
                    payload["from_me"] = true.into();
                    let event = Event { identity: &login.owner, event_id, kind: EventType::MessageSent, payload };
                    delivery::enqueue(&state.db, event).await?;
                }
                return Ok(());
            }
            let (kind, payload) = match kind {
                MESSAGE_STATUS => (EventType::MessageStatus, status_payload(event, &portal, &login.owner)),
                "m.reaction" => {
                    (EventType::MessageReaction, reaction_payload(state, event, &portal, &login.owner).await?)
                }
                "m.room.redaction" => redaction_payload(state, event, &portal, &login.owner).await?,
                POLL_RESPONSE => (EventType::PollVote, vote_payload(state, event, &portal, &login.owner).await?),
                _ if event["content"][CALL].is_object() => {
                    (EventType::Call, call_payload(event, &portal, &login.owner))
                }
                _ => {
                    let payload = webhook_payload(state, event, &portal, &login.owner).await;
                    let edit = payload["replaces"].is_string();
                    (if edit { EventType::MessageEdited } else { EventType::Message }, payload)
                }
            };
            let event = Event { identity: &login.owner, event_id, kind, payload };
            delivery::enqueue(&state.db, event).await?;
        }
        _ => {}
    }
    Ok(())
}

fn is_identity(state: &AppState, user: &UserId) -> bool {
    user.server_name() == state.homeserver.server_name()
        && user.localpart().starts_with(&state.config.homeserver.identity_prefix)
}

/// The incoming-message payload of DESIGN.md, field for field.
async fn webhook_payload(state: &AppState, event: &Value, portal: &bridge_store::PortalRow, owner: &str) -> Value {
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
        let acting = UserId::parse(owner).ok();
        match acting {
            Some(acting) => match state.homeserver.client.download(&acting, url).await {
                Ok(data) => {
                    use base64::Engine;
                    media["content"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
                }
                Err(error) => tracing::warn!(url, error = %error, "media not downloaded for a webhook"),
            },
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

/// Users of the API's namespace exist only when mxgate made them.
#[utoipa::path(get, path = "/_matrix/app/v1/users/{user_id}", tag = "appservice",
    security(("homeserver" = [])), params(("user_id" = String, Path)),
    responses((status = 404, description = "The API creates its users itself")))]
async fn query_user(_: FromHomeserver, Path(_user_id): Path<String>) -> Response {
    let body = json!({ "errcode": "M_NOT_FOUND", "error": "token identities are created by mxgate" });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

#[utoipa::path(post, path = "/_matrix/app/v1/ping", tag = "appservice", security(("homeserver" = [])),
    responses((status = 200, body = Empty)))]
async fn ping(_: FromHomeserver) -> axum::Json<Value> {
    axum::Json(json!({}))
}
