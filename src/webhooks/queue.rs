//! The delivery queue: one row per (webhook, event), referencing the event log for the
//! payload. Rows are written in the transaction that appends the event, claimed by the
//! worker with a lease, and kept until pruned after the retention period.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalogue::{EventType, Filter};
use crate::db::Db;
use crate::events::{Cursor, store as events};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Queued or being retried (or waiting for its paused webhook).
    Pending,
    Delivered,
    /// Retried for the whole horizon without success; `retry` or `redeliver` queue it again.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub seq: i64,
    pub event_id: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    /// Milliseconds.
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
}

const COLUMNS: &str = "id, webhook_id, seq, event_id, status, attempts, last_error, response_status, created_at, \
                       delivered_at, next_attempt_at, last_attempt_at";

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One event for an identity's webhooks: its key in the event log, its type, its payload.
pub struct Event<'a> {
    pub identity: &'a str,
    pub event_id: &'a str,
    pub kind: EventType,
    pub payload: serde_json::Value,
}

/// Appends the event to its identity's event log and queues it for every webhook of the
/// identity's unexpired tokens that takes its type, paused ones included, in one
/// transaction. Returns how many deliveries were queued; an event already in the log (a
/// replay) queues none.
pub async fn enqueue(db: &Db, event: Event<'_>) -> Result<u64, sqlx::Error> {
    queue_event(db, event, crate::db::now()).await
}

/// [`enqueue`] to the webhooks of expired tokens as well: a device logged out because the
/// identity's tokens expired is told to the webhooks that watched it.
pub async fn enqueue_farewell(db: &Db, event: Event<'_>) -> Result<u64, sqlx::Error> {
    queue_event(db, event, i64::MIN).await
}

/// Queues the event for the webhooks of its identity's tokens unexpired at `live_at`.
async fn queue_event(db: &Db, mut event: Event<'_>, live_at: i64) -> Result<u64, sqlx::Error> {
    let (identity, event_id) = (event.identity, event.event_id);
    // One place names every payload's type, so no payload goes out without it.
    event.payload["event"] = event.kind.as_str().into();
    let mut tx = db.pool.begin().await?;
    let Some(seq) = events::append(&mut tx, identity, event_id, &event.payload.to_string()).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    let webhooks: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT w.id, w.events FROM webhooks w JOIN tokens t ON t.id = w.token_id
         WHERE t.matrix_user_id = $1 AND (t.expires_at IS NULL OR t.expires_at > $2) ORDER BY w.id",
    )
    .bind(identity)
    .bind(live_at)
    .fetch_all(&mut *tx)
    .await?;
    let mut queued = 0;
    for (webhook_id, _) in
        webhooks.iter().filter(|(_, types)| Filter::from_column(types.as_deref()).accepts(event.kind))
    {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, identity, seq, event_id, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(webhook_id)
        .bind(identity)
        .bind(seq)
        .bind(event_id)
        .bind(Status::Pending.as_str())
        .bind(now_ms())
        .bind(crate::db::now())
        .execute(&mut *tx)
        .await?;
        queued += done.rows_affected();
    }
    tx.commit().await?;
    Ok(queued)
}

/// Deliveries still to be made to active webhooks (a paused webhook's queue waits by design).
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = $1 AND w.active = $2",
    )
    .bind(Status::Pending.as_str())
    .bind(true)
    .fetch_one(&db.pool)
    .await
}

/// Up to `limit` deliveries of a webhook after `after`, in event order (oldest first).
pub async fn page(
    db: &Db,
    webhook_id: &str,
    after: Cursor,
    limit: i64,
    status: Option<Status>,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_deliveries
         WHERE webhook_id = $1 AND seq > $2 AND ($3 = '' OR status = $3) ORDER BY seq LIMIT $4"
    )))
    .bind(webhook_id)
    .bind(after.0)
    .bind(status.map_or("", Status::as_str))
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

pub async fn find(db: &Db, webhook_id: &str, id: &str) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2"
    )))
    .bind(webhook_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await
}

/// One delivery, whatever its status, is sent again.
/// False when the webhook has no such delivery.
pub async fn retry(db: &Db, webhook_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $3, next_attempt_at = $4, first_attempt_at = NULL
         WHERE webhook_id = $1 AND id = $2",
    )
    .bind(webhook_id)
    .bind(id)
    .bind(Status::Pending.as_str())
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every failed delivery of a webhook queued at or after `since` (unix seconds) is sent again.
pub async fn redeliver_failed_since(db: &Db, webhook_id: &str, since: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, first_attempt_at = NULL
         WHERE webhook_id = $1 AND status = $4 AND created_at >= $5",
    )
    .bind(webhook_id)
    .bind(Status::Pending.as_str())
    .bind(now_ms())
    .bind(Status::Failed.as_str())
    .bind(since)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// A delivery the worker may send now.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub id: String,
    pub webhook_id: String,
    pub seq: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub first_attempt_at: Option<i64>,
}

