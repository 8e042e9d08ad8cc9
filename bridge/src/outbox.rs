//! The send queue: Matrix → network, exactly once. A portal event from its device's
//! owner is stored with the network message id it will go out under *before* anything is
//! sent, and the homeserver's transaction is answered as soon as it is stored. A sender
//! task per device then sends the queue in order, with the connector's pacing, and records
//! each outcome in the queue's row, where the API reads it. With
//! `MXGATE_MESSAGE_STATUS_EVENTS` on, it also posts the outcome into the room as a
//! `com.beeper.message_send_status` event, for Matrix clients.
//!
//! A replayed transaction finds the event already queued; a restart resumes the queue; a
//! retry re-sends under the same message id, so a recipient keeps one copy. A send that
//! still fails after its retry window (or that the network refuses outright) ends as a
//! FAIL status with the reason.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruma::{RoomId, UserId};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::content::{self, MatrixOutgoing};
use crate::core::{BridgeError, Core};
use crate::db::{Db, Dialect, now, now_ms};
use crate::lease::held_by;
use crate::network::{NetworkMessageId, Outgoing, OutgoingMessage, Structured, Target};
use crate::queue;
use crate::store::{self, MessageRow};
use crate::wake;

/// The status event type mautrix bridges use, for Matrix clients.
pub const SEND_STATUS: &str = "com.beeper.message_send_status";
/// The network's message id, added beside the standard fields.
pub const NETWORK_ID_FIELD: &str = "fi.mxgate.network_message_id";
/// The reason of a failed send that recorded none.
pub const UNSAID_FAILURE: &str = "WhatsApp did not accept the message";

/// How long a send that fails for a passing reason (device disconnected, homeserver
/// unreachable for its file) is retried before it is reported failed.
const RETRY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// Rows read per pass.
const PASS_ROWS: i64 = 2_000;

const QUEUED: &str = "queued";
const SENT: &str = "sent";
const FAILED: &str = "failed";

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    seq: i64,
    event_id: String,
    room_id: String,
    account_id: String,
    chat_id: String,
    sender: String,
    event: String,
    network_id: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
}

const COLUMNS: &str = "seq, event_id, room_id, account_id, chat_id, sender, event, network_id, state, attempts, \
                       next_attempt_at, last_error, created_at";

/// This process's sending lanes, one per device with queued events; and the status
/// reporter's wake-up when a send finished here.
#[derive(Default)]
pub struct Outbox {
    /// Devices whose lane runs, each with whether more was queued since the lane last read
    /// its queue: an enqueue wakes its device's lane alone, not a scan of every queue.
    lanes: Mutex<HashMap<String, bool>>,
    finished: Notify,
}

/// Queues `event` (an `m.room.message`, `m.sticker`, `m.reaction` or `m.room.redaction`
/// in `room`) if it is the portal owner's and not queued yet, and wakes the process that
/// runs the device. Returns once the queue has it. Callable from any process on the
/// database: the API queues its sends here as soon as the homeserver took them, the
/// homeserver's push finds them queued. Whether this call queued it.
pub async fn enqueue(db: &Db, event: &Value, sender: &UserId, room: &RoomId) -> Result<bool, sqlx::Error> {
    let Some(event_id) = event["event_id"].as_str() else { return Ok(false) };
    // What the account wrote on its phone came from the network: it is there already.
    // A deletion for the identity alone stays in Matrix.
    if event["content"][crate::SOURCE_FIELD].is_object() || event["content"][crate::LOCAL_ONLY_FIELD] == true {
        return Ok(false);
    }
    let mut content = event["content"].clone();
    // Room versions before 11 carry a redaction's target beside its content.
    if event["type"] == "m.room.redaction" && content["redacts"].is_null() {
        content["redacts"] = event["redacts"].clone();
    }
    let stored = json!({ "type": event["type"], "content": content }).to_string();
    // One statement: only a portal's owner's event is queued, and only once; the device
    // comes back when this call queued it.
    let queued: Option<String> = sqlx::query_scalar(
        "INSERT INTO bridge_outbox (event_id, room_id, account_id, chat_id, sender, event, network_id, state, attempts,
                                    next_attempt_at, created_at)
         SELECT $1, p.room_id, p.account_id, p.chat_id, $2, $3, $4, $5, 0, $6, $6
         FROM bridge_portals p JOIN bridge_logins l ON l.account_id = p.account_id
         WHERE p.room_id = $7 AND l.owner = $2
         ON CONFLICT (event_id) DO NOTHING
         RETURNING account_id",
    )
    .bind(event_id)
    .bind(sender.as_str())
    .bind(stored)
    .bind(crate::network::random_message_id())
    .bind(QUEUED)
    .bind(now_ms())
    .bind(room.as_str())
    .fetch_optional(&db.pool)
    .await?;
    if let Some(account) = &queued {
        wake::notify(db, wake::SEND_QUEUED, &[account]);
    }
    Ok(queued.is_some())
}

