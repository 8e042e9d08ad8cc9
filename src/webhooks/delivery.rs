//! Durable webhook delivery: the worker sends what the queue holds, in event order per
//! webhook, signed with each webhook's secret, retrying with capped exponential backoff
//! until the retry horizon has passed; a periodic task prunes what retention allows.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::queue::{self, Due, Outcome, Status, now_ms};
pub use super::queue::{Event, enqueue, enqueue_farewell, pending};
use super::signing;
use crate::events::Cursor;
use crate::state::AppState;
use crate::time::Timestamp;

/// Webhooks being sent to at once (each webhook gets one request at a time).
const CONCURRENCY: usize = 32;
/// How long one attempt may take, name lookup included.
pub const RECEIVER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is held by the attempt that claimed it: three times the
/// longest attempt, so a process that died mid-attempt delays that delivery half a minute.
const LEASE_MS: i64 = 30_000;
/// Due deliveries read per round.
const BATCH: i64 = 500;

/// A delivery as `GET /webhooks/{id}/deliveries` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// Stable across retries; sent as `X-Mxgate-Delivery`.
    pub id: String,
    /// The event's place in the token's event feed; sent as `X-Mxgate-Event-Cursor`.
    pub cursor: Cursor,
    pub event_id: String,
    pub status: Status,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i64>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    /// When the last attempt started.
    pub last_attempt_at: Option<Timestamp>,
    /// When a pending delivery is tried next (while its webhook is active).
    pub next_attempt_at: Option<Timestamp>,
}

impl From<queue::DeliveryRow> for Delivery {
    fn from(row: queue::DeliveryRow) -> Self {
        let status = match row.status.as_str() {
            "delivered" => Status::Delivered,
            "failed" => Status::Failed,
            _ => Status::Pending,
        };
        Self {
            id: row.id,
            cursor: Cursor(row.seq),
            event_id: row.event_id,
            status,
            attempts: row.attempts,
            last_error: row.last_error,
            response_status: row.response_status,
            created_at: Timestamp(row.created_at),
            delivered_at: row.delivered_at.map(Timestamp),
            last_attempt_at: row.last_attempt_at.map(|ms| Timestamp(ms.div_euclid(1000))),
            next_attempt_at: (status == Status::Pending).then_some(Timestamp(row.next_attempt_at.div_euclid(1000))),
        }
    }
}

/// The running delivery worker, stopped by [`Worker::stop`] at a graceful shutdown.
pub struct Worker {
    stopping: Arc<AtomicBool>,
    permits: Arc<tokio::sync::Semaphore>,
    wake: Arc<tokio::sync::Notify>,
}

impl Worker {
    /// Claims nothing more and waits (at most one receiver's timeout) for the attempts in
    /// flight to be recorded, so a graceful stop leaves no claim for the next process to
    /// wait out.
    pub async fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let all = u32::try_from(CONCURRENCY).expect("CONCURRENCY fits u32");
        let settled = tokio::time::timeout(RECEIVER_TIMEOUT * 2, self.permits.acquire_many(all)).await;
        if settled.is_err() {
            tracing::warn!("stopped with webhook deliveries in flight; they are retried when their claim expires");
        }
    }
}

/// Starts the delivery worker and the pruning task. The worker wakes on
/// `state.deliveries`, when a webhook's backlog is sent, or every second.
pub fn spawn_worker(state: AppState) -> Worker {
    tokio::spawn(prune_periodically(state.clone()));
    let wake = state.deliveries.clone();
    let stopping = Arc::new(AtomicBool::new(false));
    // Webhooks with a drain in flight: one request at a time per webhook keeps its order.
    let busy = Arc::new(Mutex::new(HashSet::<String>::new()));
    // A drain holds a permit for its whole run: all permits free means nothing in flight.
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let worker = Worker { stopping: stopping.clone(), permits: permits.clone(), wake: wake.clone() };
    tokio::spawn(async move {
        while !stopping.load(Ordering::SeqCst) {
            match queue::due(&state.db, now_ms(), BATCH).await {
                Ok(rows) => {
                    for (webhook_id, rows) in by_webhook(rows) {
                        if !busy.lock().unwrap_or_else(|e| e.into_inner()).insert(webhook_id.clone()) {
                            continue;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        let (state, busy, wake) = (state.clone(), busy.clone(), wake.clone());
                        let stopping = stopping.clone();
                        // Each webhook drains in its own task: a slow receiver holds one permit, not the queue.
                        tokio::spawn(async move {
                            let drained = drain(&state, rows, &stopping).await;
                            busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&webhook_id);
                            drop(permit);
                            match drained {
                                // More may be due behind this batch.
                                Drained::All => wake.notify_one(),
                                // The worker looks again when the retry is due (or at its next round).
                                Drained::StoppedUntil(at) => {
                                    let wait = Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0));
                                    if wait < Duration::from_secs(1) {
                                        tokio::time::sleep(wait).await;
                                        wake.notify_one();
                                    }
                                }
                            }
                        });
                    }
                }
                Err(error) => tracing::error!(error = %error, "cannot read due webhook deliveries"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
        }
    });
    worker
}