/// Pending deliveries of active webhooks whose time has come, longest waiting first
/// (queued ones in event order: their first due time is when they were queued).
pub async fn due(db: &Db, now_ms: i64, limit: i64) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.webhook_id, d.seq, d.attempts, d.next_attempt_at, d.first_attempt_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = $1 AND d.next_attempt_at <= $2 AND w.active = $3
         ORDER BY d.next_attempt_at, d.seq LIMIT $4",
    )
    .bind(Status::Pending.as_str())
    .bind(now_ms)
    .bind(true)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// What one attempt sends.
#[derive(Debug, sqlx::FromRow)]
pub struct Outgoing {
    pub url: String,
    pub secret: Secret,
    pub previous_secret: Option<Secret>,
    pub previous_secret_expires_at: Option<i64>,
    pub payload: String,
}

impl Outgoing {
    /// The secrets that sign at `now` (unix seconds): the current one, and the previous
    /// one within its grace period.
    pub fn secrets(&self, now: i64) -> Vec<&Secret> {
        let previous =
            self.previous_secret.as_ref().filter(|_| self.previous_secret_expires_at.is_some_and(|until| now < until));
        std::iter::once(&self.secret).chain(previous).collect()
    }
}

/// Claims `due` for one attempt: pushes its next attempt to `lease_until`, so neither this
/// process nor another sends it meanwhile, and a crash mid-attempt only delays it. `None`
/// when it changed since it was read (claimed elsewhere, retried, webhook paused).
pub async fn claim(db: &Db, due: &Due, lease_until: i64) -> Result<Option<Outgoing>, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE webhook_deliveries SET next_attempt_at = $3
         WHERE id = $1 AND status = $4 AND next_attempt_at = $2
           AND webhook_id IN (SELECT id FROM webhooks WHERE active = $5)",
    )
    .bind(&due.id)
    .bind(due.next_attempt_at)
    .bind(lease_until)
    .bind(Status::Pending.as_str())
    .bind(true)
    .execute(&db.pool)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT w.url, w.secret, w.previous_secret, w.previous_secret_expires_at, e.payload FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         JOIN events e ON e.identity = d.identity AND e.seq = d.seq
         WHERE d.id = $1",
    )
    .bind(&due.id)
    .fetch_optional(&db.pool)
    .await
}

/// How one attempt ended.
pub enum Outcome {
    Delivered {
        response_status: i64,
    },
    /// Retried at `next_attempt_at`, or `failed` when that is `None`.
    Failed {
        error: String,
        response_status: Option<i64>,
        next_attempt_at: Option<i64>,
    },
}

pub async fn record(db: &Db, id: &str, started_ms: i64, outcome: Outcome) -> Result<(), sqlx::Error> {
    let query = match outcome {
        Outcome::Delivered { response_status } => sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, response_status = $3,
             delivered_at = $4, last_error = NULL, last_attempt_at = $5,
             first_attempt_at = COALESCE(first_attempt_at, $5) WHERE id = $1",
        )
        .bind(id)
        .bind(Status::Delivered.as_str())
        .bind(response_status)
        .bind(crate::db::now())
        .bind(started_ms),
        Outcome::Failed { error, response_status, next_attempt_at } => sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, response_status = $3,
             last_error = $4, next_attempt_at = $5, last_attempt_at = $6,
             first_attempt_at = COALESCE(first_attempt_at, $6) WHERE id = $1",
        )
        .bind(id)
        .bind(if next_attempt_at.is_some() { Status::Pending } else { Status::Failed }.as_str())
        .bind(response_status)
        .bind(error)
        .bind(next_attempt_at.unwrap_or(started_ms))
        .bind(started_ms),
    };
    query.execute(&db.pool).await.map(drop)
}

/// Deletes deliveries delivered, or failed, before `before` (unix seconds), then the
/// events older than that no delivery needs any more. Returns (deliveries, events).
pub async fn prune(db: &Db, before: i64) -> Result<(u64, u64), sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE (status = $1 AND delivered_at < $2) OR (status = $3 AND last_attempt_at < $4)",
    )
    .bind(Status::Delivered.as_str())
    .bind(before)
    .bind(Status::Failed.as_str())
    .bind(before.saturating_mul(1000))
    .execute(&db.pool)
    .await?;
    Ok((done.rows_affected(), events::prune(db, before).await?))
}
