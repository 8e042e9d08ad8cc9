use crate::db::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub client_id: String,
    pub description: String,
    pub secret_hash: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub active: bool,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn find(db: &Db, client_id: &str) -> Result<Option<CredentialRow>, sqlx::Error> {
    sqlx::query_as("SELECT client_id, description, secret_hash, active, scopes, created_at, updated_at FROM credentials WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn list(db: &Db) -> Result<Vec<CredentialRow>, sqlx::Error> {
    sqlx::query_as("SELECT client_id, description, secret_hash, active, scopes, created_at, updated_at FROM credentials ORDER BY created_at, client_id")
        .fetch_all(&db.pool)
        .await
}

pub async fn insert(db: &Db, row: &CredentialRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO credentials (client_id, description, secret_hash, active, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(&row.client_id)
        .bind(&row.description)
        .bind(&row.secret_hash)
        .bind(row.active)
        .bind(&row.scopes)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&db.pool)
        .await
        .map(drop)
}

pub async fn update(db: &Db, row: &CredentialRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE credentials SET description = $2, active = $3, scopes = $4, updated_at = $5 WHERE client_id = $1",
    )
    .bind(&row.client_id)
    .bind(&row.description)
    .bind(row.active)
    .bind(&row.scopes)
    .bind(row.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deleting a credential revokes its tokens (and their webhooks) by cascade.
pub async fn delete(db: &Db, client_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM credentials WHERE client_id = $1").bind(client_id).execute(&db.pool).await?;
    Ok(done.rows_affected() == 1)
}
