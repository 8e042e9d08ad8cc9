//! WhatsApp Web's protocol bookkeeping: sender-key distribution, LID <-> phone
//! mappings, retry base keys, contacts' device lists, group metadata, trusted-contact
//! tokens, sent messages kept for retries and the pending inbound buffer.

use async_trait::async_trait;
use whatsapp_rust::wacore::store::traits::{
    DeviceInfo, DeviceListRecord, LidPnMappingEntry, PendingInboundKey, PendingInboundRow, ProtocolStore, TcTokenEntry,
};

use super::{Result, SqlStore, db_error, json_error, to_u32};
use crate::db::{Flag, now};

const PUT_LID_MAPPING: &str =
    "INSERT INTO wa_lid_pn_mappings (device, lid, phone_number, created_at, updated_at, learning_source)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (device, lid) DO UPDATE SET phone_number = excluded.phone_number,
         updated_at = excluded.updated_at, learning_source = excluded.learning_source";
const PUT_DEVICE_LIST: &str =
    "INSERT INTO wa_device_lists (device, user_id, devices, timestamp, phash, raw_id) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (device, user_id) DO UPDATE SET devices = excluded.devices, timestamp = excluded.timestamp,
         phash = excluded.phash, raw_id = excluded.raw_id";
const PUT_PENDING_INBOUND: &str =
    "INSERT INTO wa_pending_inbound (device, chat, sender, id, message, inserted_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (device, chat, sender, id) DO UPDATE SET message = excluded.message, inserted_at = excluded.inserted_at";
const DELETE_PENDING_INBOUND: &str =
    "DELETE FROM wa_pending_inbound WHERE device = $1 AND chat = $2 AND sender = $3 AND id = $4";

/// A query for whole LID mappings, `$1` being the device.
macro_rules! select_lid_mappings {
    ($rest:literal) => {
        concat!(
            "SELECT lid, phone_number, created_at, updated_at, learning_source FROM wa_lid_pn_mappings WHERE device = $1 ",
            $rest
        )
    };
}

type LidMappingRow = (String, String, i64, i64, String);

fn lid_mapping((lid, phone_number, created_at, updated_at, learning_source): LidMappingRow) -> LidPnMappingEntry {
    LidPnMappingEntry { lid, phone_number, created_at, updated_at, learning_source }
}

/// A device list with its devices already serialised, ready to bind.
struct DeviceListRow {
    user: String,
    devices: String,
    timestamp: i64,
    phash: Option<String>,
    raw_id: Option<i64>,
}

impl TryFrom<DeviceListRecord> for DeviceListRow {
    type Error = serde_json::Error;

    fn try_from(record: DeviceListRecord) -> std::result::Result<Self, Self::Error> {
        Ok(Self {
            devices: serde_json::to_string(&record.devices)?,
            user: record.user,
            timestamp: record.timestamp,
            phash: record.phash,
            raw_id: record.raw_id.map(i64::from),
        })
    }
}

