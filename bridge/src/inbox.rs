//! The inbox: network → Matrix, durably. A connector commits each batch of received
//! messages here before it lets the network forget them (WhatsApp's ack); the relay then
//! bridges them to the homeserver in order per chat, retrying until the homeserver has
//! the event, and deletes each row only once it is bridged. So a crash, a homeserver
//! outage or a database error delays a message, never loses it.
//!
//! Every hop is idempotent: a redelivered message is committed once (unique by account,
//! chat, sender and network id), and its Matrix event is sent with the network id as
//! transaction id and recorded in `bridge_messages`, so a retried relay makes no second event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::core::{BridgeError, Core};
use crate::db::{Db, now, now_ms};
use crate::lease::held_by;
use crate::network::IncomingMessage;
use crate::queue;

/// Chats relayed at once; within one chat, messages go one at a time, in order.
const PARALLEL_CHATS: usize = 8;
/// Rows read per pass; a longer backlog is read on the next pass.
const PASS_ROWS: i64 = 2_000;
/// Retries of a message the homeserver refuses (not merely cannot take now) before it is
/// set aside with `failed_at`, so one bad message does not hold its chat for ever.
const REFUSALS_BEFORE_FAILED: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error("the inbox could not store the messages: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a message could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The durable hand-over point between a network connector and the bridge.
#[derive(Clone)]
pub struct Inbox {
    db: Db,
    wake: Arc<Notify>,
}

impl Inbox {
    pub fn new(db: Db) -> Self {
        Self { db, wake: Arc::new(Notify::new()) }
    }

    /// Commits `batch`, all or nothing; a message already there is not added again.
    /// Once this returns `Ok`, the network may forget the messages.
    pub async fn commit(&self, batch: &[IncomingMessage]) -> Result<(), InboxError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows =
            batch.iter().map(|m| serde_json::to_string(m).map(|json| (m, json))).collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.db.pool.begin().await?;
        let (created, due) = (now(), now_ms());
        for (message, json) in rows {
            sqlx::query(
                "INSERT INTO bridge_inbox (account_id, chat_id, sender, network_id, message, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (account_id, chat_id, sender, network_id) DO NOTHING",
            )
            .bind(message.account.as_str())
            .bind(message.chat.to_string())
            .bind(message.sender.as_str())
            .bind(&message.id)
            .bind(json)
            .bind(due)
            .bind(created)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Messages committed and not yet bridged (nor set aside as failed).
pub async fn pending(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bridge_inbox WHERE failed_at IS NULL").fetch_one(&db.pool).await
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    account_id: String,
    chat_id: String,
    message: String,
    attempts: i64,
    next_attempt_at: i64,
}

/// The backlog of the devices this process holds: a chat is bridged by one process, so
/// its portal is made once and its order is kept.
async fn backlog(core: &Core) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT seq, account_id, chat_id, message, attempts, next_attempt_at FROM bridge_inbox
         WHERE failed_at IS NULL AND account_id IN ({}) ORDER BY seq LIMIT $1",
        held_by(2)
    )))
    .bind(PASS_ROWS)
    .bind(core.leases.process())
    .bind(now_ms())
    .fetch_all(&core.db.pool)
    .await
}

async fn delete(db: &Db, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM bridge_inbox WHERE seq = $1").bind(seq).execute(&db.pool).await.map(drop)
}

async fn record_failure(db: &Db, row: &Row, error: &BridgeError) -> Result<(), sqlx::Error> {
    let attempts = row.attempts + 1;
    let gave_up = !error.is_transient() && attempts >= REFUSALS_BEFORE_FAILED;
    sqlx::query(
        "UPDATE bridge_inbox SET attempts = $2, next_attempt_at = $3, last_error = $4, failed_at = $5 WHERE seq = $1",
    )
    .bind(row.seq)
    .bind(attempts)
    .bind(now_ms() + queue::backoff_ms(attempts))
    .bind(error.to_string())
    .bind(gave_up.then(now))
    .execute(&db.pool)
    .await
    .map(drop)
}

/// Relays the inbox to Matrix for as long as the process runs: woken by each commit,
/// and every second for retries that have come due.
pub fn spawn_relay(core: Arc<Core>, inbox: Inbox) {
    let busy: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(PARALLEL_CHATS));
    tokio::spawn(async move {
        loop {
            match backlog(&core).await {
                Ok(rows) => {
                    for (chat, rows) in queue::lanes(rows, |row| (row.account_id.clone(), row.chat_id.clone())) {
                        // A chat waits behind its oldest message: order within a chat is kept.
                        if rows[0].next_attempt_at > now_ms()
                            || !busy.lock().unwrap_or_else(|e| e.into_inner()).insert(chat.clone())
                        {
                            continue;
                        }
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        let (core, busy, wake) = (core.clone(), busy.clone(), inbox.wake.clone());
                        tokio::spawn(async move {
                            relay_chat(&core, rows).await;
                            busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&chat);
                            drop(permit);
                            wake.notify_one();
                        });
                    }
                }
                Err(error) => tracing::warn!(error = %error, "cannot read the inbox; retrying"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), inbox.wake.notified()).await;
        }
    });
}

/// Bridges one chat's messages in order, stopping at the first that fails (it is retried
/// with backoff, and the ones after it wait for it).
async fn relay_chat(core: &Core, rows: Vec<Row>) {
    for row in rows {
        let result = match serde_json::from_str::<IncomingMessage>(&row.message) {
            Ok(message) => crate::incoming::bridge_message(core, message).await,
            Err(error) => Err(BridgeError::Invalid(format!("unreadable inbox row: {error}"))),
        };
        let stored = match &result {
            Ok(()) => delete(&core.db, row.seq).await,
            Err(error) => {
                tracing::warn!(seq = row.seq, chat = %row.chat_id, attempts = row.attempts + 1, error = %error,
                    "incoming message not bridged yet; will retry");
                record_failure(&core.db, &row, error).await
            }
        };
        if let Err(error) = stored {
            tracing::warn!(seq = row.seq, error = %error, "cannot update the inbox; the message will be relayed again");
            return;
        }
        if result.is_err() {
            return;
        }
    }
}
