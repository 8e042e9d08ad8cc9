use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mxgate_bridge::outbox::{self, Notice, Outcome};
use mxgate_bridge::wake;
use tokio::sync::Notify;

use crate::db::Db;

/// How the bridge's send of one event ended, as the send queue recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStatus {
    Sent { network_message_id: String },
    Failed { reason: String },
}

impl From<Outcome> for SendStatus {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Sent(id) => Self::Sent { network_message_id: id },
            Outcome::Failed(reason) => Self::Failed { reason },
        }
    }
}

/// Sends waiting for their outcome. The outcome is read from the send queue's record,
/// which the process that sent the message wrote, whichever process that was; no room
/// event and no homeserver push is needed for it.
#[derive(Default)]
pub struct SendStatuses {
    /// Woken when a send that a request here gave up waiting for finishes, in this
    /// process or (on PostgreSQL) any other.
    finished: Arc<Notify>,
    /// The sends requests here gave up waiting for, until their late status is queued,
    /// with when: only their end wakes the late-status pass. Woken for every finished
    /// send, the pass read the database once per send in every process that heard of it.
    given_up: Arc<Mutex<HashMap<String, Instant>>>,
    /// The requests waiting, by event id: a finished send wakes its own waiters only, so
    /// a send costs one read of the record however many others are waiting.
    waiting: Arc<Waiting>,
}

#[derive(Default)]
struct Waiting(Mutex<HashMap<String, Vec<Arc<Waiter>>>>);

/// One waiting request: woken when its send finishes, with the message id when it was sent.
#[derive(Default)]
struct Waiter {
    wake: Notify,
    sent_as: Mutex<Option<String>>,
}

impl Waiting {
    /// Wakes the requests waiting for the notice's send; whether there were any.
    fn wake(&self, notice: Notice) -> bool {
        let waiting = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(waiters) = waiting.get(&notice.event_id) else { return false };
        for waiter in waiters {
            if let Some(id) = &notice.sent_as {
                *waiter.sent_as.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
            }
            waiter.wake.notify_one();
        }
        true
    }
}

/// One request's place among the waiting, given up when it stops waiting.
pub struct Place<'a> {
    waiting: &'a Waiting,
    event_id: &'a str,
    waiter: Arc<Waiter>,
}

impl<'a> Place<'a> {
    fn take(waiting: &'a Waiting, event_id: &'a str) -> Self {
        let waiter = Arc::new(Waiter::default());
        waiting
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(event_id.to_owned())
            .or_default()
            .push(waiter.clone());
        Self { waiting, event_id, waiter }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut waiting = self.waiting.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(waiters) = waiting.get_mut(self.event_id) {
            waiters.retain(|w| !Arc::ptr_eq(w, &self.waiter));
            if waiters.is_empty() {
                waiting.remove(self.event_id);
            }
        }
    }
}

/// How often a waiting send reads the record besides its wake-ups: a notification sent
/// while the listener reconnected is lost.
const POLL: Duration = Duration::from_millis(500);

impl SendStatuses {
    /// Has waiting sends read the record as soon as any process finishes their send.
    pub fn listen(&self, db: &Db) {
        let (finished, waiting, given_up) = (self.finished.clone(), self.waiting.clone(), self.given_up.clone());
        // A send whose request waits here needs no NOTIFY: it is woken directly. Another
        // request for the same event elsewhere (a retry with the same key) polls.
        let on = move |subject: &str| {
            let notice = Notice::parse(subject);
            if lock(&given_up).contains_key(&notice.event_id) {
                finished.notify_one();
            }
            waiting.wake(notice)
        };
        wake::listen(db, wake::SEND_FINISHED, Arc::new(on));
    }

    /// Woken when a send given up on here finishes, for the late-status pass.
    pub fn finished(&self) -> Arc<Notify> {
        self.finished.clone()
    }

    /// Notes that the request waiting for `event_id` answered `pending`: its end wakes the
    /// late-status pass.
    pub fn gave_up(&self, event_id: &str) {
        lock(&self.given_up).insert(event_id.to_owned(), Instant::now());
    }

    /// Forgets the sends whose late status is queued, and those followed longer than
    /// `follow` (the pass has stopped following them).
    pub fn reported<'a>(&self, event_ids: impl IntoIterator<Item = &'a str>, follow: Duration) {
        let mut given_up = lock(&self.given_up);
        for event_id in event_ids {
            given_up.remove(event_id);
        }
        given_up.retain(|_, at| at.elapsed() < follow);
    }

    /// Starts following `event_id`'s send: from now on, its end wakes the returned place.
    /// Taken before the send is queued, so no wake-up can come before it.
    pub fn follow<'a>(&'a self, event_id: &'a str) -> Place<'a> {
        Place::take(&self.waiting, event_id)
    }
}

