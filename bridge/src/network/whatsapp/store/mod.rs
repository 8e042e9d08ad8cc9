//! whatsapp-rust's storage (wacore's `Backend`) on mxgate's own database.
//!
//! One [`SqlStore`] serves one linked device: every `wa_*` table is keyed by `device`
//! first. Queries are written once for SQLite and PostgreSQL through sqlx's `Any`
//! driver, with `$1` always the device. whatsapp-rust calls the store from several
//! tasks at once, so every write is a single atomic statement (an upsert, or a
//! conditional one) and writes that belong together share a transaction.

mod app_sync;
mod device;
mod msg_secrets;
mod polls;
mod protocol;
mod signal;

pub use polls::StoredPoll;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{Any, AssertSqlSafe, FromRow};
use whatsapp_rust::wacore::store::error::StoreError;

use crate::db::Db;

type Result<T> = std::result::Result<T, StoreError>;

// Bound values are copied into the arguments, so queries borrow nothing.
type AnyQuery = Query<'static, Any, AnyArguments>;
type AnyQueryAs<O> = QueryAs<'static, Any, O, AnyArguments>;

/// Every table holding a device's rows; `delete_device` empties them all.
const TABLES: [&str; 19] = [
    "wa_devices",
    "wa_identities",
    "wa_sessions",
    "wa_prekeys",
    "wa_signed_prekeys",
    "wa_sender_keys",
    "wa_app_state_keys",
    "wa_app_state_versions",
    "wa_app_state_mutation_macs",
    "wa_sender_key_devices",
    "wa_lid_pn_mappings",
    "wa_base_keys",
    "wa_device_lists",
    "wa_group_metadata",
    "wa_tc_tokens",
    "wa_sent_messages",
    "wa_pending_inbound",
    "wa_msg_secrets",
    "wa_polls",
];

/// How many values one `IN (…)` list binds, well under SQLite's parameter limit.
const IN_CHUNK: usize = 500;

/// A stored value that cannot be what wacore expects; the row was written by
/// something other than this store, or damaged.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("{what} is {len} bytes long, expected {expected}")]
    Length { what: &'static str, len: usize, expected: usize },
    #[error("{what} is {value}, outside 0..=u32::MAX")]
    OutOfRange { what: &'static str, value: i64 },
}

/// The store of one linked device, `device` being mxgate's id for it.
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    device: String,
}

impl SqlStore {
    pub fn new(db: Db, device: impl Into<String>) -> Self {
        Self { db, device: device.into() }
    }

    /// Whether the device has been paired with a phone: a stored device record
    /// that knows its phone number. A record without one only holds fresh keys.
    pub async fn is_linked(&self) -> Result<bool> {
        let pn: Option<(Option<String>,)> = self
            .query_as("SELECT pn FROM wa_devices WHERE device = $1")
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(pn.is_some_and(|(pn,)| pn.is_some()))
    }

    /// Forgets everything the device stored, as a logout must: keys, sessions, app
    /// state, all of it, in one transaction.
    pub async fn delete_device(&self) -> Result<()> {
        let mut tx = self.db.pool.begin().await.map_err(db_error)?;
        for table in TABLES {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE device = $1")))
                .bind(self.device.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// A statement with the device bound as `$1`.
    fn query(&self, sql: &'static str) -> AnyQuery {
        sqlx::query(sql).bind(self.device.as_str())
    }

    /// A query for rows of type `O` with the device bound as `$1`.
    fn query_as<O: for<'r> FromRow<'r, AnyRow>>(&self, sql: &'static str) -> AnyQueryAs<O> {
        sqlx::query_as(sql).bind(self.device.clone())
    }

    /// Runs `sql` once per item, all in one transaction.
    async fn execute_each<T: Sync>(
        &self,
        sql: &'static str,
        items: &[T],
        bind: impl Fn(AnyQuery, &T) -> AnyQuery + Send,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.pool.begin().await.map_err(db_error)?;
        for item in items {
            bind(self.query(sql), item).execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}

/// sqlx's error as wacore's: failing to reach the database is a connection error,
/// anything the database said is a database error.
fn db_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Connection(Box::new(error))
        }
        error => StoreError::Database(Box::new(error)),
    }
}

fn json_error(error: serde_json::Error) -> StoreError {
    StoreError::Serialization(Box::new(error))
}

fn row_error(error: RowError) -> StoreError {
    StoreError::Serialization(Box::new(error))
}

/// The columns hold `BIGINT`; wacore's ids are `u32`.
fn to_u32(what: &'static str, value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| row_error(RowError::OutOfRange { what, value }))
}

fn to_array<const N: usize>(what: &'static str, bytes: Vec<u8>) -> Result<[u8; N]> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| row_error(RowError::Length { what, len, expected: N }))
}