/// Events queued and not yet sent nor failed.
pub async fn queued(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bridge_outbox WHERE state = $1").bind(QUEUED).fetch_one(&db.pool).await
}

/// Finished sends whose status event (`message_status_events`) is not in the room yet.
pub async fn unreported_count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM bridge_outbox WHERE state <> $1 AND reported_at IS NULL")
        .bind(QUEUED)
        .fetch_one(&db.pool)
        .await
}

/// How a finished send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The network took it, under this message id.
    Sent(String),
    /// It will not go out, for this reason.
    Failed(String),
}

/// A finished send and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub room_id: String,
    pub account_id: String,
    pub chat_id: String,
    /// Unix seconds.
    pub finished_at: i64,
}

/// What a finished send's wake-up (`wake::SEND_FINISHED`) says: its event, and the
/// network's message id when it was sent, so a request waiting in any process has its
/// answer without reading the record. A failure's reason is read from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event_id: String,
    pub sent_as: Option<String>,
}

impl Notice {
    fn subject(&self) -> String {
        match &self.sent_as {
            Some(id) => format!("{} {id}", self.event_id),
            None => self.event_id.clone(),
        }
    }

    /// A notice from its subject; neither an event id nor a message id holds a space.
    pub fn parse(subject: &str) -> Self {
        match subject.split_once(' ') {
            Some((event_id, id)) => Self { event_id: event_id.to_owned(), sent_as: Some(id.to_owned()) },
            None => Self { event_id: subject.to_owned(), sent_as: None },
        }
    }
}

/// How the send of `event_id` ended, once it has: the record the API reads, whichever
/// process sent it.
pub async fn finished(db: &Db, event_id: &str) -> Result<Option<Finished>, sqlx::Error> {
    type Record = (String, String, Option<String>, String, String, String, Option<i64>);
    let row: Option<Record> = sqlx::query_as(
        "SELECT state, network_id, last_error, room_id, account_id, chat_id, finished_at
         FROM bridge_outbox WHERE event_id = $1 AND state <> $2",
    )
    .bind(event_id)
    .bind(QUEUED)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|(state, network_id, error, room_id, account_id, chat_id, finished_at)| Finished {
        outcome: match state.as_str() {
            SENT => Outcome::Sent(network_id),
            _ => Outcome::Failed(error.unwrap_or_else(|| UNSAID_FAILURE.into())),
        },
        room_id,
        account_id,
        chat_id,
        finished_at: finished_at.unwrap_or_else(now),
    }))
}

/// `account`'s queued events, if this process holds the device; another process's go out
/// from it.
async fn due(core: &Core, account: &str) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bridge_outbox WHERE state = $1 AND account_id IN ({}) AND account_id = $4
         ORDER BY seq LIMIT $5",
        held_by(2)
    )))
    .bind(QUEUED)
    .bind(core.leases.process())
    .bind(now_ms())
    .bind(account)
    .bind(PASS_ROWS)
    .fetch_all(&core.db.pool)
    .await
}

/// The devices this process holds whose next queued event is due: the lanes to start. A
/// send to be retried later holds the ones queued after it, so only each queue's first
/// event counts.
async fn due_lanes(core: &Core) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT account_id FROM bridge_outbox WHERE next_attempt_at <= $3 AND seq IN (
           SELECT MIN(seq) FROM bridge_outbox WHERE state = $1 AND account_id IN ({}) GROUP BY account_id)",
        held_by(2)
    )))
    .bind(QUEUED)
    .bind(core.leases.process())
    .bind(now_ms())
    .fetch_all(&core.db.pool)
    .await
}

async fn unreported(db: &Db) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM bridge_outbox WHERE state <> $1 AND reported_at IS NULL ORDER BY seq LIMIT $2"
    )))
    .bind(QUEUED)
    .bind(PASS_ROWS)
    .fetch_all(&db.pool)
    .await
}