impl Place<'_> {
    /// The outcome of the send, or `None` when it has none within `timeout`.
    pub async fn outcome(&self, db: &Db, timeout: Duration) -> Option<SendStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.read(db).await {
                return Some(status);
            }
            if !self.pause(deadline).await {
                return None;
            }
        }
    }

    /// [`Self::outcome`] of a send queued after it was followed, which cannot have ended
    /// yet: the first read waits for a wake-up (or the poll).
    pub async fn next_outcome(&self, db: &Db, timeout: Duration) -> Option<SendStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        if !self.pause(deadline).await {
            return None;
        }
        self.outcome(db, deadline - tokio::time::Instant::now()).await
    }

    /// The outcome a wake-up brought, else the record's.
    async fn read(&self, db: &Db) -> Option<SendStatus> {
        if let Some(id) = self.waiter.sent_as.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Some(SendStatus::Sent { network_message_id: id });
        }
        match outbox::finished(db, self.event_id).await {
            Ok(finished) => finished.map(|f| f.outcome.into()),
            Err(error) => {
                tracing::warn!(event = self.event_id, error = %error, "cannot read the send queue");
                None
            }
        }
    }

    /// Waits for a wake-up or the next poll; false once `deadline` has passed.
    async fn pause(&self, deadline: tokio::time::Instant) -> bool {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::select! {
            () = self.waiter.wake.notified() => {}
            () = tokio::time::sleep_until(deadline.min(now + POLL)) => {}
        }
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn queue(db: &Db, event_id: &str, state: &str) {
        sqlx::query(
            "INSERT INTO bridge_outbox (event_id, room_id, account_id, chat_id, sender, event, network_id, state,
                                        attempts, next_attempt_at, created_at)
             VALUES ($1, '!r:x', '237600000001', '237600000002', '@mt_a:x', '{}', '3EB0AA', $2, 0, 0, 0)",
        )
        .bind(event_id)
        .bind(state)
        .execute(&db.pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_waiting_send_reads_its_outcome_from_the_send_queue() {
        let (db, _dir) = store().await;
        queue(&db, "$elsewhere", "sent").await;
        let statuses = SendStatuses::default();
        let status = statuses.follow("$elsewhere").outcome(&db, Duration::from_secs(30)).await;
        assert_eq!(status, Some(SendStatus::Sent { network_message_id: "3EB0AA".into() }));
    }

    #[test]
    fn a_finished_send_wakes_its_own_waiters_only() {
        use futures::FutureExt;
        let waiting = Waiting::default();
        let (mine, again, other) =
            (Place::take(&waiting, "$mine"), Place::take(&waiting, "$mine"), Place::take(&waiting, "$other"));
        waiting.wake(Notice::parse("$mine"));
        assert!(mine.waiter.wake.notified().now_or_never().is_some());
        assert!(again.waiter.wake.notified().now_or_never().is_some());
        assert!(other.waiter.wake.notified().now_or_never().is_none());
        drop((mine, again));
        assert_eq!(waiting.0.lock().unwrap().len(), 1, "a request that stopped waiting leaves no place behind");
    }

    #[tokio::test]
    async fn only_the_end_of_a_send_given_up_on_wakes_the_late_pass() {
        use futures::FutureExt;
        let (db, _dir) = store().await;
        let statuses = SendStatuses::default();
        statuses.listen(&db);
        let late_pass = statuses.finished();
        statuses.gave_up("$late");
        wake::notify(&db, wake::SEND_FINISHED, &["$answered 3EB0CC"]);
        assert!(late_pass.notified().now_or_never().is_none(), "a send answered in time is not the pass's");
        wake::notify(&db, wake::SEND_FINISHED, &["$late 3EB0DD"]);
        assert!(late_pass.notified().now_or_never().is_some());
        statuses.reported(["$late"], Duration::from_secs(3600));
        wake::notify(&db, wake::SEND_FINISHED, &["$late 3EB0DD"]);
        assert!(late_pass.notified().now_or_never().is_none(), "a reported send is forgotten");
    }

    #[tokio::test]
    async fn a_send_still_queued_has_no_outcome() {
        let (db, _dir) = store().await;
        queue(&db, "$slow", "queued").await;
        let statuses = SendStatuses::default();
        assert_eq!(statuses.follow("$slow").outcome(&db, Duration::ZERO).await, None);
    }

    #[tokio::test]
    async fn a_wake_up_brings_the_message_id_of_a_sent_send() {
        // Still queued in the record: the answer can only have come with the wake-up.
        let (db, _dir) = store().await;
        queue(&db, "$fast", "queued").await;
        let statuses = SendStatuses::default();
        let place = statuses.follow("$fast");
        statuses.waiting.wake(Notice::parse("$fast 3EB0BB"));
        let status = place.next_outcome(&db, Duration::from_secs(30)).await;
        assert_eq!(status, Some(SendStatus::Sent { network_message_id: "3EB0BB".into() }));
    }
}
