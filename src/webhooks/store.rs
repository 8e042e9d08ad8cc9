use crate::db::Db;
use crate::secret::Secret;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: String,
    pub token_id: String,
    pub url: String,
    #[sqlx(try_from = "crate::db::Flag")]
    pub active: bool,
    /// HMAC key for signing deliveries; kept in clear because signing needs it.
    pub secret: Secret,
    /// The event types it takes (`catalogue::Filter`'s column).
    pub events: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn list_for_token(db: &Db, token_id: &str) -> Result<Vec<WebhookRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, token_id, url, active, secret, events, created_at, updated_at FROM webhooks WHERE token_id = $1 ORDER BY created_at, id")
        .bind(token_id)
        .fetch_all(&db.pool)
        .await
}

pub async fn find_for_token(db: &Db, id: &str, token_id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, token_id, url, active, secret, events, created_at, updated_at FROM webhooks WHERE id = $1 AND token_id = $2")
        .bind(id)
        .bind(token_id)
        .fetch_optional(&db.pool)
        .await
}

pub async fn insert(db: &Db, row: &WebhookRow) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO webhooks (id, token_id, url, active, secret, events, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(&row.id)
        .bind(&row.token_id)
        .bind(&row.url)
        .bind(row.active)
        .bind(row.secret.expose())
        .bind(&row.events)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&db.pool)
        .await
        .map(drop)
}

pub async fn update(db: &Db, row: &WebhookRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhooks SET url = $3, active = $4, events = $5, updated_at = $6 WHERE id = $1 AND token_id = $2",
    )
    .bind(&row.id)
    .bind(&row.token_id)
    .bind(&row.url)
    .bind(row.active)
    .bind(&row.events)
    .bind(row.updated_at)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes `secret` the webhook's secret at `now`; the one it replaces keeps signing until
/// `previous_until` (an older previous secret is dropped).
pub async fn rotate_secret(
    db: &Db,
    (id, token_id): (&str, &str),
    secret: &Secret,
    now: i64,
    previous_until: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhooks SET previous_secret = secret, previous_secret_expires_at = $4, secret = $3, updated_at = $5
         WHERE id = $1 AND token_id = $2",
    )
    .bind(id)
    .bind(token_id)
    .bind(secret.expose())
    .bind(previous_until)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_for_token(db: &Db, id: &str, token_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND token_id = $2")
        .bind(id)
        .bind(token_id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