/// Groups due rows by webhook, keeping the order webhooks first appear in.
fn by_webhook(rows: Vec<Due>) -> Vec<(String, Vec<Due>)> {
    let mut groups: Vec<(String, Vec<Due>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(id, _)| *id == row.webhook_id) {
            Some((_, group)) => group.push(row),
            None => groups.push((row.webhook_id.clone(), vec![row])),
        }
    }
    groups
}

enum Drained {
    All,
    /// A receiver did not take a delivery, which is tried again at this time (ms).
    StoppedUntil(i64),
}

/// Sends one webhook's due deliveries, longest waiting first (which is event order for
/// what has not failed yet); stops at the first failure so a receiver that is down gets
/// one request per round, not its whole backlog at once, and each due delivery gets its turn.
async fn drain(state: &AppState, rows: Vec<Due>, stopping: &AtomicBool) -> Drained {
    for row in rows {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        if let Some(retry_at) = attempt(state, row).await {
            return Drained::StoppedUntil(retry_at);
        }
    }
    Drained::All
}

/// One attempt of one delivery; when the receiver did not take it, when it is tried
/// again (`i64::MAX` when it is given up).
async fn attempt(state: &AppState, due: Due) -> Option<i64> {
    let started = now_ms();
    let outgoing = match queue::claim(&state.db, &due, started + LEASE_MS).await {
        Ok(Some(outgoing)) => outgoing,
        Ok(None) => return None,
        Err(error) => {
            tracing::error!(delivery = %due.id, error = %error, "cannot claim a delivery");
            return Some(started + 1000);
        }
    };
    // The receiver's addresses are checked as it connects: the name may resolve elsewhere
    // than at creation, and is resolved only once per attempt.
    let sent = match state.outbound.post(&outgoing.url) {
        Err(forbidden) => Err((forbidden.to_string(), None)),
        Ok(request) => {
            let mut request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Mxgate-Delivery", &due.id)
                .header("X-Mxgate-Event-Cursor", Cursor(due.seq).to_string());
            let now = crate::db::now();
            for (name, value) in signing::headers(&outgoing.secrets(now), &due.id, now, &outgoing.payload) {
                request = request.header(name, value);
            }
            match request.body(outgoing.payload).send().await {
                Ok(r) if r.status().is_success() => Ok(i64::from(r.status().as_u16())),
                Ok(r) => Err((format!("receiver answered {}", r.status()), Some(i64::from(r.status().as_u16())))),
                Err(e) => Err((format!("receiver unreachable: {}", crate::outbound::describe(e)), None)),
            }
        }
    };
    let mut retry_at = None;
    let outcome = match sent {
        Ok(response_status) => Outcome::Delivered { response_status },
        Err((error, response_status)) => {
            let attempts = due.attempts + 1;
            let config = &state.config;
            let deadline =
                due.first_attempt_at.unwrap_or(started).saturating_add(config.webhook_retry_horizon.as_millis());
            let now = now_ms();
            let next_attempt_at = (now < deadline).then(|| {
                let delay =
                    backoff_ms(config.webhook_retry_base_ms, attempts, config.webhook_retry_max_delay.as_millis());
                (now + delay).min(deadline)
            });
            retry_at = Some(next_attempt_at.unwrap_or(i64::MAX));
            match next_attempt_at {
                Some(_) => tracing::warn!(delivery = %due.id, attempts, error = %error, "webhook delivery failed"),
                None => tracing::warn!(delivery = %due.id, attempts, error = %error, "webhook delivery given up"),
            }
            Outcome::Failed { error, response_status, next_attempt_at }
        }
    };
    if let Err(error) = queue::record(&state.db, &due.id, started, outcome).await {
        tracing::error!(delivery = %due.id, error = %error, "cannot record a delivery attempt");
    }
    retry_at
}

/// `base · 2^(attempts-1)` times a random factor in [0.5, 1.5), at most `cap`.
fn backoff_ms(base: u64, attempts: i64, cap: i64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
    let nominal = base.saturating_mul(1 << exponent) as f64;
    ((nominal * rand::random_range(0.5..1.5)) as i64).min(cap)
}

/// Deletes delivered and failed rows, and unneeded events, older than the retention period.
async fn prune_periodically(state: AppState) {
    let retention = state.config.webhook_retention;
    let every = (retention.0 / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        let before = crate::db::now() - i64::try_from(retention.0.as_secs()).unwrap_or(i64::MAX / 2);
        match queue::prune(&state.db, before).await {
            Ok((0, 0)) => {}
            Ok((deliveries, events)) => tracing::info!(deliveries, events, "pruned past the retention period"),
            Err(error) => tracing::error!(error = %error, "cannot prune webhook deliveries"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_up_to_the_cap() {
        for attempts in 1..=6 {
            let nominal = 1000 * (1 << (attempts - 1));
            let delay = backoff_ms(1000, attempts, 600_000);
            assert!(delay >= nominal / 2 && delay < nominal * 3 / 2, "{attempts}: {delay}");
        }
        for attempts in [20, 60, 1000] {
            assert!(backoff_ms(1000, attempts, 600_000) <= 600_000);
        }
    }
}
