//! App state sync: sync keys, collection versions and mutation MACs.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::traits::{AppStateSyncKey, AppSyncStore};

use super::{IN_CHUNK, Result, SqlStore, db_error, json_error, to_array};
use crate::db::placeholders;

#[async_trait]
impl AppSyncStore for SqlStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        let key: Option<(Vec<u8>, Vec<u8>, i64)> = self
            .query_as(
                "SELECT key_data, fingerprint, timestamp FROM wa_app_state_keys WHERE device = $1 AND key_id = $2",
            )
            .bind(key_id)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(key.map(|(key_data, fingerprint, timestamp)| AppStateSyncKey { key_data, fingerprint, timestamp }))
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        // `seq` grows with every write, so the latest key is the one set last.
        self.query(
            "INSERT INTO wa_app_state_keys (device, key_id, key_data, fingerprint, timestamp, seq)
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM wa_app_state_keys WHERE device = $1))
             ON CONFLICT (device, key_id) DO UPDATE SET key_data = excluded.key_data,
                 fingerprint = excluded.fingerprint, timestamp = excluded.timestamp, seq = excluded.seq",
        )
        .bind(key_id)
        .bind(key.key_data)
        .bind(key.fingerprint)
        .bind(key.timestamp)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        let key_id: Option<(Vec<u8>,)> = self
            .query_as("SELECT key_id FROM wa_app_state_keys WHERE device = $1 ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(key_id.map(|(key_id,)| key_id))
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        let state: Option<(String,)> = self
            .query_as("SELECT state FROM wa_app_state_versions WHERE device = $1 AND name = $2")
            .bind(name)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        match state {
            Some((state,)) => serde_json::from_str(&state).map_err(json_error),
            None => Ok(HashState::default()),
        }
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        let state = serde_json::to_string(&state).map_err(json_error)?;
        self.query(
            "INSERT INTO wa_app_state_versions (device, name, state) VALUES ($1, $2, $3)
             ON CONFLICT (device, name) DO UPDATE SET state = excluded.state",
        )
        .bind(name)
        .bind(state)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn put_mutation_macs(&self, name: &str, _version: u64, mutations: &[AppStateMutationMAC]) -> Result<()> {
        self.execute_each(
            "INSERT INTO wa_app_state_mutation_macs (device, name, index_mac, value_mac) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device, name, index_mac) DO UPDATE SET value_mac = excluded.value_mac",
            mutations,
            |query, mutation| query.bind(name).bind(mutation.index_mac.as_slice()).bind(mutation.value_mac.as_slice()),
        )
        .await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        let value_mac: Option<(Vec<u8>,)> = self
            .query_as(
                "SELECT value_mac FROM wa_app_state_mutation_macs WHERE device = $1 AND name = $2 AND index_mac = $3",
            )
            .bind(name)
            .bind(index_mac)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(value_mac.map(|(value_mac,)| value_mac))
    }

    async fn get_mutation_macs(&self, name: &str, index_macs: &[[u8; 32]]) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let mut found = HashMap::with_capacity(index_macs.len());
        for chunk in index_macs.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT index_mac, value_mac FROM wa_app_state_mutation_macs
                 WHERE device = $1 AND name = $2 AND index_mac IN ({})",
                placeholders(3, chunk.len())
            );
            let mut query =
                sqlx::query_as::<_, (Vec<u8>, Vec<u8>)>(AssertSqlSafe(sql)).bind(self.device.as_str()).bind(name);
            for index_mac in chunk {
                query = query.bind(index_mac.as_slice());
            }
            for (index_mac, value_mac) in query.fetch_all(&self.db.pool).await.map_err(db_error)? {
                found.insert(to_array("index MAC", index_mac)?, value_mac);
            }
        }
        Ok(found)
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        self.execute_each(
            "DELETE FROM wa_app_state_mutation_macs WHERE device = $1 AND name = $2 AND index_mac = $3",
            index_macs,
            |query, index_mac| query.bind(name).bind(index_mac.as_slice()),
        )
        .await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.query("DELETE FROM wa_app_state_mutation_macs WHERE device = $1 AND name = $2")
            .bind(name)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}
