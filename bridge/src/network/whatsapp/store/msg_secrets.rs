//! Secrets of messages, to decrypt the votes, reactions and edits that refer to them.

use async_trait::async_trait;
use whatsapp_rust::wacore::store::traits::{MsgSecretEntry, MsgSecretStore};

use super::{Result, SqlStore, db_error};

#[async_trait]
impl MsgSecretStore for SqlStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        // A redelivery never shortens a retention window (0, "never", wins; otherwise
        // the later deadline) and never forgets a known parent time (the later wins).
        self.execute_each(
            "INSERT INTO wa_msg_secrets (device, chat, sender, msg_id, secret, expires_at, message_ts)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (device, chat, sender, msg_id) DO UPDATE SET secret = excluded.secret,
                 expires_at = CASE
                     WHEN wa_msg_secrets.expires_at = 0 OR excluded.expires_at = 0 THEN 0
                     WHEN wa_msg_secrets.expires_at > excluded.expires_at THEN wa_msg_secrets.expires_at
                     ELSE excluded.expires_at END,
                 message_ts = CASE
                     WHEN wa_msg_secrets.message_ts > excluded.message_ts THEN wa_msg_secrets.message_ts
                     ELSE excluded.message_ts END",
            &entries,
            |query, entry| {
                query
                    .bind(entry.chat.as_ref())
                    .bind(entry.sender.as_ref())
                    .bind(entry.msg_id.as_ref())
                    .bind(entry.secret.as_slice())
                    .bind(entry.expires_at)
                    .bind(entry.message_ts)
            },
        )
        .await?;
        Ok(entries.len())
    }

    async fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_msg_secret_with_ts(chat, sender, msg_id).await?.map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<(Vec<u8>, i64)>> {
        self.query_as(
            "SELECT secret, message_ts FROM wa_msg_secrets WHERE device = $1 AND chat = $2 AND sender = $3 AND msg_id = $4",
        )
        .bind(chat)
        .bind(sender)
        .bind(msg_id)
        .fetch_optional(&self.db.pool)
        .await
        .map_err(db_error)
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        let done = self
            .query("DELETE FROM wa_msg_secrets WHERE device = $1 AND expires_at <> 0 AND expires_at <= $2")
            .bind(cutoff_timestamp)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
    }
}
