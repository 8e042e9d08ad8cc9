//! `Idempotency-Key` on sends: the same key and body within 24 hours answers the first
//! answer again and sends nothing; the same key with another body is refused.
//!
//! The first request claims the key before it sends. Its Matrix transaction ids derive
//! from the key, so if it dies half-way (a crash, a client that gave up), the retry that
//! takes the claim over re-sends under the same transaction ids: the homeserver returns
//! the events it already has and the bridge's queue, keyed by event, sends none twice.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::db::{Db, now};
use crate::error::{ApiError, ApiResult};

pub const HEADER: &str = "idempotency-key";
/// How long a key answers with its first answer.
const LIFETIME_SECS: i64 = 24 * 3600;
const MAX_KEY_LEN: usize = 255;

/// A client's key for one logical send, checked at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it gave one.
    pub fn from_headers(headers: &HeaderMap) -> ApiResult<Option<Self>> {
        let Some(value) = headers.get(HEADER) else { return Ok(None) };
        let key = value
            .to_str()
            .ok()
            .filter(|k| (1..=MAX_KEY_LEN).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        key.map(|k| Some(Self(k.to_owned()))).ok_or_else(|| {
            ApiError::unprocessable(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"))
        })
    }

    /// A Matrix transaction id for this key's send to `recipient`, the same on every retry.
    pub fn transaction_id(&self, token_id: &str, recipient: &str) -> String {
        let digest = Sha256::new()
            .chain_update(token_id)
            .chain_update([0])
            .chain_update(&self.0)
            .chain_update([0])
            .chain_update(recipient)
            .finalize();
        format!("idem-{}", hex::encode(&digest[..16]))
    }
}

/// What a claim found.
pub enum Claim {
    /// The key is this request's now: send, then [`finish`] or [`release`].
    Taken,
    /// The first request's answer, to give again.
    Answered(String),
}

/// Claims `key` for a request whose body hashes to `fingerprint`. A claim left running
/// longer than `stale_after_secs` (its request died) is taken over.
pub async fn claim(
    db: &Db,
    token_id: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
    stale_after_secs: i64,
) -> ApiResult<Claim> {
    let now = now();
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND created_at < $3")
        .bind(token_id)
        .bind(&key.0)
        .bind(now - LIFETIME_SECS)
        .execute(&db.pool)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (token_id, key, fingerprint, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (token_id, key) DO NOTHING",
    )
    .bind(token_id)
    .bind(&key.0)
    .bind(fingerprint)
    .bind(now)
    .execute(&db.pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::Taken);
    }
    let (stored, response, created_at): (String, Option<String>, i64) = sqlx::query_as(
        "SELECT fingerprint, response, created_at FROM idempotency_keys WHERE token_id = $1 AND key = $2",
    )
    .bind(token_id)
    .bind(&key.0)
    .fetch_one(&db.pool)
    .await?;
    if stored != fingerprint {
        return Err(ApiError::unprocessable(
            "this Idempotency-Key was used with a different request; use a new key for a new message",
        ));
    }
    match response {
        Some(response) => Ok(Claim::Answered(response)),
        None if created_at < now - stale_after_secs => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = $4 WHERE token_id = $1 AND key = $2 AND created_at = $3 AND response IS NULL",
            )
            .bind(token_id)
            .bind(&key.0)
            .bind(created_at)
            .bind(now)
            .execute(&db.pool)
            .await?;
            if taken.rows_affected() == 1 { Ok(Claim::Taken) } else { Err(in_progress()) }
        }
        None => Err(in_progress()),
    }
}

fn in_progress() -> ApiError {
    ApiError::Conflict("a request with this Idempotency-Key is still being processed; retry later".into())
}

/// Keeps `response` as the key's answer.
pub async fn finish(db: &Db, token_id: &str, key: &IdempotencyKey, response: &str) -> ApiResult<()> {
    sqlx::query("UPDATE idempotency_keys SET response = $3 WHERE token_id = $1 AND key = $2")
        .bind(token_id)
        .bind(&key.0)
        .bind(response)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Frees the key of a request refused before it sent anything, so a corrected request
/// may use it.
pub async fn release(db: &Db, token_id: &str, key: &IdempotencyKey) -> ApiResult<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND response IS NULL")
        .bind(token_id)
        .bind(&key.0)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A digest of everything that makes one send different from another.
pub fn fingerprint(device_id: &str, fields: &[Option<&str>], file: Option<(&str, &[u8])>) -> String {
    let mut hash = Sha256::new();
    hash.update(device_id);
    for field in fields {
        // A length prefix keeps ("ab", "c") and ("a", "bc") apart; absent differs from empty.
        match field {
            Some(value) => {
                hash.update((value.len() as u64 + 1).to_be_bytes());
                hash.update(value);
            }
            None => hash.update(0u64.to_be_bytes()),
        }
    }
    if let Some((name, data)) = file {
        hash.update((name.len() as u64).to_be_bytes());
        hash.update(name);
        hash.update(data);
    }
    hex::encode(hash.finalize())
}
