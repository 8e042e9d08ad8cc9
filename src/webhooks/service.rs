use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::{EventType, Filter};
use super::delivery::Delivery;
use super::queue::{self, Status};
use super::signing;
use super::store::{self, WebhookRow};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::events::{Cursor, Limit};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::tokens::store::TokenRow;

/// Webhooks one token may have; more is almost certainly a client bug.
pub const MAX_PER_TOKEN: usize = 10;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// http(s) URL that receives the JSON POSTs.
    #[schema(example = "https://example.com/mxgate/webhook", pattern = r"^https?://[^\s@/?#]+([/?#]\S*)?$")]
    pub url: String,
    /// Defaults to `true`.
    #[serde(default = "enabled")]
    pub active: bool,
    /// The event types it receives (see the catalogue in README); absent: `message`,
    /// `message.edited`, `message.status` and `device.logged_out`, as before types could
    /// be chosen.
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, min_items = 1)]
    pub events: Option<Vec<EventType>>,
}

fn enabled() -> bool {
    true
}

/// At least one field; an absent one stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct WebhookChange {
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, pattern = r"^https?://[^\s@/?#]+([/?#]\S*)?$")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "crate::extract::present")]
    #[schema(nullable = false, min_items = 1)]
    pub events: Option<Vec<EventType>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub active: bool,
    /// The event types it receives.
    pub events: Vec<EventType>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Only in the answer to a create or update that set `url`: the host does not resolve
    /// yet. The webhook is kept; each delivery looks the host up and checks it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            active: row.active,
            events: Filter::from_column(row.events.as_deref()).types(),
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
            warning: None,
        }
    }
}

/// The event types chosen, as stored; none at all is refused (`active: false` pauses).
fn chosen_events(events: Vec<EventType>) -> ApiResult<Option<String>> {
    if events.is_empty() {
        return Err(ApiError::unprocessable(
            "events names at least one event type; to pause a webhook, set active to false",
        ));
    }
    Ok(Filter::chosen(events).to_column())
}

/// The URL as stored, and a warning when its host does not resolve yet.
async fn checked_url(state: &AppState, url: &str) -> ApiResult<(String, Option<String>)> {
    let checked = state.outbound.check(url).await.map_err(|e| ApiError::unprocessable(format!("webhook {e}")))?;
    let warning = checked.warning.map(|w| format!("webhook {w} yet; each delivery looks it up again"));
    Ok((checked.url.into(), warning))
}

fn ensure_unique_url(existing: &[WebhookRow], url: &str, except: Option<&str>) -> ApiResult<()> {
    if existing.iter().any(|w| w.url == url && Some(w.id.as_str()) != except) {
        return Err(ApiError::Conflict("this token already has a webhook with that url".into()));
    }
    Ok(())
}

/// Returns the webhook and its signing secret, which is never shown again.
pub async fn create(state: &AppState, token: &TokenRow, new: NewWebhook) -> ApiResult<(Webhook, String)> {
    let events = new.events.map(chosen_events).transpose()?.flatten();
    let (url, warning) = checked_url(state, &new.url).await?;
    let existing = store::list_for_token(&state.db, &token.id).await?;
    if existing.len() >= MAX_PER_TOKEN {
        return Err(ApiError::Conflict(format!("a token has at most {MAX_PER_TOKEN} webhooks")));
    }
    ensure_unique_url(&existing, &url, None)?;
    let now = db::now();
    let row = WebhookRow {
        id: uuid::Uuid::new_v4().to_string(),
        token_id: token.id.clone(),
        url,
        active: new.active,
        secret: signing::new_secret(),
        events,
        created_at: now,
        updated_at: now,
    };
    store::insert(&state.db, &row).await?;
    let signing_secret = row.secret.expose().to_owned();
    Ok((Webhook { warning, ..row.into() }, signing_secret))
}

pub async fn list(state: &AppState, token: &TokenRow) -> ApiResult<Vec<Webhook>> {
    Ok(store::list_for_token(&state.db, &token.id).await?.into_iter().map(Webhook::from).collect())
}

