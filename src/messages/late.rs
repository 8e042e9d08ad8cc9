//! Sends that answered `pending` learn their outcome by webhook. The request remembers
//! its event in `pending_sends`; once the send queue records how the send ended, any
//! process queues a `message.status` event for the identity's webhooks and forgets it.
//! Both steps are idempotent (the event log keys the status by the sent event), so two
//! processes doing the same pass queue one delivery.

use std::time::Duration;

use mxgate_bridge::outbox;
use mxgate_bridge::store as bridge_store;
use serde_json::json;

use super::SendStatus;
use crate::db::Db;
use crate::state::AppState;
use crate::webhooks::catalogue::EventType;
use crate::webhooks::delivery::{self, Event};

/// How often the pass runs besides its wake-ups.
const PASS: Duration = Duration::from_secs(2);
/// How long a send is followed: the bridge ends every send within its retry window (5
/// minutes), so one still unknown after this never reached the send queue.
const FOLLOW_SECS: i64 = 3600;
const PAGE: i64 = 500;

/// The key of a send's late status in the event log, and the `id` of its payload.
pub fn status_id(event_id: &str) -> String {
    format!("send-status:{event_id}")
}

/// Follows `event_id`, sent by `identity`, until it ends; its end wakes this process's
/// pass.
pub async fn remember(state: &AppState, identity: &str, event_id: &str) -> Result<(), sqlx::Error> {
    state.send_statuses.gave_up(event_id);
    sqlx::query(
        "INSERT INTO pending_sends (event_id, identity, created_at) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(identity)
    .bind(crate::db::now())
    .execute(&state.db.pool)
    .await
    .map(drop)
}

pub fn spawn(state: AppState) {
    let finished = state.send_statuses.finished();
    tokio::spawn(async move {
        loop {
            let woken = finished.notified();
            match pass(&state).await {
                Ok(0) => {}
                Ok(_) => state.deliveries.notify_one(),
                Err(error) => tracing::warn!(error = %error, "cannot report late send statuses; next pass retries"),
            }
            let _ = tokio::time::timeout(PASS, woken).await;
        }
    });
}

/// The oldest followed sends, at most a page.
async fn followed(db: &Db) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT event_id, identity FROM pending_sends ORDER BY created_at LIMIT $1")
        .bind(PAGE)
        .fetch_all(&db.pool)
        .await
}

/// Followed sends that have ended, their status not queued yet (counted within a page).
pub async fn due(db: &Db) -> Result<i64, sqlx::Error> {
    let mut due = 0;
    for (event_id, _) in followed(db).await? {
        if outbox::finished(db, &event_id).await?.is_some() {
            due += 1;
        }
    }
    Ok(due)
}

/// Queues the status of every followed send that has ended; returns how many.
async fn pass(state: &AppState) -> Result<usize, sqlx::Error> {
    let db = &state.db;
    sqlx::query("DELETE FROM pending_sends WHERE created_at < $1")
        .bind(crate::db::now() - FOLLOW_SECS)
        .execute(&db.pool)
        .await?;
    let mut queued = Vec::new();
    for (event_id, identity) in followed(db).await? {
        let Some(finished) = outbox::finished(db, &event_id).await? else { continue };
        let is_direct = bridge_store::portal_by_room(db, &finished.room_id).await?.is_some_and(|p| p.is_direct);
        let (status, message_id, error) = match SendStatus::from(finished.outcome) {
            SendStatus::Sent { network_message_id } => ("sent", Some(network_message_id), None),
            SendStatus::Failed { reason } => ("failed", None, Some(reason)),
        };
        let id = status_id(&event_id);
        let payload = json!({
            "id": id,
            "type": "message.status",
            "status": status,
            "event_id": event_id,
            "message_id": message_id,
            "error": error,
            "to": identity,
            "device_id": finished.account_id,
            "is_contact": is_direct,
            "chat_id": finished.chat_id,
            "timestamp": finished.finished_at * 1000,
        });
        let event = Event { identity: &identity, event_id: &id, kind: EventType::MessageStatus, payload };
        delivery::enqueue(db, event).await?;
        sqlx::query("DELETE FROM pending_sends WHERE event_id = $1").bind(&event_id).execute(&db.pool).await?;
        queued.push(event_id);
    }
    state.send_statuses.reported(queued.iter().map(String::as_str), Duration::from_secs(FOLLOW_SECS as u64));
    Ok(queued.len())
}
