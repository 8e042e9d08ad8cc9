//! Wake-ups between processes on one PostgreSQL. The process that queues work another
//! process must do says so with `NOTIFY`, and that process's loop wakes at once instead
//! of at its next poll. A notification sent while nobody listens (a listener
//! reconnecting) is lost, which is why every loop woken here also polls. Listeners in the
//! notifying process itself are woken directly, on SQLite too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use crate::db::{Db, Dialect};

/// A send was queued for a device another process may run (`outbox`).
pub const SEND_QUEUED: &str = "mxgate_send_queued";
/// A send finished, sent or failed; the request waiting for it may be elsewhere.
pub const SEND_FINISHED: &str = "mxgate_send_finished";

/// This process's listeners, by channel.
static LOCAL: Mutex<Vec<(&str, Arc<Notify>)>> = Mutex::new(Vec::new());

/// Tells every process listening on `channel` that it has work: this one directly, the
/// others (on PostgreSQL) by `NOTIFY`.
pub async fn notify(db: &Db, channel: &str) {
    for (_, wake) in LOCAL.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(c, _)| *c == channel) {
        wake.notify_waiters();
        wake.notify_one();
    }
    if db.dialect != Dialect::Postgres {
        return;
    }
    if let Err(error) = sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&db.pool).await {
        // The listeners' polling picks the work up.
        tracing::debug!(channel, error = %error, "notification not sent");
    }
}

/// Wakes every waiter of `wake` on each notification of `channel`, for as long as the
/// process runs.
pub fn listen(db: &Db, channel: &'static str, wake: Arc<Notify>) {
    LOCAL.lock().unwrap_or_else(|e| e.into_inner()).push((channel, wake.clone()));
    let Some(url) = db.listen_url.clone() else { return };
    tokio::spawn(async move {
        for attempt in 1_i64.. {
            match PgListener::connect(url.expose()).await {
                Ok(mut listener) => match listener.listen(channel).await {
                    Ok(()) => {
                        // recv reconnects by itself after a lost connection; an error is not
                        // worth more than a fresh listener.
                        while listener.recv().await.is_ok() {
                            wake.notify_waiters();
                            wake.notify_one();
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
