//! The chat list, history, search and files, read from the homeserver as the identity.

use mxgate_bridge::content::CALL;
use mxgate_bridge::store::{self as bridge_store, PortalRow};
use ruma::{OwnedUserId, RoomId};
use serde_json::{Value, json};

use super::ChatCursor;
use crate::error::{ApiError, ApiResult};
use crate::matrix::HomeserverError;
use crate::state::AppState;
use crate::webhooks::payload::{self, MediaMode, TYPES};

/// A device the identity linked, whatever its state now: what Matrix keeps of it stays
/// readable after a log-out.
pub async fn owned(state: &AppState, user: &OwnedUserId, device_id: &str) -> ApiResult<()> {
    let login = bridge_store::login(&state.db, device_id).await?;
    login.filter(|l| l.owner == user.as_str()).map(drop).ok_or(ApiError::NotFound("device"))
}

fn room_of(portal: &PortalRow) -> ApiResult<ruma::OwnedRoomId> {
    RoomId::parse(&portal.room_id).map_err(|e| ApiError::Internal(e.into()))
}

/// Only the events a payload is made of, in one `/messages` filter.
fn timeline_filter() -> Value {
    json!({ "types": TYPES, "lazy_load_members": true })
}

/// `event`'s payload, unless it says nothing any more (a redacted message: its deletion
/// is listed instead) or is no message at all.
async fn payload_of(state: &AppState, event: &Value, portal: &PortalRow, owner: &str) -> ApiResult<Option<Value>> {
    let redacted = event["unsigned"]["redacted_because"].is_object();
    if redacted && !matches!(event["type"].as_str(), Some("m.room.redaction")) {
        return Ok(None);
    }
    let made = payload::of_event(state, event, portal, owner, MediaMode::Url).await?;
    Ok(made.map(|(kind, mut payload)| {
        payload["event"] = kind.as_str().into();
        payload
    }))
}

pub struct ChatEntry {
    pub portal: PortalRow,
    pub last_ms: i64,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub last_message: Option<Value>,
    pub unread: i64,
}

