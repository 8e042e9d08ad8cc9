//! Signal protocol state: identities, sessions, pre-keys, signed pre-keys, sender keys.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::store::traits::SignalStore;

use super::{IN_CHUNK, Result, SqlStore, db_error, to_array, to_u32};
use crate::db::placeholders;

const PUT_IDENTITY: &str = "INSERT INTO wa_identities (device, address, identity_key) VALUES ($1, $2, $3)
     ON CONFLICT (device, address) DO UPDATE SET identity_key = excluded.identity_key";
const PUT_SESSION: &str = "INSERT INTO wa_sessions (device, address, record) VALUES ($1, $2, $3)
     ON CONFLICT (device, address) DO UPDATE SET record = excluded.record";
const PUT_PREKEY: &str = "INSERT INTO wa_prekeys (device, id, record, uploaded) VALUES ($1, $2, $3, $4)
     ON CONFLICT (device, id) DO UPDATE SET record = excluded.record, uploaded = excluded.uploaded";
const PUT_SENDER_KEY: &str = "INSERT INTO wa_sender_keys (device, address, record) VALUES ($1, $2, $3)
     ON CONFLICT (device, address) DO UPDATE SET record = excluded.record";

#[async_trait]
impl SignalStore for SqlStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.query(PUT_IDENTITY).bind(address).bind(key.to_vec()).execute(&self.db.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        self.execute_each(PUT_IDENTITY, identities, |query, (address, key)| {
            query.bind(address.as_ref()).bind(key.as_slice())
        })
        .await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        let key: Option<(Vec<u8>,)> = self
            .query_as("SELECT identity_key FROM wa_identities WHERE device = $1 AND address = $2")
            .bind(address)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        key.map(|(key,)| to_array("identity key", key)).transpose()
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.query("DELETE FROM wa_identities WHERE device = $1 AND address = $2")
            .bind(address)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        let record: Option<(Vec<u8>,)> = self
            .query_as("SELECT record FROM wa_sessions WHERE device = $1 AND address = $2")
            .bind(address)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(record.map(|(record,)| Bytes::from(record)))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.query(PUT_SESSION).bind(address).bind(session).execute(&self.db.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.execute_each(PUT_SESSION, sessions, |query, (address, session)| {
            query.bind(address.as_ref()).bind(session.as_ref())
        })
        .await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.query("DELETE FROM wa_sessions WHERE device = $1 AND address = $2")
            .bind(address)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        let found = self
            .query("SELECT 1 FROM wa_sessions WHERE device = $1 AND address = $2")
            .bind(address)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` (device 0) or `user:device@server`; comparing the
        // prefix exactly avoids LIKE's wildcards and SQLite's case-insensitive LIKE.
        let found = self
            .query(
                "SELECT 1 FROM wa_sessions WHERE device = $1 AND substr(address, 1, length($2)) IN ($2, $3)
                 UNION ALL
                 SELECT 1 FROM wa_identities WHERE device = $1 AND substr(address, 1, length($2)) IN ($2, $3)
                 LIMIT 1",
            )
            .bind(format!("{user}@"))
            .bind(format!("{user}:"))
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.query(PUT_PREKEY)
            .bind(i64::from(id))
            .bind(record)
            .bind(uploaded)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        self.execute_each(PUT_PREKEY, keys, |query, (id, record)| {
            query.bind(i64::from(*id)).bind(record.as_ref()).bind(uploaded)
        })
        .await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        let record: Option<(Vec<u8>,)> = self
            .query_as("SELECT record FROM wa_prekeys WHERE device = $1 AND id = $2")
            .bind(i64::from(id))
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(record.map(|(record,)| Bytes::from(record)))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id, record FROM wa_prekeys WHERE device = $1 AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query_as::<_, (i64, Vec<u8>)>(AssertSqlSafe(sql)).bind(self.device.as_str());
            for id in chunk {
                query = query.bind(i64::from(*id));
            }
            for (id, record) in query.fetch_all(&self.db.pool).await.map_err(db_error)? {
                found.push((to_u32("pre-key id", id)?, Bytes::from(record)));
            }
        }
        Ok(found)
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // An UPDATE, never an upsert: a key consumed since the upload began stays gone.
        self.execute_each("UPDATE wa_prekeys SET uploaded = $3 WHERE device = $1 AND id = $2", ids, |query, id| {
            query.bind(i64::from(*id)).bind(true)
        })
        .await
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.query("DELETE FROM wa_prekeys WHERE device = $1 AND id = $2")
            .bind(i64::from(id))
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let (max,): (Option<i64>,) = self
            .query_as("SELECT MAX(id) FROM wa_prekeys WHERE device = $1")
            .fetch_one(&self.db.pool)
            .await
            .map_err(db_error)?;
        to_u32("pre-key id", max.unwrap_or(0))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.query(
            "INSERT INTO wa_signed_prekeys (device, id, record) VALUES ($1, $2, $3)
             ON CONFLICT (device, id) DO UPDATE SET record = excluded.record",
        )
        .bind(i64::from(id))
        .bind(record)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        let record: Option<(Vec<u8>,)> = self
            .query_as("SELECT record FROM wa_signed_prekeys WHERE device = $1 AND id = $2")
            .bind(i64::from(id))
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(record.map(|(record,)| record))
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        let rows: Vec<(i64, Vec<u8>)> = self
            .query_as("SELECT id, record FROM wa_signed_prekeys WHERE device = $1 ORDER BY id")
            .fetch_all(&self.db.pool)
            .await
            .map_err(db_error)?;
        rows.into_iter().map(|(id, record)| Ok((to_u32("signed pre-key id", id)?, record))).collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.query("DELETE FROM wa_signed_prekeys WHERE device = $1 AND id = $2")
            .bind(i64::from(id))
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.query(PUT_SENDER_KEY).bind(address).bind(record).execute(&self.db.pool).await.map_err(db_error)?;
        Ok(())
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.execute_each(PUT_SENDER_KEY, sender_keys, |query, (address, record)| {
            query.bind(address.as_ref()).bind(record.as_ref())
        })
        .await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        let record: Option<(Vec<u8>,)> = self
            .query_as("SELECT record FROM wa_sender_keys WHERE device = $1 AND address = $2")
            .bind(address)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(record.map(|(record,)| record))
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.query("DELETE FROM wa_sender_keys WHERE device = $1 AND address = $2")
            .bind(address)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
