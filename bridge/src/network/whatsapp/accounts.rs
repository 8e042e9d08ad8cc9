//! Linked accounts ↔ the whatsapp-rust store that holds each one's session.

use crate::db::{Db, now};

pub async fn store_key(db: &Db, account: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT store_key FROM whatsapp_accounts WHERE account_id = $1")
        .bind(account)
        .fetch_optional(&db.pool)
        .await
}

/// Records the store of a freshly linked account; returns the key of the store it
/// replaces (the same number linked again), which the caller deletes.
pub async fn link(db: &Db, account: &str, store_key: &str) -> Result<Option<String>, sqlx::Error> {
    let previous = self::store_key(db, account).await?;
    sqlx::query(
        "INSERT INTO whatsapp_accounts (account_id, store_key, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO UPDATE SET store_key = excluded.store_key, created_at = excluded.created_at",
    )
    .bind(account)
    .bind(store_key)
    .bind(now())
    .execute(&db.pool)
    .await?;
    Ok(previous.filter(|key| key != store_key))
}

pub async fn unlink(db: &Db, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM whatsapp_accounts WHERE account_id = $1").bind(account).execute(&db.pool).await?;
    Ok(())
}
