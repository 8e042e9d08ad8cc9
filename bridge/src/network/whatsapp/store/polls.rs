//! Polls the device sent or received: what decrypting and sending a vote on one needs.
//! whatsapp-rust keeps message secrets too, but behind a write-behind buffer whose
//! contents only its own add-on paths read; a vote arriving before the flush would be lost.

use super::{Result, SqlStore, db_error, json_error};

/// A poll as a vote on it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPoll {
    /// The poll's creator (non-AD JID): votes are keyed to it.
    pub creator: String,
    /// The 32-byte secret the poll carried.
    pub secret: Vec<u8>,
    pub options: Vec<String>,
}

impl SqlStore {
    /// Keeps `poll`, sent or received as `msg_id`; a redelivery keeps the first.
    pub async fn remember_poll(&self, msg_id: &str, poll: &StoredPoll) -> Result<()> {
        let options = serde_json::to_string(&poll.options).map_err(json_error)?;
        self.query(
            "INSERT INTO wa_polls (device, msg_id, creator, secret, options) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (device, msg_id) DO NOTHING",
        )
        .bind(msg_id.to_owned())
        .bind(poll.creator.clone())
        .bind(poll.secret.clone())
        .bind(options)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn poll(&self, msg_id: &str) -> Result<Option<StoredPoll>> {
        let row: Option<(String, Vec<u8>, String)> = self
            .query_as("SELECT creator, secret, options FROM wa_polls WHERE device = $1 AND msg_id = $2")
            .bind(msg_id.to_owned())
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        row.map(|(creator, secret, options)| {
            Ok(StoredPoll { creator, secret, options: serde_json::from_str(&options).map_err(json_error)? })
        })
        .transpose()
    }
}
