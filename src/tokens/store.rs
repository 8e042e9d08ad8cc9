use sqlx::{Any, Transaction};

use crate::db::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub token_hash: String,
    pub client_id: Option<String>,
    #[sqlx(try_from = "crate::db::Flag")]
    pub is_admin: bool,
    #[sqlx(try_from = "crate::db::Flag")]
    pub use_host: bool,
    pub matrix_user_id: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// The token with this hash, and whether its issuer lets it work: the super admin always
/// (its tokens have no credential), a credential while it is active.
pub async fn find_by_hash(db: &Db, token_hash: &str) -> Result<Option<(TokenRow, bool)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Found {
        #[sqlx(flatten)]
        token: TokenRow,
        #[sqlx(try_from = "crate::db::Flag")]
        issuer_active: bool,
    }
    let found: Option<Found> = sqlx::query_as(
        "SELECT t.id, t.token_hash, t.client_id, t.is_admin, t.use_host, t.matrix_user_id, t.created_at, t.expires_at, COALESCE(c.active, t.client_id IS NULL) AS issuer_active FROM tokens t LEFT JOIN credentials c ON c.client_id = t.client_id WHERE t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&db.pool)
    .await?;
    Ok(found.map(|f| (f.token, f.issuer_active)))
}

/// Tokens owned by `owner`; `None` is the super admin, who sees every token.
pub async fn list(db: &Db, owner: Option<&str>) -> Result<Vec<TokenRow>, sqlx::Error> {
    let query = match owner {
        Some(_) => {
            "SELECT id, token_hash, client_id, is_admin, use_host, matrix_user_id, created_at, expires_at FROM tokens WHERE client_id = $1 ORDER BY created_at, id"
        }
        None => {
            "SELECT id, token_hash, client_id, is_admin, use_host, matrix_user_id, created_at, expires_at FROM tokens ORDER BY created_at, id"
        }
    };
    let query = sqlx::query_as(query);
    match owner {
        Some(owner) => query.bind(owner),
        None => query,
    }
    .fetch_all(&db.pool)
    .await
}

/// Deletes a token of `owner`'s (`None` is the super admin, who may delete any); returns
/// the identity it acted as.
pub async fn delete(db: &Db, id: &str, owner: Option<&str>) -> Result<Option<String>, sqlx::Error> {
    let query = match owner {
        Some(_) => "DELETE FROM tokens WHERE id = $1 AND client_id = $2 RETURNING matrix_user_id",
        None => "DELETE FROM tokens WHERE id = $1 RETURNING matrix_user_id",
    };
    let query = sqlx::query_scalar(query).bind(id);
    match owner {
        Some(owner) => query.bind(owner),
        None => query,
    }
    .fetch_optional(&db.pool)
    .await
}

/// Identities not retired yet that no live token reaches at `now`.
pub async fn orphaned_identities(db: &Db, now: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i.user_id FROM matrix_identities i WHERE i.retired_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM tokens t WHERE t.matrix_user_id = i.user_id AND (t.expires_at IS NULL OR t.expires_at > $1))
         ORDER BY i.user_id",
    )
    .bind(now)
    .fetch_all(&db.pool)
    .await
}

pub async fn mark_retired(db: &Db, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE matrix_identities SET retired_at = $2 WHERE user_id = $1 AND retired_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(&db.pool)
        .await
        .map(drop)
}

/// The host identity is the one identity a new token can act as again.
pub async fn unretire(tx: &mut Transaction<'_, Any>, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE matrix_identities SET retired_at = NULL WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map(drop)
}

pub async fn insert(tx: &mut Transaction<'_, Any>, row: &TokenRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tokens (id, token_hash, client_id, is_admin, use_host, matrix_user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&row.id)
        .bind(&row.token_hash)
        .bind(&row.client_id)
        .bind(row.is_admin)
        .bind(row.use_host)
        .bind(&row.matrix_user_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .execute(&mut **tx)
        .await
        .map(drop)
}

pub async fn host_identity(db: &Db) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT user_id FROM host_identity WHERE id = 1").fetch_optional(&db.pool).await
}

pub async fn insert_identity(tx: &mut Transaction<'_, Any>, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO matrix_identities (user_id, created_at) VALUES ($1, $2)")
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map(drop)
}

/// Fails with a unique violation when another request made the host first.
pub async fn insert_host(tx: &mut Transaction<'_, Any>, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO host_identity (id, user_id) VALUES (1, $1)")
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map(drop)
}
