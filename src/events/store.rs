//! The `events` table: one row per (identity, event), numbered without gaps per identity.

use sqlx::AnyConnection;

use super::Cursor;
use crate::db::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub event_id: String,
    pub payload: String,
    pub created_at: i64,
}

/// Appends `payload` to `identity`'s log inside the caller's transaction and returns its
/// sequence number, or `None` when the event is already there (a replayed transaction).
///
/// The number is the identity's last one plus one, read and written through its row in
/// `event_sequences`, which stays locked until the caller commits (PostgreSQL: the row
/// lock of the upsert; SQLite: the one writer, taken by the first statement). So events
/// of one identity become visible in sequence order, without gaps, and a reader paging
/// by cursor never skips one. The sequence never goes back, even when events are pruned.
pub async fn append(
    conn: &mut AnyConnection,
    identity: &str,
    event_id: &str,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO event_sequences (identity, last_seq) VALUES ($1, 0)
         ON CONFLICT (identity) DO UPDATE SET last_seq = event_sequences.last_seq RETURNING last_seq",
    )
    .bind(identity)
    .fetch_one(&mut *conn)
    .await?;
    let seq: Option<i64> = sqlx::query_scalar(
        "INSERT INTO events (identity, seq, event_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (identity, event_id) DO NOTHING RETURNING seq",
    )
    .bind(identity)
    .bind(last + 1)
    .bind(event_id)
    .bind(payload)
    .bind(crate::db::now())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(seq) = seq {
        sqlx::query("UPDATE event_sequences SET last_seq = $2 WHERE identity = $1")
            .bind(identity)
            .bind(seq)
            .execute(&mut *conn)
            .await?;
    }
    Ok(seq)
}

/// Whether any identity's log has the event: a message is delivered to whoever had the
/// device when it came (a device linked again since is another identity's).
/// The payload `identity`'s log holds for `event_id`, if any.
pub async fn payload(db: &Db, identity: &str, event_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT payload FROM events WHERE identity = $1 AND event_id = $2")
        .bind(identity)
        .bind(event_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn logged(db: &Db, event_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE event_id = $1 LIMIT 1")
        .bind(event_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(found.is_some())
}

/// The cursor of `identity`'s newest event ever (`START` before the first).
pub async fn last(db: &Db, identity: &str) -> Result<Cursor, sqlx::Error> {
    let last: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM event_sequences WHERE identity = $1")
        .bind(identity)
        .fetch_optional(&db.pool)
        .await?;
    Ok(last.map_or(Cursor::START, Cursor))
}

/// Up to `limit` events of `identity` after `after`, oldest first.
pub async fn page(db: &Db, identity: &str, after: Cursor, limit: i64) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, event_id, payload, created_at FROM events
         WHERE identity = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(identity)
    .bind(after.0)
    .bind(limit)
    .fetch_all(&db.pool)
    .await
}

/// Deletes events queued before `before` (unix seconds) that no delivery still needs.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM events WHERE created_at < $1 AND NOT EXISTS
         (SELECT 1 FROM webhook_deliveries d WHERE d.identity = events.identity AND d.seq = events.seq)",
    )
    .bind(before)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}
