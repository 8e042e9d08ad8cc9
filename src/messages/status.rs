use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mxgate_bridge::outbox::{self, Outcome};
use mxgate_bridge::wake;
use tokio::sync::{Notify, oneshot};

use crate::db::Db;

/// What the bridge reported for one sent event (`com.beeper.message_send_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStatus {
    Sent { network_message_id: String },
    Failed { reason: String },
}

enum Slot {
    Waiting(oneshot::Sender<SendStatus>),
    /// The status came before anyone waited (the homeserver may push it before the
    /// sender's own HTTP call returns).
    Arrived(SendStatus, Instant),
    /// The send answered `pending`: its status, when it comes, goes to the webhooks.
    Abandoned(Instant),
}

/// Who a status reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The request waiting for it, or one about to.
    Waiter,
    /// Nobody: the request already answered `pending`, so the client learns it by webhook.
    Nobody,
}

/// Rendezvous between a send waiting for its status and the appservice receiving it; the
/// send queue's own record is read beside it, so a status pushed to another process, or
/// stranded by the homeserver, still reaches the request.
#[derive(Default)]
pub struct SendStatuses {
    slots: Mutex<HashMap<String, Slot>>,
    /// Woken when a send finishes in any process (on PostgreSQL, see [`SendStatuses::listen`]).
    finished: Arc<Notify>,
}

/// How long an unclaimed status is kept.
const KEEP_UNCLAIMED: Duration = Duration::from_secs(300);
/// How often a waiting send reads the send queue's record.
const POLL: Duration = Duration::from_millis(500);
/// How long a send that answered `pending` is remembered; the bridge reports every send
/// well within it (its retry window is 5 minutes).
const KEEP_ABANDONED: Duration = Duration::from_secs(3600);

impl SendStatuses {
    /// Has waiting sends read the queue's record as soon as any process finishes a send,
    /// rather than at their next poll.
    pub fn listen(&self, db: &Db) {
        wake::listen(db, wake::SEND_FINISHED, self.finished.clone());
    }

    pub fn record(&self, event_id: &str, status: SendStatus) -> Recorded {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, slot| match slot {
            Slot::Arrived(_, at) => at.elapsed() <= KEEP_UNCLAIMED,
            Slot::Abandoned(at) => at.elapsed() <= KEEP_ABANDONED,
            Slot::Waiting(_) => true,
        });
        match slots.remove(event_id) {
            Some(Slot::Waiting(waiter)) => {
                let _ = waiter.send(status);
                Recorded::Waiter
            }
            Some(Slot::Abandoned(_)) => Recorded::Nobody,
            _ => {
                slots.insert(event_id.to_owned(), Slot::Arrived(status, Instant::now()));
                Recorded::Waiter
            }
        }
    }

    /// The status of `event_id`, or `None` when none came within `timeout`.
    pub async fn wait(&self, db: &Db, event_id: &str, timeout: Duration) -> Option<SendStatus> {
        let mut pushed = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.remove(event_id) {
                Some(Slot::Arrived(status, _)) => return Some(status),
                _ => {
                    let (sender, receiver) = oneshot::channel();
                    slots.insert(event_id.to_owned(), Slot::Waiting(sender));
                    receiver
                }
            }
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let status = loop {
            tokio::select! {
                status = &mut pushed => break status.ok(),
                () = self.finished.notified() => {}
                () = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL)) => {}
            }
            match outbox::outcome(db, event_id).await {
                Ok(Some(Outcome::Sent(id))) => break Some(SendStatus::Sent { network_message_id: id }),
                Ok(Some(Outcome::Failed(reason))) => break Some(SendStatus::Failed { reason }),
                Ok(None) => {}
                Err(error) => tracing::warn!(event = event_id, error = %error, "cannot read the send queue"),
            }
            if tokio::time::Instant::now() >= deadline {
                break None;
            }
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            // Found in the queue's record: the push, if it comes, finds no one waiting.
            Some(_) => {
                if matches!(slots.get(event_id), Some(Slot::Waiting(_))) {
                    slots.remove(event_id);
                }
            }
            None => {
                slots.insert(event_id.to_owned(), Slot::Abandoned(Instant::now()));
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    #[tokio::test]
    async fn a_status_reaches_its_waiter_whichever_comes_first() {
        let (db, _dir) = store().await;
        let statuses = SendStatuses::default();
        let sent = SendStatus::Sent { network_message_id: "3EB0".into() };
        statuses.record("$early", sent.clone());
        assert_eq!(statuses.wait(&db, "$early", Duration::from_secs(1)).await, Some(sent.clone()));

        let statuses = std::sync::Arc::new(statuses);
        let waiter = {
            let (statuses, db) = (statuses.clone(), db.clone());
            tokio::spawn(async move { statuses.wait(&db, "$late", Duration::from_secs(30)).await })
        };
        while statuses.slots.lock().unwrap().get("$late").is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(statuses.record("$late", sent.clone()), Recorded::Waiter);
        assert_eq!(waiter.await.unwrap(), Some(sent.clone()));
    }

    #[tokio::test]
    async fn a_status_never_pushed_here_is_read_from_the_send_queue() {
        let (db, _dir) = store().await;
        sqlx::query(
            "INSERT INTO bridge_outbox (event_id, room_id, account_id, chat_id, sender, event, network_id, state,
                                        attempts, next_attempt_at, created_at)
             VALUES ('$elsewhere', '!r:x', '237600000001', '237600000002', '@mt_a:x', '{}', '3EB0AA', 'sent', 1, 0, 0)",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        let statuses = SendStatuses::default();
        let status = statuses.wait(&db, "$elsewhere", Duration::from_secs(30)).await;
        assert_eq!(status, Some(SendStatus::Sent { network_message_id: "3EB0AA".into() }));
        assert!(statuses.slots.lock().unwrap().is_empty(), "no waiter left behind");
    }

    #[tokio::test]
    async fn a_status_after_the_answer_is_for_nobody_waiting() {
        let (db, _dir) = store().await;
        let statuses = SendStatuses::default();
        assert_eq!(statuses.wait(&db, "$slow", Duration::ZERO).await, None);
        let failed = SendStatus::Failed { reason: "not on WhatsApp".into() };
        assert_eq!(statuses.record("$slow", failed), Recorded::Nobody);
    }
}
