//! The `events` table: one row per (identity, event), numbered without gaps per identity.

use sqlx::AnyConnection;

use super::Cursor;
use crate::db::{Db, Dialect};

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
/// The number is `max + 1` for the identity, taken while holding the identity's lock
/// until commit (PostgreSQL: an advisory transaction lock; SQLite: its one writer), so
/// events become visible in sequence order and a reader paging by cursor never skips one.
pub async fn append(
    conn: &mut AnyConnection,
    dialect: Dialect,
    identity: &str,
    event_id: &str,
    payload: &str,
) -> Result<Option<i64>, sqlx::Error> {
    if dialect == Dialect::Postgres {
        sqlx::query_scalar::<_, i32>("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS locked")
            .bind(identity)
            .fetch_one(&mut *conn)
            .await?;
    }
    // One statement on SQLite: it takes the write lock before it reads the maximum.
    sqlx::query_scalar(
        "INSERT INTO events (identity, seq, event_id, payload, created_at)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM events WHERE identity = $1
         ON CONFLICT (identity, event_id) DO NOTHING RETURNING seq",
    )
    .bind(identity)
    .bind(event_id)
    .bind(payload)
    .bind(crate::db::now())
    .fetch_optional(&mut *conn)
    .await
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
