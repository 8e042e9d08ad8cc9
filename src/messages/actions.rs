//! Actions on a message the device sent or received, named by its Matrix event id (the
//! `id` webhooks carry, the `event_id` sends return): react, edit, delete, forward, vote.
//! Each is a Matrix event of the identity's in the portal (an `m.reaction`, an `m.replace`,
//! a redaction, an MSC3381 response),
//! so a Matrix client doing the same reaches WhatsApp by the same path, the send queue.

use axum::extract::State;
use mxgate_bridge::store::{self as bridge_store, MessageRow};
use mxgate_bridge::{content, outbox};
use ruma::{EventId, OwnedUserId, RoomId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::routes::MessageSent;
use super::service::{MAX_TEXT, Outcome, Recipients, fan_out, linked, queue_and_wait};
use crate::auth::TokenAuth;
use crate::devices::service::identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::matrix::HomeserverError;
use crate::state::AppState;

/// How long WhatsApp lets a sender edit a message.
const EDIT_WINDOW_SECS: i64 = 15 * 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(react))
        .routes(routes!(edit, delete))
        .routes(routes!(forward))
        .routes(routes!(vote))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    /// One emoji; empty takes the device's reaction back.
    #[schema(example = "👍", max_length = 32)]
    pub emoji: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    /// The message's new text (or caption).
    #[schema(example = "See you at 8", min_length = 1)]
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// Comma-separated phone numbers.
    #[schema(example = "237698765432")]
    pub contact: Option<String>,
    /// Comma-separated invite URLs; wins over `contact`.
    pub group_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    /// The options chosen, by name as the poll lists them (one, unless the poll allows
    /// several); empty takes the vote back.
    #[schema(example = json!(["Eru"]), max_items = 12)]
    pub options: Vec<String>,
}

/// What became of an action: the Matrix event it is, and whether WhatsApp took it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDone {
    /// `sent` (WhatsApp accepted it), `failed`, or `pending` (no answer in time; a
    /// `message.status` webhook follows); `deleted` for a deletion `for=me`, which
    /// WhatsApp is not told of.
    #[schema(example = "sent")]
    pub status: &'static str,
    /// The action's own Matrix event (the reaction, the edit, the redaction).
    #[schema(example = "$Yk2…")]
    pub event_id: String,
    /// WhatsApp's id of the action's message.
    pub message_id: Option<String>,
    pub error: Option<String>,
}

type MessagePath = Path<(String, String)>;

/// React to a message of the device's chats; an empty `emoji` takes the reaction back.
#[utoipa::path(post, path = "/devices/{device_id}/messages/{event_id}/reaction", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The message's Matrix event id")),
    request_body = Reaction,
    responses((status = 200, body = ActionDone), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn react(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): MessagePath,
    Json(body): Json<Reaction>,
) -> ApiResult<Json<ActionDone>> {
    let user = identity(&token)?;
    let target = message_of(&state, &user, &device_id, &event_id).await?;
    if body.emoji.chars().count() > 32 {
        return Err(ApiError::unprocessable("emoji is one emoji, at most 32 characters"));
    }
    let room = room_of(&target)?;
    if body.emoji.is_empty() {
        let reaction = outbox::reaction_on(&state.db, &target.room_id, user.as_str(), &target.event_id).await?;
        let Some(reaction) = reaction else {
            return Err(ApiError::NotFound("reaction"));
        };
        let reaction = EventId::parse(&reaction).map_err(|e| ApiError::Internal(e.into()))?;
        return redact(&state, &user, &room, &reaction).await.map(Json);
    }
    let content =
        json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": target.event_id, "key": body.emoji } });
    send(&state, &user, &room, "m.reaction", content).await.map(Json)
}

