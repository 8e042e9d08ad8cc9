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
}

/// Rendezvous between a send waiting for its status and the appservice receiving it.
#[derive(Default)]
pub struct SendStatuses {
    slots: Mutex<HashMap<String, Slot>>,
}

/// How long an unclaimed status is kept.
const KEEP_UNCLAIMED: Duration = Duration::from_secs(300);

impl SendStatuses {
    pub fn record(&self, event_id: &str, status: SendStatus) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, slot| !matches!(slot, Slot::Arrived(_, at) if at.elapsed() > KEEP_UNCLAIMED));
        match slots.remove(event_id) {
            Some(Slot::Waiting(waiter)) => {
                let _ = waiter.send(status);
            }
            _ => {
                slots.insert(event_id.to_owned(), Slot::Arrived(status, Instant::now()));
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
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(event_id);
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
        statuses.record("$late", sent.clone());
        assert_eq!(waiter.await.unwrap(), Some(sent));
    }
}