/// Sends the queue for as long as the process runs: one lane per device with queued
/// events, each in order; started by each enqueue (in any process, on PostgreSQL) for its
/// device, and by a pass over every queue each second, for retries and for devices this
/// process has just taken over.
pub fn spawn_sender(core: Arc<Core>) {
    if core.config.message_status_events {
        spawn_reporter(core.clone());
    }
    // Weak: the listeners live in the database handle, which the core holds.
    let here = Arc::downgrade(&core);
    // A device run here needs no NOTIFY: its lane is started directly.
    let on = move |account: &str| {
        let Some(core) = here.upgrade().filter(|core| account.parse().is_ok_and(|a| core.leases.runs(&a))) else {
            return false;
        };
        start_lane(&core, account);
        true
    };
    wake::listen(&core.db, wake::SEND_QUEUED, Arc::new(on));
    tokio::spawn(async move {
        loop {
            match due_lanes(&core).await {
                Ok(accounts) => accounts.iter().for_each(|account| start_lane(&core, account)),
                Err(error) => tracing::warn!(error = %error, "cannot read the send queue; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Starts `account`'s lane, or tells the running one to read its queue again.
fn start_lane(core: &Arc<Core>, account: &str) {
    {
        let mut lanes = core.outbox.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queued_since) = lanes.get_mut(account) {
            *queued_since = true;
            return;
        }
        lanes.insert(account.to_owned(), false);
    }
    let (core, account) = (core.clone(), account.to_owned());
    tokio::spawn(async move {
        // The lane reads its queue when it starts, and again while a read came back full or
        // something was queued since the last one. It ends when a read found nothing due
        // and nothing was queued since; a drain that stopped (a retry later, a lost lease)
        // ends it too, and the pass each second takes the device up again.
        loop {
            core.outbox.lanes.lock().unwrap_or_else(|e| e.into_inner()).insert(account.clone(), false);
            let read_again = match due(&core, &account).await {
                Ok(rows) if rows.first().is_some_and(|r| r.next_attempt_at <= now_ms()) => {
                    let full = rows.len() as i64 == PASS_ROWS;
                    drain(&core, rows).await.then_some(full)
                }
                Ok(_) => Some(false),
                Err(error) => {
                    tracing::warn!(error = %error, "cannot read the send queue; retrying");
                    None
                }
            };
            let mut lanes = core.outbox.lanes.lock().unwrap_or_else(|e| e.into_inner());
            let queued_since = lanes.get(&account) == Some(&true);
            if !read_again.is_some_and(|full| full || queued_since) {
                lanes.remove(&account);
                return;
            }
        }
    });
}

/// Posts the status event of each finished send, apart from the sending lanes: a lane that
/// waited for its status event's round trip to the homeserver would send at that pace.
fn spawn_reporter(core: Arc<Core>) {
    tokio::spawn(async move {
        loop {
            let finished = core.outbox.finished.notified();
            match unreported(&core.db).await {
                Ok(rows) => {
                    for row in rows {
                        report(&core, &row).await;
                    }
                }
                Err(error) => tracing::warn!(error = %error, "cannot read unreported sends; retrying"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), finished).await;
        }
    });
}

/// How many sends are recorded together at most, and how long the first of them waits for
/// others: recording each alone cost its lane a round trip to the database per send, and
/// under load sends come in bursts (the homeserver answers a room's events in batches).
/// A crash before the record sends them again under the same ids, which recipients drop.
const RECORD_BATCH: usize = 32;
const RECORD_WAIT: Duration = Duration::from_millis(10);

/// How long a lease check stands for the sends after it: shorter than a renewal holds at
/// the shortest lease (two thirds of a second), so the lease cannot have run out since,
/// and a device taken over by a new link elsewhere is noticed at most that much later.
const FENCE: Duration = Duration::from_millis(250);

/// Sends one device's queued events in order; a send that must be retried later holds
/// the ones after it, so the contact sees them in the order they were written. Whether
/// every row finished (the lane may go on).
async fn drain(core: &Core, rows: Vec<Row>) -> bool {
    let mut sent = Unrecorded::default();
    let mut checked: Option<Instant> = None;
    for row in rows {
        let event: Result<Value, _> = serde_json::from_str(&row.event);
        // A reply, reaction, edit or deletion looks up the messages it acts on.
        if !event.as_ref().is_ok_and(stands_alone) && !sent.record(core).await {
            return false;
        }
        if checked.is_none_or(|at| at.elapsed() >= FENCE) {
            // Fencing: a process that stalled past its lease must not send beside the new
            // owner. Left queued, untouched, for the process that holds the device now.
            let held = core.leases.holds(&row.account_id).await.unwrap_or_else(|error| {
                tracing::warn!(error = %error, "cannot check a lease; sending later");
                false
            });
            if !held {
                sent.record(core).await;
                return false;
            }
            checked = Some(Instant::now());
        }
        let outcome = match &event {
            Ok(event) => send(core, &row, event).await,
            Err(error) => Err(BridgeError::Invalid(format!("unreadable queued event: {error}"))),
        };
        match outcome {
            Ok(()) => {
                sent.push(row);
                if sent.full() && !sent.record(core).await {
                    return false;
                }
            }
            Err(error) if error.is_transient() && now_ms() - row.created_at < RETRY_WINDOW_MS => {
                tracing::warn!(event = %row.event_id, attempts = row.attempts + 1, error = %error,
                    "message not sent yet; will retry");
                if sent.record(core).await
                    && let Err(error) = reschedule(&core.db, &row, &error).await
                {
                    tracing::error!(event = %row.event_id, error = %error, "cannot reschedule a send");
                }
                return false;
            }
            Err(error) => {
                tracing::warn!(event = %row.event_id, error = %error, "message not sent to the network");
                if !sent.record(core).await {
                    return false;
                }
                if let Err(error) = mark_failed(core, &row, &error).await {
                    tracing::error!(event = %row.event_id, error = %error, "cannot record a failed send");
                    return false;
                }
                let notice = Notice { event_id: row.event_id, sent_as: None };
                wake_waiters(core, &[notice]);
            }
        }
    }
    sent.record(core).await
}

/// A message that refers to no earlier one: it can go out before those are recorded.
fn stands_alone(event: &Value) -> bool {
    event["type"] == "m.room.message" && event["content"]["m.relates_to"].is_null()
}

/// Sends the network took and the queue has not recorded yet.
#[derive(Default)]
struct Unrecorded {
    rows: Vec<Row>,
    since: Option<Instant>,
}

impl Unrecorded {
    fn push(&mut self, row: Row) {
        self.since.get_or_insert_with(Instant::now);
        self.rows.push(row);
    }

    fn full(&self) -> bool {
        self.rows.len() >= RECORD_BATCH || self.since.is_some_and(|at| at.elapsed() >= RECORD_WAIT)
    }

    /// Records them sent and tells whoever waits; whether that worked. If not, they stay
    /// queued and go out again under the same ids: at most a duplicate the recipient's
    /// client drops, never a loss.
    async fn record(&mut self, core: &Core) -> bool {
        if self.rows.is_empty() {
            return true;
        }
        let rows = std::mem::take(&mut self.rows);
        self.since = None;
        if let Err(error) = mark_sent(core, &rows).await {
            tracing::error!(sends = rows.len(), error = %error, "cannot record sends; they will be retried");
            return false;
        }
        let notices: Vec<Notice> =
            rows.into_iter().map(|row| Notice { event_id: row.event_id, sent_as: Some(row.network_id) }).collect();
        wake_waiters(core, &notices);
        true
    }
}

/// Wakes the requests waiting for these sends, in any process, and the status reporter.
fn wake_waiters(core: &Core, notices: &[Notice]) {
    let subjects: Vec<String> = notices.iter().map(Notice::subject).collect();
    wake::notify(&core.db, wake::SEND_FINISHED, &subjects);
    core.outbox.finished.notify_one();
}

/// Sends `row`, whose queued event is `event`, to the network.
async fn send(core: &Core, row: &Row, event: &Value) -> Result<(), BridgeError> {
    let sender = UserId::parse(&row.sender).map_err(|e| BridgeError::Invalid(e.to_string()))?;
    let outgoing = match content::parse_outgoing(event["type"].as_str().unwrap_or_default(), &event["content"])? {
        MatrixOutgoing::Message(parsed) => {
            let mut structured = parsed.structured;
            let media = match parsed.file {
                Some(file) => {
                    let data = core.matrix.download(&sender, &file.url).await?;
                    // A vCard file from a Matrix client goes as contact cards, as WhatsApp shows them.
                    match content::is_vcard(&file.mime_type).then(|| content::contact_cards(&data)).flatten() {
                        Some(cards) => {
                            structured = Some(Structured::ContactCards { cards });
                            None
                        }
                        None => Some(file.into_media(data)),
                    }
                }
                None => None,
            };
            let reply_to = match &parsed.reply_to {
                Some(replied) => store::message_by_event(&core.db, replied).await?.map(|m| m.network_id),
                None => None,
            };
            let forwarded = parsed.forwarded;
            Outgoing::Message(OutgoingMessage { text: parsed.text, media, reply_to, structured, forwarded })
        }
        MatrixOutgoing::Reaction { target, key } => {
            Outgoing::Reaction { target: bridged(core, &target).await?, emoji: key }
        }
        MatrixOutgoing::Edit { target, text } => Outgoing::Edit { target: own(core, &target).await?.id, text },
        MatrixOutgoing::Redaction { target } => match own_reaction(core, &row.room_id, &target).await? {
            // Taking a reaction back is an empty reaction on the same message.
            Some(reacted) => Outgoing::Reaction { target: bridged(core, &reacted).await?, emoji: String::new() },
            None => Outgoing::Delete { target: own(core, &target).await?.id },
        },
        MatrixOutgoing::PollVote { target, answers } => {
            // WhatsApp votes name the options; MSC3381 gives the poll's answer ids.
            let room = RoomId::parse(&row.room_id).map_err(|e| BridgeError::Invalid(e.to_string()))?;
            let poll = core.matrix.event(&sender, &room, &target).await?;
            let offered = content::poll_answers(&poll);
            let options = answers
                .iter()
                .filter_map(|id| offered.iter().find(|(offered, _)| offered == id).map(|(_, name)| name.clone()))
                .collect();
            Outgoing::PollVote { target: bridged(core, &target).await?, options }
        }
    };
    let (account, chat) = (row.account_id.parse()?, row.chat_id.parse()?);
    let id: &NetworkMessageId = &row.network_id;
    Ok(core.network.send(&account, &chat, id, outgoing).await?)
}

/// The network's message behind `event_id`, bridged either way.
async fn bridged(core: &Core, event_id: &str) -> Result<Target, BridgeError> {
    let message = store::message_by_event(&core.db, event_id).await?;
    let message = message.ok_or_else(|| BridgeError::Invalid(format!("{event_id} is not a bridged message")))?;
    Ok(Target { from_me: message.direction == "out", id: message.network_id })
}

/// [`bridged`], for what only its sender may do (edit, delete for everyone).
async fn own(core: &Core, event_id: &str) -> Result<Target, BridgeError> {
    let target = bridged(core, event_id).await?;
    match target.from_me {
        true => Ok(target),
        false => {
            Err(BridgeError::Invalid(format!("{event_id} was sent by someone else; only its sender can change it")))
        }
    }
}

/// The owner's reaction (`sender`'s, in `room`) on the message `target`, unless taken
/// back since: the event to redact to take it back. Read from the latest of their
/// reactions and redactions there.
pub async fn reaction_on(db: &Db, room: &str, sender: &str, target: &str) -> Result<Option<String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_id, event FROM bridge_outbox WHERE room_id = $1 AND sender = $2 ORDER BY seq DESC LIMIT 500",
    )
    .bind(room)
    .bind(sender)
    .fetch_all(&db.pool)
    .await?;
    let mut redacted = HashSet::new();
    for (event_id, event) in rows {
        let Ok(event) = serde_json::from_str::<Value>(&event) else { continue };
        match content::parse_outgoing(event["type"].as_str().unwrap_or_default(), &event["content"]) {
            Ok(MatrixOutgoing::Redaction { target }) => {
                redacted.insert(target);
            }
            Ok(MatrixOutgoing::Reaction { target: on, .. }) if on == target && !redacted.contains(&event_id) => {
                return Ok(Some(event_id));
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The message a reaction of the owner's (`event_id`, queued here in `room`) is on.
async fn own_reaction(core: &Core, room: &str, event_id: &str) -> Result<Option<String>, BridgeError> {
    let queued: Option<String> =
        sqlx::query_scalar("SELECT event FROM bridge_outbox WHERE event_id = $1 AND room_id = $2")
            .bind(event_id)
            .bind(room)
            .fetch_optional(&core.db.pool)
            .await?;
    let Some(queued) = queued.and_then(|e| serde_json::from_str::<Value>(&e).ok()) else { return Ok(None) };
    Ok(match content::parse_outgoing(queued["type"].as_str().unwrap_or_default(), &queued["content"]) {
        Ok(MatrixOutgoing::Reaction { target, .. }) => Some(target),
        _ => None,
    })
}

/// When a finished send counts as reported: at once when no status event is to be posted.
fn reported_at(core: &Core) -> Option<i64> {
    (!core.config.message_status_events).then(now)
}

/// Records `rows` sent: their queue rows, and the messages the bridge knows by event.
async fn mark_sent(core: &Core, rows: &[Row]) -> Result<(), sqlx::Error> {
    let messages: Vec<MessageRow> = rows
        .iter()
        .map(|row| MessageRow {
            event_id: row.event_id.clone(),
            room_id: row.room_id.clone(),
            account_id: row.account_id.clone(),
            chat_id: row.chat_id.clone(),
            network_id: row.network_id.clone(),
            direction: "out".into(),
            sender: None,
        })
        .collect();
    let update = format!(
        "UPDATE bridge_outbox SET state = $1, attempts = attempts + 1, finished_at = $2, reported_at = $3
         WHERE state = $4 AND seq IN ({})",
        crate::db::placeholders(5, rows.len())
    );
    let bind_update = |sql: String| {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(SENT).bind(now()).bind(reported_at(core)).bind(QUEUED);
        rows.iter().fold(query, |query, row| query.bind(row.seq))
    };
    match core.db.dialect {
        // One statement, one round trip where a transaction takes four: the device's next
        // sends wait for this record.
        Dialect::Postgres => {
            let insert = store::messages_insert(messages.len(), 5 + rows.len());
            let record = bind_update(format!("WITH sent AS ({update}) {insert}"));
            store::bind_messages(record, &messages).execute(&core.db.pool).await.map(drop)
        }
        // SQLite has no UPDATE in a WITH clause; its round trips stay in the process.
        Dialect::Sqlite => {
            let mut tx = core.db.pool.begin().await?;
            bind_update(update).execute(&mut *tx).await?;
            store::insert_messages_in(&mut tx, &messages).await?;
            tx.commit().await
        }
    }
}

async fn reschedule(db: &Db, row: &Row, error: &BridgeError) -> Result<(), sqlx::Error> {
    let attempts = row.attempts + 1;
    sqlx::query("UPDATE bridge_outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE seq = $1")
        .bind(row.seq)
        .bind(attempts)
        .bind(now_ms() + queue::backoff_ms(attempts))
        .bind(error.to_string())
        .execute(&db.pool)
        .await
        .map(drop)
}

async fn mark_failed(core: &Core, row: &Row, error: &BridgeError) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bridge_outbox SET state = $2, attempts = attempts + 1, last_error = $3, finished_at = $4,
                                  reported_at = $5
         WHERE seq = $1",
    )
    .bind(row.seq)
    .bind(FAILED)
    .bind(error.to_string())
    .bind(now())
    .bind(reported_at(core))
    .execute(&core.db.pool)
    .await
    .map(drop)
}

/// Posts the outcome of a finished send as a status event; one the homeserver does not
/// take now is posted again on a later pass (the transaction id makes that a no-op if the
/// first did land).
async fn report(core: &Core, row: &Row) {
    let relates = json!({ "rel_type": "m.reference", "event_id": row.event_id });
    let content = if row.state == SENT {
        json!({ "network": "whatsapp", "m.relates_to": relates, "status": "SUCCESS", NETWORK_ID_FIELD: row.network_id })
    } else {
        json!({
            "network": "whatsapp",
            "m.relates_to": relates,
            "status": "FAIL",
            "reason": "m_foreign_network_error",
            "message": row.last_error.as_deref().unwrap_or(UNSAID_FAILURE),
        })
    };
    let Ok(room) = RoomId::parse(&row.room_id) else { return };
    let txn = format!("status-{}", row.event_id);
    match core.matrix.send_event(&core.bot, &room, SEND_STATUS, &txn, &content).await {
        Ok(_) => {
            let done = sqlx::query("UPDATE bridge_outbox SET reported_at = $2 WHERE seq = $1")
                .bind(row.seq)
                .bind(now())
                .execute(&core.db.pool)
                .await;
            if let Err(error) = done {
                tracing::warn!(event = %row.event_id, error = %error, "send status posted but not recorded");
            }
        }
        Err(error) => tracing::warn!(event = %row.event_id, error = %error, "send status not posted yet; will retry"),
    }
}