/// Edit a message the device sent, within WhatsApp's 15 minutes.
#[utoipa::path(put, path = "/devices/{device_id}/messages/{event_id}", tag = "messages", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The message's Matrix event id")),
    request_body = Edit,
    responses((status = 200, body = ActionDone), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn edit(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): MessagePath,
    Json(body): Json<Edit>,
) -> ApiResult<Json<ActionDone>> {
    let user = identity(&token)?;
    let target = own_message(&state, &user, &device_id, &event_id).await?;
    if body.text.trim().is_empty() || body.text.chars().count() > MAX_TEXT {
        return Err(ApiError::unprocessable(format!("text is 1 to {MAX_TEXT} characters")));
    }
    let sent_at = bridge_store::message_created_at(&state.db, &target.event_id).await?.unwrap_or_default();
    if crate::db::now() - sent_at > EDIT_WINDOW_SECS {
        return Err(ApiError::unprocessable("WhatsApp allows edits within 15 minutes of sending"));
    }
    let content = json!({
        "msgtype": "m.text",
        "body": format!("* {}", body.text),
        "m.new_content": { "msgtype": "m.text", "body": body.text },
        "m.relates_to": { "rel_type": "m.replace", "event_id": target.event_id },
    });
    send(&state, &user, &room_of(&target)?, "m.room.message", content).await.map(Json)
}

/// Whom a deletion is for.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteFor {
    /// Revoked on WhatsApp ("deleted for everyone"): only a message the device sent.
    #[default]
    Everyone,
    /// Gone from the device's Matrix history (the portal, history, Matrix clients); the
    /// chat on WhatsApp and its contacts keep it. Any message of the device's chats.
    Me,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// `everyone` (default) or `me`.
    #[serde(default, rename = "for")]
    #[param(rename = "for", inline)]
    pub scope: DeleteFor,
}

/// Delete a message: for everyone (a message the device sent), or with `?for=me` from
/// the device's Matrix history only.
#[utoipa::path(delete, path = "/devices/{device_id}/messages/{event_id}", tag = "messages", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The message's Matrix event id"),
           DeleteQuery),
    responses((status = 200, body = ActionDone), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): MessagePath,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<Json<ActionDone>> {
    let user = identity(&token)?;
    let target = match query.scope {
        DeleteFor::Everyone => own_message(&state, &user, &device_id, &event_id).await?,
        DeleteFor::Me => message_of(&state, &user, &device_id, &event_id).await?,
    };
    let (room, event) =
        (room_of(&target)?, EventId::parse(&target.event_id).map_err(|e| ApiError::Internal(e.into()))?);
    if let DeleteFor::Me = query.scope {
        // The send queue skips this redaction: nothing goes to WhatsApp.
        let content = json!({ "reason": "deleted for me", mxgate_bridge::LOCAL_ONLY_FIELD: true });
        let txn = uuid::Uuid::new_v4().to_string();
        let client = &state.homeserver.client;
        let redaction =
            client.redact_with(&user, &room, event.as_str(), &txn, content).await.map_err(HomeserverError::from)?;
        let done = ActionDone { status: "deleted", event_id: redaction.to_string(), message_id: None, error: None };
        return Ok(Json(done));
    }
    redact(&state, &user, &room, &event).await.map(Json)
}

/// Forward a message of the device's chats (sent or received) to contacts or groups:
/// the same text, file, location, cards or poll, shown as "Forwarded", without the reply
/// it may have quoted. Each recipient gets its own result, as with a send.
#[utoipa::path(post, path = "/devices/{device_id}/messages/{event_id}/forward", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The message's Matrix event id")),
    request_body = Forward,
    responses((status = 200, body = MessageSent), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn forward(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): MessagePath,
    Json(body): Json<Forward>,
) -> ApiResult<Json<MessageSent>> {
    let user = identity(&token)?;
    let source = message_of(&state, &user, &device_id, &event_id).await?;
    let recipients = Recipients::parse(body.contact.as_deref(), body.group_url.as_deref())?;
    state.limits.sends(&token.id, recipients.valid())?;
    let original =
        state.homeserver.client.event(&user, &room_of(&source)?, &event_id).await.map_err(HomeserverError::from)?;
    let event_type = original["type"].as_str().unwrap_or_default();
    let event =
        content::forwarded(event_type, &original["content"]).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let results = fan_out(&state, &token, &user, &device_id, recipients, &event, None).await?;
    Ok(Json(MessageSent { message: "Message forwarded".into(), results }))
}

