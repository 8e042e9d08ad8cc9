//! Wake-ups between processes on one PostgreSQL. The process that queues work another
//! process must do says so with `NOTIFY`, and that process's loop wakes at once instead
//! of at its next poll. A notification sent while nobody listens (a listener
//! reconnecting) is lost, which is why every loop woken here also polls. Listeners in the
//! notifying process itself are woken directly, on SQLite too, and not again by their
//! own `NOTIFY`; what only this process handles (a send for a device it runs) is not sent
//! to the others at all.
//!
//! A notification names what it is about (an event id, say), so a listener that waits for
//! one thing among many wakes only the waiter concerned: a finished send wakes the request
//! waiting for it, not every request waiting for a send. Several subjects go in one
//! `NOTIFY`, so a batch of finished sends costs one round trip.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::db::{Db, Dialect};
use crate::secret::Secret;

/// A send was queued for a device another process may run (`outbox`).
pub const SEND_QUEUED: &str = "mxgate_send_queued";
/// A send finished, sent or failed, about its event id; the request waiting for it may be
/// elsewhere.
pub const SEND_FINISHED: &str = "mxgate_send_finished";

/// What a listener does with a notification's subject. It answers whether the subject
/// was this process's alone (a device it runs, a send a request here waits for): when it
/// was, a notification from this process is not sent to the others.
pub type OnNotice = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// One of this process's listeners.
struct Local {
    channel: &'static str,
    on: OnNotice,
}

/// This process's listeners on one database, held by its [`Db`]: the ones notified
/// directly, and on PostgreSQL the ones the listening task hands the other processes'
/// notifications to, told of every listener added.
pub struct Listeners {
    local: watch::Sender<Vec<Local>>,
    /// PostgreSQL's URL, for the listening task's connection; it may hold a password.
    url: Option<Secret>,
    /// Held while the listening task is started, so that only one is.
    starting: Mutex<()>,
}

impl Listeners {
    /// Listeners on the database at `url` if it is PostgreSQL's; local ones only if not.
    pub(crate) fn new(url: Option<Secret>) -> Self {
        Self { local: watch::Sender::new(Vec::new()), url, starting: Mutex::default() }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("count", &self.local.borrow().len()).finish()
    }
}

/// What the listeners of `channel` among `local` do.
fn of(local: &[Local], channel: &str) -> Vec<OnNotice> {
    local.iter().filter(|l| l.channel == channel).map(|l| l.on.clone()).collect()
}

/// Marks this process's own notifications, which its listeners have already had.
static PROCESS: LazyLock<String> = LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string());

/// Tells every process listening on `channel` that each of `subjects` has news: this one
/// directly, before returning; the others (on PostgreSQL) by `NOTIFY`, in the background,
/// so the caller does not wait for a round trip its own work does not need. A subject
/// holds no newline.
pub fn notify<S: AsRef<str>>(db: &Db, channel: &'static str, subjects: &[S]) {
    let on = of(&db.listeners.local.borrow(), channel);
    let mut elsewhere: Vec<&str> = Vec::new();
    for subject in subjects.iter().map(AsRef::as_ref) {
        // Every local listener hears every subject, whether or not another one owns it.
        let mut owned = false;
        for on in &on {
            owned |= on(subject);
        }
        if !owned {
            elsewhere.push(subject);
        }
    }
    if db.dialect != Dialect::Postgres || elsewhere.is_empty() {
        return;
    }
    let (db, payloads) = (db.clone(), payloads(&elsewhere));
    tokio::spawn(async move {
        for payload in payloads {
            let sent = sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&db.pool).await;
            if let Err(error) = sent {
                // The listeners' polling picks the work up.
                tracing::debug!(channel, error = %error, "notification not sent");
            }
        }
    });
}

/// PostgreSQL refuses a payload of 8,000 bytes or more.
const PAYLOAD_BYTES: usize = 7_000;

/// `subjects` as few payloads as fit, each `<process>:<subject>\n<subject>…`.
fn payloads<S: AsRef<str>>(subjects: &[S]) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    for subject in subjects.iter().map(AsRef::as_ref) {
        match payloads.last_mut() {
            Some(payload) if payload.len() + 1 + subject.len() <= PAYLOAD_BYTES => {
                payload.push('\n');
                payload.push_str(subject);
            }
            _ => payloads.push(format!("{}:{subject}", *PROCESS)),
        }
    }
    payloads
}

/// Calls `on` with the subject of each notification of `channel` on `db`, for as long as
/// the process runs. On PostgreSQL, one connection per process and database listens on
/// every channel: PostgreSQL wakes each listening backend of the database for every
/// `NOTIFY`, whatever its channel, so a connection per channel made each notification wake
/// twice as many.
pub fn listen(db: &Db, channel: &'static str, on: OnNotice) {
    let listeners = &db.listeners;
    listeners.local.send_modify(|local| local.push(Local { channel, on }));
    let Some(url) = listeners.url.clone() else { return };
    let _starting = listeners.starting.lock().unwrap_or_else(|e| e.into_inner());
    // Started with the first listener; again if the runtime it ran on ended (a test's).
    if listeners.local.receiver_count() == 0 {
        tokio::spawn(receive(url, listeners.local.subscribe()));
    }
}

