//! `GET /devices/{id}/chats`, `…/chats/{chat}/messages`, `…/search`, `…/media/{event_id}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Page};
use super::{ChatCursor, parse_chat};
use crate::auth::TokenAuth;
use crate::devices::service::identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chats)).routes(routes!(history)).routes(routes!(search)).routes(routes!(media))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChatsQuery {
    /// The `next_cursor` of the page before.
    #[param(pattern = r"^[0-9]{1,18}:(\+?[0-9]{7,15}|[0-9]{7,15}@s\.whatsapp\.net|[0-9A-Za-z-]+@g\.us)$")]
    pub cursor: Option<String>,
    /// Chats per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Chat {
    /// The chat's JID: `<phone>@s.whatsapp.net` or `<id>@g.us`.
    #[schema(example = "237698765432@s.whatsapp.net")]
    pub chat_id: String,
    /// `direct` or `group`.
    pub r#type: &'static str,
    /// The contact's or the group's name, when known.
    pub name: Option<String>,
    /// The portal's picture (`mxc://`), when it has one.
    pub avatar_url: Option<String>,
    /// The newest message, in the webhook payload's shape (`MessagePayload`; its file as
    /// `media.url`).
    #[schema(value_type = Option<Object>)]
    pub last_message: Option<Value>,
    /// Received messages the device has not marked read.
    pub unread: i64,
    /// When the chat last saw anything (a message, a reaction…), in milliseconds.
    pub last_activity: i64,
    /// The portal room, for Matrix clients.
    pub room_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChatList {
    pub chats: Vec<Chat>,
    /// Give it as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

fn limit(given: Option<u32>, default: u32, most: u32) -> ApiResult<u32> {
    match given.unwrap_or(default) {
        n if (1..=most).contains(&n) => Ok(n),
        _ => Err(ApiError::unprocessable(format!("limit is 1 to {most}"))),
    }
}

/// The device's chats, the latest active first: one per portal.
#[utoipa::path(get, path = "/devices/{device_id}/chats", tag = "chats", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"), ChatsQuery),
    responses((status = 200, body = ChatList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn chats(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Query(query): Query<ChatsQuery>,
) -> ApiResult<Json<ChatList>> {
    let user = identity(&token)?;
    let limit = limit(query.limit, 20, 100)?;
    let after = query.cursor.as_deref().map(str::parse::<ChatCursor>).transpose()?;
    let (entries, next) = service::chats(&state, &user, &device_id, after, limit).await?;
    let chats = entries
        .into_iter()
        .map(|e| Chat {
            chat_id: e.portal.chat_id,
            r#type: if e.portal.is_direct { "direct" } else { "group" },
            name: e.name,
            avatar_url: e.avatar_url,
            last_message: e.last_message,
            unread: e.unread,
            last_activity: e.last_ms,
            room_id: e.portal.room_id,
        })
        .collect();
    Ok(Json(ChatList { chats, next_cursor: next.map(|c| c.to_string()) }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages older than this page token (a page's `before`).
    #[param(min_length = 1, max_length = 512)]
    pub before: Option<String>,
    /// Messages newer than this page token (a page's `after`); wins over `before`.
    #[param(min_length = 1, max_length = 512)]
    pub after: Option<String>,
    /// Messages per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    /// Oldest first, each in the payload webhooks deliver with its `event`: messages
    /// (`message`; `message.sent` with `from_me: true` for the device's own), edits
    /// (`message.edited`), reactions, deletions, votes and calls, each listed where it
    /// happened (not folded into the message). A deleted message is left out; its
    /// deletion is listed. Files are `media.url`, not inline.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// Give it as `before` for the page before this one; `null` at the first message.
    pub before: Option<String>,
    /// Give it as `after` for the page after this one (later, for what came since).
    pub after: Option<String>,
}

/// One chat's history from the portal's timeline, the newest page first; page back with
/// `before`, forward with `after`.
#[utoipa::path(get, path = "/devices/{device_id}/chats/{chat}/messages", tag = "chats", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat" = String, Path, pattern = r"^(\+?[0-9]{7,15}|[0-9]{7,15}@s\.whatsapp\.net|[0-9A-Za-z-]+@g\.us)$",
            description = "A contact's phone number or a chat JID"),
           HistoryQuery),
    responses((status = 200, body = History), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, chat)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<History>> {
    let user = identity(&token)?;
    let chat = parse_chat(&chat)?.to_string();
    let limit = limit(query.limit, 50, 100)?;
    let page = match (query.before, query.after) {
        (_, Some(after)) => Page::After(after),
        (Some(before), None) => Page::Before(before),
        (None, None) => Page::Newest,
    };
    let page = service::history(&state, &user, &device_id, &chat, page, limit).await?;
    Ok(Json(History { messages: page.messages, before: page.before, after: page.after }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find (the homeserver's full-text search); not only spaces.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    pub q: String,
    /// Only this chat (a phone number or a chat JID).
    #[param(pattern = r"^(\+?[0-9]{7,15}|[0-9]{7,15}@s\.whatsapp\.net|[0-9A-Za-z-]+@g\.us)$")]
    pub chat_id: Option<String>,
    /// The `next_cursor` of the page before.
    #[param(min_length = 1, max_length = 512)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    /// Newest first, in history's shape.
    #[schema(value_type = Vec<Object>)]
    pub results: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// Search the device's chats (or one) through the homeserver's server-side search.
#[utoipa::path(get, path = "/devices/{device_id}/search", tag = "chats", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"), SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<SearchResults>> {
    let user = identity(&token)?;
    if query.q.trim().is_empty() || query.q.chars().count() > 200 {
        return Err(ApiError::unprocessable("q is 1 to 200 characters"));
    }
    let chat = query.chat_id.as_deref().map(parse_chat).transpose()?.map(|c| c.to_string());
    let (results, next) =
        service::search(&state, &user, &device_id, &query.q, chat.as_deref(), query.cursor.as_deref()).await?;
    Ok(Json(SearchResults { results, next_cursor: next }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// A thumbnail of at most `W`×`H` pixels instead of the file (images and videos).
    #[param(pattern = "^[0-9]{1,4}x[0-9]{1,4}$", example = "320x240")]
    pub thumbnail: Option<String>,
}

fn thumbnail_size(raw: &str) -> ApiResult<(u32, u32)> {
    let bad = || ApiError::unprocessable("thumbnail is WxH, each 1 to 2000 (e.g. 320x240)");
    let (width, height) = raw.split_once('x').ok_or_else(bad)?;
    let size = |n: &str| n.parse::<u32>().ok().filter(|n| (1..=2000).contains(n));
    Ok((size(width).ok_or_else(bad)?, size(height).ok_or_else(bad)?))
}

/// The file a message carries (an image, video, voice note, document, sticker, contact
/// cards), streamed from the homeserver's media repository.
#[utoipa::path(get, path = "/devices/{device_id}/media/{event_id}", tag = "chats", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("event_id" = String, Path, pattern = r"^\$[A-Za-z0-9+/_=-]{1,254}$",
            description = "The message's Matrix event id (a payload's `id`)"),
           MediaQuery),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn media(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, event_id)): Path<(String, String)>,
    Query(query): Query<MediaQuery>,
) -> ApiResult<Response> {
    let user = identity(&token)?;
    ruma::EventId::parse(&event_id)
        .map_err(|_| ApiError::unprocessable("event_id must be a Matrix event id such as $abc"))?;
    let thumbnail = query.thumbnail.as_deref().map(thumbnail_size).transpose()?;
    let file = service::file(&state, &user, &device_id, &event_id, thumbnail).await?;
    let served = file.response.headers();
    let content_type = match thumbnail {
        // A thumbnail is the homeserver's own picture, of its own type.
        Some(_) => served.get(header::CONTENT_TYPE).cloned(),
        None => HeaderValue::from_str(&file.mime_type).ok(),
    };
    let length = served.get(header::CONTENT_LENGTH).cloned();
    let name: String = file.file_name.chars().map(|c| if c.is_ascii_graphic() && c != '"' { c } else { '_' }).collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).ok();
    let mut response = Body::from_stream(file.response.bytes_stream()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_LENGTH, length),
        (header::CONTENT_DISPOSITION, disposition),
    ] {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    Ok(response)
}