/// Vote on a poll of the device's chats (a contact's or the device's own). Each vote
/// replaces the device's last, as on WhatsApp.
#[utoipa::path(post, path = "/devices/{device_id}/messages/{event_id}/vote", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The poll's Matrix event id")),
    request_body = Vote,
    responses((status = 200, body = ActionDone), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn vote(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): MessagePath,
    Json(body): Json<Vote>,
) -> ApiResult<Json<ActionDone>> {
    let user = identity(&token)?;
    let target = message_of(&state, &user, &device_id, &event_id).await?;
    let room = room_of(&target)?;
    let poll = state.homeserver.client.event(&user, &room, &target.event_id).await.map_err(HomeserverError::from)?;
    if poll["type"] != content::POLL_START {
        return Err(ApiError::unprocessable("only a poll takes votes"));
    }
    let offered: Vec<String> = content::poll_answers(&poll).into_iter().map(|(_, name)| name).collect();
    if let Some(unknown) = body.options.iter().find(|o| !offered.contains(o)) {
        return Err(ApiError::unprocessable(format!("{unknown:?} is not an option of the poll: {offered:?}")));
    }
    let chosen: std::collections::BTreeSet<&String> = body.options.iter().collect();
    if chosen.len() < body.options.len() {
        return Err(ApiError::unprocessable("each option is chosen once"));
    }
    let several = poll["content"][content::POLL_START]["max_selections"].as_u64().is_some_and(|n| n > 1);
    if body.options.len() > 1 && !several {
        return Err(ApiError::unprocessable("the poll takes one option"));
    }
    let response = content::poll_response(&target.event_id, &poll, &body.options);
    send(&state, &user, &room, response.event_type, response.content).await.map(Json)
}

/// The bridged message `event_id` of one of `device_id`'s chats.
async fn message_of(state: &AppState, user: &OwnedUserId, device_id: &str, event_id: &str) -> ApiResult<MessageRow> {
    linked(state, user, device_id).await?;
    EventId::parse(event_id).map_err(|_| ApiError::unprocessable("event_id must be a Matrix event id such as $abc"))?;
    let message = bridge_store::message_by_event(&state.db, event_id).await?;
    message.filter(|m| m.account_id == device_id).ok_or(ApiError::NotFound("message"))
}

/// [`message_of`], for what only its sender may do.
async fn own_message(state: &AppState, user: &OwnedUserId, device_id: &str, event_id: &str) -> ApiResult<MessageRow> {
    let message = message_of(state, user, device_id, event_id).await?;
    if message.direction != "out" {
        return Err(ApiError::unprocessable("only a message the device sent can be edited or deleted"));
    }
    Ok(message)
}

fn room_of(message: &MessageRow) -> ApiResult<ruma::OwnedRoomId> {
    RoomId::parse(&message.room_id).map_err(|e| ApiError::Internal(e.into()))
}

async fn send(
    state: &AppState,
    user: &OwnedUserId,
    room: &RoomId,
    kind: &str,
    content: serde_json::Value,
) -> ApiResult<ActionDone> {
    let txn = uuid::Uuid::new_v4().to_string();
    let event =
        state.homeserver.client.send_event(user, room, kind, &txn, &content).await.map_err(HomeserverError::from)?;
    Ok(done(queue_and_wait(state, user, room, &event, kind, &content).await, &event))
}

async fn redact(state: &AppState, user: &OwnedUserId, room: &RoomId, target: &EventId) -> ApiResult<ActionDone> {
    let txn = uuid::Uuid::new_v4().to_string();
    let event =
        state.homeserver.client.redact(user, room, target.as_str(), &txn).await.map_err(HomeserverError::from)?;
    let content = json!({ "redacts": target });
    Ok(done(queue_and_wait(state, user, room, &event, "m.room.redaction", &content).await, &event))
}

fn done(outcome: Outcome, event: &EventId) -> ActionDone {
    ActionDone {
        status: outcome.status,
        event_id: event.to_string(),
        message_id: outcome.message_id,
        error: outcome.error,
    }
}