#[async_trait]
impl ProtocolStore for SqlStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let rows: Vec<(String, Flag)> = self
            .query_as(
                "SELECT device_jid, has_key FROM wa_sender_key_devices WHERE device = $1 AND group_jid = $2
                 ORDER BY device_jid",
            )
            .bind(group_jid)
            .fetch_all(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(rows.into_iter().map(|(device_jid, has_key)| (device_jid, has_key.into())).collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        self.execute_each(
            "INSERT INTO wa_sender_key_devices (device, group_jid, device_jid, has_key) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device, group_jid, device_jid) DO UPDATE SET has_key = excluded.has_key",
            entries,
            |query, (device_jid, has_key)| query.bind(group_jid).bind(*device_jid).bind(*has_key),
        )
        .await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.query("DELETE FROM wa_sender_key_devices WHERE device = $1 AND group_jid = $2")
            .bind(group_jid)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        self.execute_each(
            "DELETE FROM wa_sender_key_devices WHERE device = $1 AND device_jid = $2",
            device_jids,
            |query, device_jid| query.bind(*device_jid),
        )
        .await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.query("DELETE FROM wa_sender_key_devices WHERE device = $1")
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        let sql = select_lid_mappings!("AND lid = $2");
        let row: Option<LidMappingRow> =
            self.query_as(sql).bind(lid).fetch_optional(&self.db.pool).await.map_err(db_error)?;
        Ok(row.map(lid_mapping))
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        // A phone number can have had several LIDs; the freshest mapping is current.
        let sql = select_lid_mappings!("AND phone_number = $2 ORDER BY updated_at DESC LIMIT 1");
        let row: Option<LidMappingRow> =
            self.query_as(sql).bind(phone).fetch_optional(&self.db.pool).await.map_err(db_error)?;
        Ok(row.map(lid_mapping))
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        // `created_at` is when the mapping was first learned, so an update keeps it.
        self.execute_each(PUT_LID_MAPPING, entries, |query, entry| {
            query
                .bind(entry.lid.as_str())
                .bind(entry.phone_number.as_str())
                .bind(entry.created_at)
                .bind(entry.updated_at)
                .bind(entry.learning_source.as_str())
        })
        .await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        let sql = select_lid_mappings!("ORDER BY lid");
        let rows: Vec<LidMappingRow> = self.query_as(sql).fetch_all(&self.db.pool).await.map_err(db_error)?;
        Ok(rows.into_iter().map(lid_mapping).collect())
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.query(
            "INSERT INTO wa_base_keys (device, address, message_id, base_key) VALUES ($1, $2, $3, $4)
             ON CONFLICT (device, address, message_id) DO UPDATE SET base_key = excluded.base_key",
        )
        .bind(address)
        .bind(message_id)
        .bind(base_key)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn has_same_base_key(&self, address: &str, message_id: &str, current_base_key: &[u8]) -> Result<bool> {
        let stored: Option<(Vec<u8>,)> = self
            .query_as("SELECT base_key FROM wa_base_keys WHERE device = $1 AND address = $2 AND message_id = $3")
            .bind(address)
            .bind(message_id)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(stored.is_some_and(|(stored,)| stored == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.query("DELETE FROM wa_base_keys WHERE device = $1 AND address = $2 AND message_id = $3")
            .bind(address)
            .bind(message_id)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let rows = records
            .into_iter()
            .map(DeviceListRow::try_from)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(json_error)?;
        self.execute_each(PUT_DEVICE_LIST, &rows, |query, row| {
            query
                .bind(row.user.as_str())
                .bind(row.devices.as_str())
                .bind(row.timestamp)
                .bind(row.phash.as_deref())
                .bind(row.raw_id)
        })
        .await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        let row: Option<(String, String, i64, Option<String>, Option<i64>)> = self
            .query_as(
                "SELECT user_id, devices, timestamp, phash, raw_id FROM wa_device_lists WHERE device = $1 AND user_id = $2",
            )
            .bind(user)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        let Some((user, devices, timestamp, phash, raw_id)) = row else {
            return Ok(None);
        };
        let devices: Vec<DeviceInfo> = serde_json::from_str(&devices).map_err(json_error)?;
        let raw_id = raw_id.map(|raw_id| to_u32("device list raw_id", raw_id)).transpose()?;
        Ok(Some(DeviceListRecord { user, devices, timestamp, phash, raw_id }))
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.query("DELETE FROM wa_device_lists WHERE device = $1 AND user_id = $2")
            .bind(user)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        let metadata: Option<(Vec<u8>,)> = self
            .query_as("SELECT metadata FROM wa_group_metadata WHERE device = $1 AND group_jid = $2")
            .bind(group_jid)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(metadata.map(|(metadata,)| metadata))
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.query(
            "INSERT INTO wa_group_metadata (device, group_jid, metadata) VALUES ($1, $2, $3)
             ON CONFLICT (device, group_jid) DO UPDATE SET metadata = excluded.metadata",
        )
        .bind(group_jid)
        .bind(blob)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.query("DELETE FROM wa_group_metadata WHERE device = $1 AND group_jid = $2")
            .bind(group_jid)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        let row: Option<(Vec<u8>, i64, Option<i64>)> = self
            .query_as(
                "SELECT token, token_timestamp, sender_timestamp FROM wa_tc_tokens WHERE device = $1 AND jid = $2",
            )
            .bind(jid)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(row.map(|(token, token_timestamp, sender_timestamp)| TcTokenEntry {
            token,
            token_timestamp,
            sender_timestamp,
        }))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.query(
            "INSERT INTO wa_tc_tokens (device, jid, token, token_timestamp, sender_timestamp) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device, jid) DO UPDATE SET token = excluded.token,
                 token_timestamp = excluded.token_timestamp, sender_timestamp = excluded.sender_timestamp",
        )
        .bind(jid)
        .bind(entry.token.as_slice())
        .bind(entry.token_timestamp)
        .bind(entry.sender_timestamp)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.query("DELETE FROM wa_tc_tokens WHERE device = $1 AND jid = $2")
            .bind(jid)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        let jids: Vec<(String,)> = self
            .query_as("SELECT jid FROM wa_tc_tokens WHERE device = $1 ORDER BY jid")
            .fetch_all(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(jids.into_iter().map(|(jid,)| jid).collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Only rows where both the received token and the sender bucket are stale.
        let done = self
            .query(
                "DELETE FROM wa_tc_tokens WHERE device = $1
                 AND (length(token) = 0 OR token_timestamp < $2)
                 AND (sender_timestamp IS NULL OR sender_timestamp < $3)",
            )
            .bind(token_cutoff)
            .bind(sender_cutoff)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(saturating_u32(done.rows_affected()))
    }

    async fn touch_tc_token_sender_timestamp(&self, jid: &str, sender_timestamp: i64) -> Result<()> {
        // One statement, so a token stored concurrently is never replaced by the
        // placeholder, and the sender bucket only ever moves forward.
        self.query(
            "INSERT INTO wa_tc_tokens (device, jid, token, token_timestamp, sender_timestamp) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (device, jid) DO UPDATE SET sender_timestamp = CASE
                 WHEN wa_tc_tokens.sender_timestamp IS NULL OR wa_tc_tokens.sender_timestamp < excluded.sender_timestamp
                 THEN excluded.sender_timestamp ELSE wa_tc_tokens.sender_timestamp END",
        )
        .bind(jid)
        .bind(&[] as &[u8])
        .bind(sender_timestamp)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn store_received_tc_token(&self, jid: &str, token: &[u8], token_timestamp: i64) -> Result<()> {
        // Newer wins, atomically: a stale token never replaces a fresher real one, a
        // placeholder always gives way, and the sender bucket is left as it is.
        self.query(
            "INSERT INTO wa_tc_tokens (device, jid, token, token_timestamp, sender_timestamp) VALUES ($1, $2, $3, $4, NULL)
             ON CONFLICT (device, jid) DO UPDATE SET token = excluded.token, token_timestamp = excluded.token_timestamp
             WHERE length(wa_tc_tokens.token) = 0 OR excluded.token_timestamp >= wa_tc_tokens.token_timestamp",
        )
        .bind(jid)
        .bind(token)
        .bind(token_timestamp)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> Result<()> {
        self.query(
            "INSERT INTO wa_sent_messages (device, chat_jid, message_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device, chat_jid, message_id) DO UPDATE SET payload = excluded.payload,
                 created_at = excluded.created_at",
        )
        .bind(chat_jid)
        .bind(message_id)
        .bind(payload)
        .bind(now())
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        // DELETE … RETURNING takes the row atomically, so a retry receipt handled twice
        // at once resends the message only once.
        let payload: Option<(Vec<u8>,)> = self
            .query_as(
                "DELETE FROM wa_sent_messages WHERE device = $1 AND chat_jid = $2 AND message_id = $3 RETURNING payload",
            )
            .bind(chat_jid)
            .bind(message_id)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(payload.map(|(payload,)| payload))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        let done = self
            .query("DELETE FROM wa_sent_messages WHERE device = $1 AND created_at < $2")
            .bind(cutoff_timestamp)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(saturating_u32(done.rows_affected()))
    }

    async fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> Result<()> {
        self.store_pending_inbound_batch(&[PendingInboundRow { chat, sender, id, message }]).await
    }

    async fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let message: Option<(Vec<u8>,)> = self
            .query_as(
                "SELECT message FROM wa_pending_inbound WHERE device = $1 AND chat = $2 AND sender = $3 AND id = $4",
            )
            .bind(chat)
            .bind(sender)
            .bind(id)
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(message.map(|(message,)| message))
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_pending_inbound_batch(&[PendingInboundKey { chat, sender, id }]).await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        let done = self
            .query("DELETE FROM wa_pending_inbound WHERE device = $1 AND inserted_at < $2")
            .bind(cutoff_timestamp)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(saturating_u32(done.rows_affected()))
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let inserted_at = now();
        self.execute_each(PUT_PENDING_INBOUND, rows, |query, row| {
            query.bind(row.chat).bind(row.sender).bind(row.id).bind(row.message).bind(inserted_at)
        })
        .await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        self.execute_each(DELETE_PENDING_INBOUND, keys, |query, key| query.bind(key.chat).bind(key.sender).bind(key.id))
            .await
    }
}

/// A message whatsapp-rust buffered before running the inbound hook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BufferedInbound {
    pub chat: String,
    pub sender: String,
    pub id: String,
    pub message: Vec<u8>,
}

impl SqlStore {
    /// Every message of this device still buffered, oldest first.
    pub async fn buffered_inbound(&self) -> std::result::Result<Vec<BufferedInbound>, sqlx::Error> {
        self.query_as("SELECT chat, sender, id, message FROM wa_pending_inbound WHERE device = $1 ORDER BY inserted_at")
            .fetch_all(&self.db.pool)
            .await
    }

    pub async fn forget_buffered_inbound(&self, rows: &[BufferedInbound]) -> Result<()> {
        let keys: Vec<PendingInboundKey<'_>> =
            rows.iter().map(|r| PendingInboundKey { chat: &r.chat, sender: &r.sender, id: &r.id }).collect();
        self.delete_pending_inbound_batch(&keys).await
    }
}

fn saturating_u32(rows: u64) -> u32 {
    u32::try_from(rows).unwrap_or(u32::MAX)
}
