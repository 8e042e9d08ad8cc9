//! Wake-ups between processes on one PostgreSQL. The process that queues work another
//! process must do says so with `NOTIFY`, and that process's loop wakes at once instead
//! of at its next poll. A notification sent while nobody listens (a listener
//! reconnecting) is lost, which is why every loop woken here also polls. Listeners in the
//! notifying process itself are woken directly, on SQLite too, and not again by their
//! own `NOTIFY`.
//!
//! A notification names what it is about (an event id), so a listener that waits for one
//! thing among many wakes only the waiter concerned: a finished send wakes the request
//! waiting for it, not every request waiting for a send.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::db::{Db, Dialect};

/// A send was queued for a device another process may run (`outbox`).
pub const SEND_QUEUED: &str = "mxgate_send_queued";
/// A send finished, sent or failed, about its event id; the request waiting for it may be
/// elsewhere.
pub const SEND_FINISHED: &str = "mxgate_send_finished";

/// What a listener does with a notification's subject.
pub type OnNotice = Arc<dyn Fn(&str) + Send + Sync>;

/// This process's listeners, by channel.
static LOCAL: Mutex<Vec<(&str, OnNotice)>> = Mutex::new(Vec::new());

/// Marks this process's own notifications, which its listeners have already had.
static PROCESS: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

/// Tells every process listening on `channel` that `subject` has news: this one directly,
/// the others (on PostgreSQL) by `NOTIFY`.
pub async fn notify(db: &Db, channel: &str, subject: &str) {
    let local: Vec<OnNotice> = LOCAL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(c, _)| *c == channel)
        .map(|(_, on)| on.clone())
        .collect();
    for on in local {
        on(subject);
    }
    if db.dialect != Dialect::Postgres {
        return;
    }
    let payload = format!("{}:{subject}", *PROCESS);
    if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&db.pool).await {
        // The listeners' polling picks the work up.
        tracing::debug!(channel, error = %error, "notification not sent");
    }
}

/// Wakes every waiter of `wake` on each notification of `channel`, for as long as the
/// process runs.
pub fn listen(db: &Db, channel: &'static str, wake: Arc<Notify>) {
    listen_with(
        db,
        channel,
        Arc::new(move |_: &str| {
            wake.notify_waiters();
            wake.notify_one();
        }),
    );
}

/// Calls `on` with the subject of each notification of `channel`, for as long as the
/// process runs.
pub fn listen_with(db: &Db, channel: &'static str, on: OnNotice) {
    LOCAL.lock().unwrap_or_else(|e| e.into_inner()).push((channel, on.clone()));
    let Some(url) = db.listen_url.clone() else { return };
    tokio::spawn(async move {
        for attempt in 1_i64.. {
            match PgListener::connect(url.expose()).await {
                Ok(mut listener) => match listener.listen(channel).await {
                    Ok(()) => {
                        // recv reconnects by itself after a lost connection; an error is not
                        // worth more than a fresh listener.
                        while let Ok(notice) = listener.recv().await {
                            let (from, subject) = notice.payload().split_once(':').unwrap_or(("", notice.payload()));
                            if from != PROCESS.as_str() {
                                on(subject);
                            }
                        }
                    }
                    Err(error) => tracing::warn!(channel, error = %error, "cannot listen; polling only"),
                },
                Err(error) => tracing::warn!(channel, error = %error, "cannot connect to listen; polling only"),
            }
            tokio::time::sleep(Duration::from_millis(crate::queue::backoff_ms(attempt) as u64)).await;
        }
    });
}
