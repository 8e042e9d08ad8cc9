use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

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

/// Rendezvous between a send waiting for its status and the appservice receiving it.
#[derive(Default)]
pub struct SendStatuses {
    slots: Mutex<HashMap<String, Slot>>,
}

/// How long an unclaimed status is kept.
const KEEP_UNCLAIMED: Duration = Duration::from_secs(300);
/// How long a send that answered `pending` is remembered; the bridge reports every send
/// well within it (its retry window is 5 minutes).
const KEEP_ABANDONED: Duration = Duration::from_secs(3600);

impl SendStatuses {
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
    pub async fn wait(&self, event_id: &str, timeout: Duration) -> Option<SendStatus> {
        let receiver = {
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
        let status = tokio::time::timeout(timeout, receiver).await.ok().and_then(Result::ok);
        if status.is_none() {
            self.slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(event_id.to_owned(), Slot::Abandoned(Instant::now()));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_status_reaches_its_waiter_whichever_comes_first() {
        let statuses = SendStatuses::default();
        let sent = SendStatus::Sent { network_message_id: "3EB0".into() };
        statuses.record("$early", sent.clone());
        assert_eq!(statuses.wait("$early", Duration::from_secs(1)).await, Some(sent.clone()));

        let statuses = std::sync::Arc::new(statuses);
        let waiter = {
            let statuses = statuses.clone();
            tokio::spawn(async move { statuses.wait("$late", Duration::from_secs(30)).await })
        };
        while statuses.slots.lock().unwrap().get("$late").is_none() {
            tokio::task::yield_now().await;
        }
        assert_eq!(statuses.record("$late", sent.clone()), Recorded::Waiter);
        assert_eq!(waiter.await.unwrap(), Some(sent.clone()));
    }

    #[tokio::test]
    async fn a_status_after_the_answer_is_for_nobody_waiting() {
        let statuses = SendStatuses::default();
        assert_eq!(statuses.wait("$slow", Duration::ZERO).await, None);
        let failed = SendStatus::Failed { reason: "not on WhatsApp".into() };
        assert_eq!(statuses.record("$slow", failed), Recorded::Nobody);
    }
}