/// A page of the device's chats, the latest active first, and where the next starts.
pub async fn chats(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    after: Option<ChatCursor>,
    limit: u32,
) -> ApiResult<(Vec<ChatEntry>, Option<ChatCursor>)> {
    owned(state, user, device_id).await?;
    let after = after.as_ref().map(|c| (c.last_ms, c.chat_id.as_str()));
    let rows = bridge_store::chats(&state.db, device_id, after, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows.into_iter().take(limit as usize) {
        let room = room_of(&row.portal)?;
        let client = &state.homeserver.client;
        let page =
            client.messages(user, &room, None, true, 20, &timeline_filter()).await.map_err(HomeserverError::from)?;
        // The newest message, not a reaction or a deletion of one.
        let mut last_message = None;
        for event in page["chunk"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let is_message = matches!(event["type"].as_str(), Some("m.room.message" | "m.sticker"))
                || event["type"] == mxgate_bridge::content::POLL_START;
            let edit = event["content"]["m.relates_to"]["rel_type"] == "m.replace";
            if is_message && !edit && !event["content"][CALL].is_object() {
                last_message = payload_of(state, event, &row.portal, user.as_str()).await?;
                if last_message.is_some() {
                    break;
                }
            }
        }
        let name = match (&row.portal.name, row.portal.is_direct) {
            (Some(name), _) => Some(name.clone()),
            (None, true) => {
                let phone = row.portal.chat_id.split('@').next().unwrap_or_default();
                bridge_store::puppet_name(&state.db, phone).await?.flatten()
            }
            (None, false) => None,
        };
        let avatar = client.state_event(user, &room, "m.room.avatar", "").await;
        let avatar_url = avatar.ok().and_then(|a| a["url"].as_str().map(str::to_owned));
        let unread = bridge_store::unread_count(&state.db, device_id, &row.portal.chat_id).await?;
        entries.push(ChatEntry { last_ms: row.last_ms, portal: row.portal, name, avatar_url, last_message, unread });
    }
    let next =
        more.then(|| entries.last().map(|e| ChatCursor { last_ms: e.last_ms, chat_id: e.portal.chat_id.clone() }));
    Ok((entries, next.flatten()))
}

/// Which way a page of history goes, from where.
pub enum Page {
    /// The newest page.
    Newest,
    /// Older than the pagination token.
    Before(String),
    /// Newer than the pagination token.
    After(String),
}

pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<Value>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// A page of one chat's history from the portal's timeline, oldest first.
pub async fn history(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    chat_id: &str,
    page: Page,
    limit: u32,
) -> ApiResult<HistoryPage> {
    owned(state, user, device_id).await?;
    let portal = bridge_store::portal(&state.db, device_id, chat_id).await?.ok_or(ApiError::NotFound("chat"))?;
    let room = room_of(&portal)?;
    let (from, backwards) = match &page {
        Page::Newest => (None, true),
        Page::Before(token) => (Some(token.as_str()), true),
        Page::After(token) => (Some(token.as_str()), false),
    };
    let client = &state.homeserver.client;
    let answer = client
        .messages(user, &room, from, backwards, limit, &timeline_filter())
        .await
        .map_err(cursor_refused("before and after take the tokens of an earlier page"))?;
    let chunk = answer["chunk"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut messages = Vec::with_capacity(chunk.len());
    for event in chunk {
        messages.extend(payload_of(state, event, &portal, user.as_str()).await?);
    }
    let token = |field: &str| answer[field].as_str().map(str::to_owned);
    // The homeserver leaves `end` out at either end of the timeline.
    let (before, after) = match backwards {
        true => {
            messages.reverse();
            (token("end"), token("start"))
        }
        false => (token("start"), token("end")),
    };
    Ok(HistoryPage { messages, before, after })
}

/// A paging token or cursor the homeserver does not know (its 400) is the caller's to fix.
fn cursor_refused(hint: &'static str) -> impl FnOnce(mxgate_bridge::matrix::MatrixError) -> ApiError {
    move |error| match error {
        mxgate_bridge::matrix::MatrixError::Refused { status: 400, .. } => ApiError::BadRequest(hint.into()),
        error => HomeserverError::from(error).into(),
    }
}

/// The homeserver's search over the device's chats (or one), newest first.
pub async fn search(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    query: &str,
    chat_id: Option<&str>,
    next_batch: Option<&str>,
) -> ApiResult<(Vec<Value>, Option<String>)> {
    owned(state, user, device_id).await?;
    let portals = match chat_id {
        Some(chat) => {
            vec![bridge_store::portal(&state.db, device_id, chat).await?.ok_or(ApiError::NotFound("chat"))?]
        }
        None => bridge_store::portals_of(&state.db, device_id).await?,
    };
    if portals.is_empty() {
        return Ok((Vec::new(), None));
    }
    let rooms: Vec<&str> = portals.iter().map(|p| p.room_id.as_str()).collect();
    let criteria = json!({ "search_categories": { "room_events": {
        "search_term": query,
        "keys": ["content.body"],
        "order_by": "recent",
        "filter": { "rooms": rooms, "types": TYPES },
    } } });
    let answer = state
        .homeserver
        .client
        .search(user, criteria, next_batch)
        .await
        .map_err(cursor_refused("cursor is the next_cursor of an earlier page"))?;
    let found = &answer["search_categories"]["room_events"];
    let mut results = Vec::new();
    for hit in found["results"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let event = &hit["result"];
        let Some(portal) = portals.iter().find(|p| event["room_id"] == p.room_id.as_str()) else { continue };
        results.extend(payload_of(state, event, portal, user.as_str()).await?);
    }
    Ok((results, found["next_batch"].as_str().map(str::to_owned)))
}

/// A message's file as the homeserver serves it, with its name and type.
pub struct File {
    pub response: reqwest::Response,
    pub file_name: String,
    pub mime_type: String,
}

/// The file of the message `event_id` of one of the device's chats (or its thumbnail).
pub async fn file(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    event_id: &str,
    thumbnail: Option<(u32, u32)>,
) -> ApiResult<File> {
    owned(state, user, device_id).await?;
    let message = bridge_store::message_by_event(&state.db, event_id).await?;
    let message = message.filter(|m| m.account_id == device_id).ok_or(ApiError::NotFound("message"))?;
    let room = RoomId::parse(&message.room_id).map_err(|e| ApiError::Internal(e.into()))?;
    let client = &state.homeserver.client;
    let event = client.event(user, &room, event_id).await.map_err(HomeserverError::from)?;
    let content = &event["content"];
    let url = content["url"].as_str().ok_or_else(|| ApiError::unprocessable("the message has no file"))?;
    let pictured = matches!(content["msgtype"].as_str(), Some("m.image" | "m.video")) || event["type"] == "m.sticker";
    if thumbnail.is_some() && !pictured {
        return Err(ApiError::unprocessable("thumbnails are made of images and videos"));
    }
    let response = client.media(user, url, thumbnail).await.map_err(HomeserverError::from)?;
    let file_name = content["filename"].as_str().or_else(|| content["body"].as_str()).unwrap_or("file").to_owned();
    let mime_type = content["info"]["mimetype"].as_str().unwrap_or("application/octet-stream").to_owned();
    Ok(File { response, file_name, mime_type })
}