/// Hands each notification to the listeners of its channel, for as long as the process
/// runs; listens again, with every channel, when a listener is added (at start-up).
async fn receive(url: Secret, mut listeners: watch::Receiver<Vec<Local>>) {
    let mut failures = 0;
    loop {
        let mut channels: Vec<&'static str> = listeners.borrow_and_update().iter().map(|l| l.channel).collect();
        channels.sort_unstable();
        channels.dedup();
        let listening = match PgListener::connect(url.expose()).await {
            Ok(mut listener) => listener.listen_all(channels).await.map(|()| listener),
            Err(error) => Err(error),
        };
        let stopped = match listening {
            Ok(listener) => {
                failures = 0;
                hand_over(listener, &mut listeners).await
            }
            Err(error) => Stopped::Failed(error),
        };
        match stopped {
            Stopped::Added => {}
            Stopped::Failed(error) => {
                tracing::warn!(error = %error, "cannot listen for other processes' notifications; polling only");
                failures += 1;
                tokio::time::sleep(Duration::from_millis(crate::queue::backoff_ms(failures) as u64)).await;
            }
            Stopped::Closed => return,
        }
    }
}

/// Why a listening connection was given up.
enum Stopped {
    /// A listener was added, perhaps on a channel not listened to yet.
    Added,
    /// The connection failed; `recv` reconnects by itself after a lost connection, so an
    /// error is not worth more than a fresh connection.
    Failed(sqlx::Error),
    /// The registry is gone.
    Closed,
}

async fn hand_over(mut listener: PgListener, listeners: &mut watch::Receiver<Vec<Local>>) -> Stopped {
    loop {
        // The connection is dropped with a read cut short, never read from again.
        let notice = tokio::select! {
            added = listeners.changed() => return if added.is_ok() { Stopped::Added } else { Stopped::Closed },
            notice = listener.recv() => notice,
        };
        let notice = match notice {
            Ok(notice) => notice,
            Err(error) => return Stopped::Failed(error),
        };
        let (from, subjects) = notice.payload().split_once(':').unwrap_or(("", notice.payload()));
        if from == PROCESS.as_str() {
            continue;
        }
        let on = of(&listeners.borrow(), notice.channel());
        for subject in subjects.split('\n') {
            for on in &on {
                on(subject);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On PostgreSQL only (the PostgreSQL pass of `make test` runs it): SQLite has no
    /// other process to hear from.
    #[tokio::test]
    async fn one_connection_hears_each_channel_from_other_processes_only() {
        let Ok(server) = std::env::var("MXGATE_TEST_POSTGRES") else { return };
        let db = Db::connect(&server).await.unwrap();
        let heard: Arc<Mutex<Vec<(&'static str, String)>>> = Arc::default();
        let channels = ["mxgate_test_wake_a", "mxgate_test_wake_b"];
        for channel in channels {
            let heard = heard.clone();
            let on = move |subject: &str| {
                heard.lock().unwrap().push((channel, subject.to_owned()));
                false
            };
            listen(&db, channel, Arc::new(on));
        }
        let say = |channel: &'static str, payload: String| {
            sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&db.pool)
        };
        // Each round: this process's own notification, then another process's on both
        // channels, each subject numbered by its round.
        let round = |n: usize| async move {
            say(channels[0], format!("{}:mine{n}", *PROCESS)).await.unwrap();
            say(channels[0], format!("other:one{n}\ntwo{n}")).await.unwrap();
            say(channels[1], format!("other:last{n}")).await.unwrap();
        };
        let heard_all = |n: usize| {
            let heard = heard.lock().unwrap();
            [(channels[0], format!("one{n}")), (channels[0], format!("two{n}")), (channels[1], format!("last{n}"))]
                .iter()
                .all(|h| heard.contains(h))
        };
        // What is said before the connection listens is lost (and it listens again once
        // the second listener is added), so rounds go until one is heard whole...
        let mut n = 0;
        while !heard_all(n) {
            n += 1;
            assert!(n < 600, "no round heard whole: {:?}", heard.lock().unwrap());
            round(n).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // ...then one more, to a connection known to listen on both channels: it is heard
        // in the order said, so once its last subject is in, its own notification has
        // been passed over.
        n += 1;
        round(n).await;
        for _ in 0..600 {
            if heard_all(n) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(heard_all(n), "{:?}", heard.lock().unwrap());
        let heard = heard.lock().unwrap().clone();
        assert!(
            heard.iter().all(|(channel, subject)| match *channel {
                c if c == channels[0] => subject.starts_with("one") || subject.starts_with("two"),
                _ => subject.starts_with("last"),
            }),
            "a notification heard on the wrong channel, or this process's own: {heard:?}"
        );
    }

    #[test]
    fn many_subjects_share_a_payload_until_it_is_full() {
        let subjects: Vec<String> = (0..1_000).map(|n| format!("$event{n:04}:mxgate.test")).collect();
        let payloads = payloads(&subjects);
        assert!(payloads.len() > 1 && payloads.len() < 10, "{} payloads", payloads.len());
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_BYTES));
        let carried: Vec<&str> = payloads.iter().flat_map(|p| p.split_once(':').unwrap().1.split('\n')).collect();
        assert_eq!(carried, subjects.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