pub async fn update(state: &AppState, token: &TokenRow, id: &str, change: WebhookChange) -> ApiResult<Webhook> {
    if change.url.is_none() && change.active.is_none() && change.events.is_none() {
        return Err(ApiError::unprocessable("give at least one of url, active, events"));
    }
    let events = change.events.map(chosen_events).transpose()?;
    let mut row = store::find_for_token(&state.db, id, &token.id).await?.ok_or(ApiError::NotFound("webhook"))?;
    if let Some(events) = events {
        row.events = events;
    }
    let mut warning = None;
    if let Some(url) = change.url {
        let (url, unresolved) = checked_url(state, &url).await?;
        ensure_unique_url(&store::list_for_token(&state.db, &token.id).await?, &url, Some(id))?;
        row.url = url;
        warning = unresolved;
    }
    if let Some(active) = change.active {
        row.active = active;
    }
    row.updated_at = db::now();
    if !store::update(&state.db, &row).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    if row.active {
        // A resumed webhook gets what queued while it was paused, now.
        state.deliveries.notify_one();
    }
    Ok(Webhook { warning, ..row.into() })
}

/// Grace period of a rotated secret when the request names none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(86_400);
/// The longest grace period: a week covers any receiver's deployment cycle.
pub const MAX_GRACE_SECS: u64 = 7 * 86_400;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the current secret keeps signing beside the new one, in seconds (0 to
    /// 604800; default 86400). Rotating again within it ends the older secret's grace.
    #[schema(minimum = 0, maximum = 604_800, example = 3600)]
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub grace_seconds: Option<u64>,
}

/// Gives the webhook a new secret, returned once; until the grace period ends, each
/// delivery carries a signature with either secret.
pub async fn rotate_secret(
    state: &AppState,
    token: &TokenRow,
    id: &str,
    rotate: RotateSecret,
) -> ApiResult<(Webhook, String, Timestamp)> {
    let grace = rotate.grace_seconds.map_or(DEFAULT_GRACE, Duration::from_secs);
    if grace.as_secs() > MAX_GRACE_SECS {
        return Err(ApiError::unprocessable(format!("grace_seconds is at most {MAX_GRACE_SECS}")));
    }
    let secret = signing::new_secret();
    let now = db::now();
    let until = now + i64::try_from(grace.as_secs()).expect("at most a week");
    if !store::rotate_secret(&state.db, (id, &token.id), &secret, now, until).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    let row = store::find_for_token(&state.db, id, &token.id).await?.ok_or(ApiError::NotFound("webhook"))?;
    Ok((row.into(), secret.expose().to_owned(), Timestamp(until)))
}

pub async fn delete(state: &AppState, token: &TokenRow, id: &str) -> ApiResult<()> {
    if !store::delete_for_token(&state.db, id, &token.id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(())
}

/// One page of a webhook's delivery log, in event order (oldest first), and the cursor
/// of the next page when there is one.
pub async fn deliveries(
    state: &AppState,
    token: &TokenRow,
    id: &str,
    after: Cursor,
    limit: Limit,
    status: Option<Status>,
) -> ApiResult<(Vec<Delivery>, Option<Cursor>)> {
    store::find_for_token(&state.db, id, &token.id).await?.ok_or(ApiError::NotFound("webhook"))?;
    let mut rows = queue::page(&state.db, id, after, limit.get() + 1, status).await?;
    let more = rows.len() > limit.0 as usize;
    rows.truncate(limit.0 as usize);
    let next = rows.last().filter(|_| more).map(|row| Cursor(row.seq));
    Ok((rows.into_iter().map(Into::into).collect(), next))
}

/// Sends one delivery again, whatever its status (a paused webhook gets it once resumed).
pub async fn retry(state: &AppState, token: &TokenRow, id: &str, delivery_id: &str) -> ApiResult<Delivery> {
    store::find_for_token(&state.db, id, &token.id).await?.ok_or(ApiError::NotFound("webhook"))?;
    if !queue::retry(&state.db, id, delivery_id).await? {
        return Err(ApiError::NotFound("delivery"));
    }
    state.deliveries.notify_one();
    let row = queue::find(&state.db, id, delivery_id).await?.ok_or(ApiError::NotFound("delivery"))?;
    Ok(row.into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redeliver {
    /// Every failed delivery of an event queued at or after this time is sent again.
    #[schema(example = "2026-11-21T10:00:00Z")]
    pub since: DateTime<Utc>,
}

/// Queues again every failed delivery since `since`; returns how many.
pub async fn redeliver(state: &AppState, token: &TokenRow, id: &str, redeliver: Redeliver) -> ApiResult<u64> {
    store::find_for_token(&state.db, id, &token.id).await?.ok_or(ApiError::NotFound("webhook"))?;
    let count = queue::redeliver_failed_since(&state.db, id, redeliver.since.timestamp()).await?;
    state.deliveries.notify_one();
    Ok(count)
}
