//! What a device shows its chats beside messages: that it read them, that it is typing,
//! that it is online. None of it is a message, so none of it is queued: each goes to
//! WhatsApp at once, from the process that runs the device, or fails.

use axum::extract::State;
use mxgate_bridge::network::Typing;
use reqwest::Method;
use ruma::{EventId, OwnedUserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::linked;
use crate::auth::TokenAuth;
use crate::chats::parse_chat;
use crate::devices::service::identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(read_message))
        .routes(routes!(read_chat))
        .routes(routes!(typing))
        .routes(routes!(presence))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Read {
    /// How many received messages were marked read (0 when none was unread).
    #[schema(example = 3)]
    pub read: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowTyping {
    /// `composing` (writing), `recording` (a voice note) or `paused` (stopped).
    pub state: Typing,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowPresence {
    /// Online (`true`) or not.
    pub available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Shown {
    #[schema(example = "Typing shown")]
    pub message: String,
}

/// Asks the process that runs `device_id` to show something.
async fn show(state: &AppState, user: &OwnedUserId, device_id: &str, path: &str, body: Value) -> ApiResult<Value> {
    linked(state, user, device_id).await?;
    let bridge = state.bridge.for_device(&state.db, device_id).await?;
    Ok(bridge.call(Method::POST, path, user, &[("login_id", device_id)], Some(body)).await?)
}

fn read_count(answer: &Value) -> Read {
    Read { read: answer["read"].as_u64().unwrap_or_default() }
}

/// Mark a received message read: its sender sees the blue ticks.
#[utoipa::path(post, path = "/devices/{device_id}/messages/{event_id}/read", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The received message's Matrix event id (a webhook payload's `id`)")),
    responses((status = 200, body = Read), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn read_message(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): Path<(String, String)>,
) -> ApiResult<Json<Read>> {
    let user = identity(&token)?;
    EventId::parse(&event_id)
        .map_err(|_| ApiError::unprocessable("event_id must be a Matrix event id such as $abc"))?;
    let message = mxgate_bridge::store::message_by_event(&state.db, &event_id).await?;
    let message = message.filter(|m| m.account_id == device_id).ok_or(ApiError::NotFound("message"))?;
    if message.direction != "in" || message.sender.is_none() {
        return Err(ApiError::unprocessable("only a message the device received can be marked read"));
    }
    let body = json!({ "chat_id": message.chat_id, "event_id": event_id });
    Ok(Json(read_count(&show(&state, &user, &device_id, "read", body).await?)))
}

/// Mark every unread received message of a chat read (at most 256 a call; call again
/// while `read` is 256).
#[utoipa::path(post, path = "/devices/{device_id}/chats/{chat}/read", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat" = String, Path, pattern = r"^(\+?[0-9]{7,15}|[0-9]{7,15}@s\.whatsapp\.net|[0-9A-Za-z-]+@g\.us)$",
            description = "A contact's phone number or a chat JID")),
    responses((status = 200, body = Read), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn read_chat(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, raw)): Path<(String, String)>,
) -> ApiResult<Json<Read>> {
    let user = identity(&token)?;
    let body = json!({ "chat_id": parse_chat(&raw)? });
    Ok(Json(read_count(&show(&state, &user, &device_id, "read", body).await?)))
}

/// Show a chat that the device is typing or recording a voice note, or that it stopped.
/// WhatsApp shows it for about 25 seconds unless renewed.
#[utoipa::path(post, path = "/devices/{device_id}/chats/{chat}/typing", tag = "messages",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat" = String, Path, pattern = r"^(\+?[0-9]{7,15}|[0-9]{7,15}@s\.whatsapp\.net|[0-9A-Za-z-]+@g\.us)$",
            description = "A contact's phone number or a chat JID")),
    request_body = ShowTyping,
    responses((status = 200, body = Shown), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn typing(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, raw)): Path<(String, String)>,
    Json(body): Json<ShowTyping>,
) -> ApiResult<Json<Shown>> {
    let user = identity(&token)?;
    let shown = json!({ "chat_id": parse_chat(&raw)?, "state": body.state });
    show(&state, &user, &device_id, "typing", shown).await?;
    Ok(Json(Shown { message: "Typing shown".into() }))
}

/// Show the account online or offline to the contacts that follow its presence.
#[utoipa::path(post, path = "/devices/{device_id}/presence", tag = "messages", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    request_body = ShowPresence,
    responses((status = 200, body = Shown), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn presence(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Json(body): Json<ShowPresence>,
) -> ApiResult<Json<Shown>> {
    let user = identity(&token)?;
    show(&state, &user, &device_id, "presence", json!({ "available": body.available })).await?;
    Ok(Json(Shown { message: "Presence shown".into() }))
}
