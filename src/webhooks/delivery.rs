//! Durable webhook delivery: rows queued in the store, sent by a worker with
//! exponential backoff and jitter, signed with each webhook's secret.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::AddressPolicy;
use crate::db::Db;
use crate::state::AppState;
use crate::time::Timestamp;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// Deliveries in flight at once, across all receivers.
const CONCURRENCY: usize = 32;
/// How long one receiver may take to answer.
const RECEIVER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// A delivery as `GET /webhooks/{id}/deliveries` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Stable across retries; sent as `X-Mxgate-Delivery` for dedupe.
    pub id: String,
    pub event_id: String,
    /// `pending`, `delivered` or `failed` (attempts exhausted).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            response_status: row.response_status,
            created_at: Timestamp(row.created_at),
            delivered_at: row.delivered_at.map(Timestamp),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Queues `payload` for every active webhook of the tokens acting as `identity`.
/// Returns how many deliveries were queued (a replayed event queues none).
pub async fn enqueue(db: &Db, identity: &str, event_id: &str, payload: &str) -> Result<u64, sqlx::Error> {
    let webhooks: Vec<String> = sqlx::query_scalar(
        "SELECT w.id FROM webhooks w JOIN tokens t ON t.id = w.token_id
         WHERE t.matrix_user_id = $1 AND w.active = $2 AND (t.expires_at IS NULL OR t.expires_at > $3)",
    )
    .bind(identity)
    .bind(true)
    .bind(crate::db::now())
    .fetch_all(&db.pool)
    .await?;
    let mut queued = 0;
    for webhook_id in webhooks {
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, payload, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&webhook_id)
        .bind(event_id)
        .bind(payload)
        .bind(PENDING)
        .bind(now_ms())
        .bind(crate::db::now())
        .execute(&db.pool)
        .await?;
        queued += done.rows_affected();
    }
    Ok(queued)
}

/// Deliveries still to be made, across all webhooks.
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = $1")
        .bind(PENDING)
        .fetch_one(&db.pool)
        .await
}

pub async fn list_for_webhook(db: &Db, webhook_id: &str) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, webhook_id, event_id, payload, status, attempts, last_error, response_status, created_at, delivered_at
         FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY created_at, id",
    )
    .bind(webhook_id)
    .fetch_all(&db.pool)
    .await
}

#[derive(sqlx::FromRow)]
struct Due {
    id: String,
    payload: String,
    attempts: i64,
    url: String,
    secret: String,
}

/// Starts the delivery worker: it wakes on `state.deliveries` or every second and sends what is due.
pub fn spawn_worker(state: AppState) {
    let wake: Arc<Notify> = state.deliveries.clone();
    let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let http = reqwest::Client::builder()
        .timeout(RECEIVER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest builds");
    tokio::spawn(async move {
        loop {
            match due(&state.db).await {
                Ok(rows) => {
                    for row in rows {
                        if !in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(row.id.clone()) {
                            continue;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        let (state, http, in_flight) = (state.clone(), http.clone(), in_flight.clone());
                        // Each delivery is its own task: a slow receiver holds one permit, not the queue.
                        tokio::spawn(async move {
                            let id = row.id.clone();
                            attempt(&state, &http, row).await;
                            in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                            drop(permit);
                        });
                    }
                }
                Err(error) => tracing::error!(error = %error, "cannot read due webhook deliveries"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        }
    });
}

async fn due(db: &Db) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.payload, d.attempts, w.url, w.secret FROM webhook_deliveries d
         JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.status = $1 AND d.next_attempt_at <= $2 ORDER BY d.next_attempt_at LIMIT 200",
    )
    .bind(PENDING)
    .bind(now_ms())
    .fetch_all(&db.pool)
    .await
}

/// `sha256=<hex>` HMAC of the body with the webhook's secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn attempt(state: &AppState, http: &reqwest::Client, due: Due) {
    let policy = AddressPolicy {
        allow_loopback: state.config.webhook_allow_loopback,
        allow_private: state.config.webhook_allow_private,
    };
    let attempts = due.attempts + 1;
    // Checked again at each attempt: the name may resolve elsewhere than at creation.
    let outcome = match policy.check(&due.url).await {
        Err(forbidden) => Err((forbidden.to_string(), None)),
        Ok(url) => {
            let timestamp = crate::db::now().to_string();
            let response = http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Mxgate-Delivery", &due.id)
                .header("X-Mxgate-Timestamp", &timestamp)
                .header("X-Mxgate-Signature", signature(&due.secret, due.payload.as_bytes()))
                .body(due.payload.clone())
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => Ok(i64::from(r.status().as_u16())),
                Ok(r) => Err((format!("receiver answered {}", r.status()), Some(i64::from(r.status().as_u16())))),
                Err(e) => Err((format!("receiver unreachable: {}", e.without_url()), None)),
            }
        }
    };
    let result = match outcome {
        Ok(status) => {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $2, attempts = $3, response_status = $4, delivered_at = $5, last_error = NULL WHERE id = $1",
            )
            .bind(&due.id)
            .bind(DELIVERED)
            .bind(attempts)
            .bind(status)
            .bind(crate::db::now())
            .execute(&state.db.pool)
            .await
        }
        Err((error, status)) => {
            let exhausted = attempts >= i64::from(state.config.webhook_max_attempts);
            let next = now_ms() + backoff_ms(state.config.webhook_retry_base_ms, attempts);
            tracing::warn!(delivery = %due.id, attempts, error = %error, "webhook delivery failed");
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $2, attempts = $3, response_status = $4, last_error = $5, next_attempt_at = $6 WHERE id = $1",
            )
            .bind(&due.id)
            .bind(if exhausted { FAILED } else { PENDING })
            .bind(attempts)
            .bind(status)
            .bind(error)
            .bind(next)
            .execute(&state.db.pool)
            .await
        }
    };
    if let Err(error) = result {
        tracing::error!(delivery = %due.id, error = %error, "cannot record a delivery attempt");
    }
}

/// `base · 2^(attempts-1)`, capped at an hour, times a random factor in [0.5, 1.5).
fn backoff_ms(base: u64, attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
    let delay = base.saturating_mul(1 << exponent).min(3_600_000) as f64;
    (delay * rand::random_range(0.5..1.5)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter() {
        for attempts in 1..=6 {
            let nominal = 1000 * (1 << (attempts - 1));
            let delay = backoff_ms(1000, attempts);
            assert!(delay >= nominal / 2 && delay < nominal * 3 / 2, "{attempts}: {delay}");
        }
        assert!(backoff_ms(1000, 60) <= 5_400_000);
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
