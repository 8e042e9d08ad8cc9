use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Cursor, Limit, store};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::tokens::store::TokenRow;

/// One event of the feed: what the token's webhooks were (or will be) sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEvent {
    /// Where this event sits in the token's feed; deliveries of it carry the same one
    /// (`X-Mxgate-Event-Cursor`).
    pub cursor: Cursor,
    /// The payload's `id` for messages (a Matrix event id); deduplicate on it.
    pub event_id: String,
    pub created_at: Timestamp,
    /// The webhook payload, exactly as delivered.
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Feed {
    /// Oldest first.
    pub events: Vec<FeedEvent>,
    /// Pass as `after` for the next page: the last event's cursor, or the `after` given
    /// when there is nothing new.
    pub next_cursor: Cursor,
    /// Whether more events follow right away.
    pub has_more: bool,
}

/// The events of the token's Matrix identity after `after`, oldest first.
pub async fn feed(state: &AppState, token: &TokenRow, after: Cursor, limit: Limit) -> ApiResult<Feed> {
    if after > store::last(&state.db, &token.matrix_user_id).await? {
        return Err(ApiError::NotFound("cursor (it is past the end of this feed, so not one it gave out)"));
    }
    let mut rows = store::page(&state.db, &token.matrix_user_id, after, limit.get() + 1).await?;
    let has_more = rows.len() > limit.0 as usize;
    rows.truncate(limit.0 as usize);
    let next_cursor = rows.last().map_or(after, |row| Cursor(row.seq));
    let events = rows
        .into_iter()
        .map(|row| FeedEvent {
            cursor: Cursor(row.seq),
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::String(row.payload)),
            event_id: row.event_id,
            created_at: Timestamp(row.created_at),
        })
        .collect();
    Ok(Feed { events, next_cursor, has_more })
}
