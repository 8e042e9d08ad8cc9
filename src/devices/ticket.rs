use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ruma::{OwnedUserId, UserId};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::secret::Secret;

/// Seconds a ticket is valid: enough to open the socket, too short to be worth stealing.
const TICKET_LIFETIME: i64 = 120;

/// Short-lived, single-use signed tickets that stand in for the `mt_` token in the
/// WebSocket URL, so no token ever appears in a URL. Redeemed ids are kept in the database
/// until they expire: a ticket works once whichever process it reaches.
pub struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    jti: String,
    aud: String,
}

const AUDIENCE: &str = "mxgate:devices/qr-code";

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is invalid or expired")]
    Invalid,
    #[error("the ticket was already used")]
    Used,
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
}

impl Tickets {
    pub fn new(key: &Secret) -> Self {
        let bytes = key.expose().as_bytes();
        Self { encoding: EncodingKey::from_secret(bytes), decoding: DecodingKey::from_secret(bytes) }
    }

    pub fn issue(&self, user: &UserId) -> String {
        let claims = Claims {
            sub: user.to_string(),
            exp: crate::db::now() + TICKET_LIFETIME,
            jti: uuid::Uuid::new_v4().to_string(),
            aud: AUDIENCE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing succeeds")
    }

    pub async fn redeem(&self, db: &Db, ticket: &str) -> Result<OwnedUserId, TicketError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(ticket, &self.decoding, &validation)
            .map_err(|_| TicketError::Invalid)?
            .claims;
        let user = UserId::parse(&claims.sub).map_err(|_| TicketError::Invalid)?;
        // An expired id can go: its ticket fails validation above before it gets here.
        sqlx::query("DELETE FROM ticket_redemptions WHERE expires_at < $1")
            .bind(crate::db::now())
            .execute(&db.pool)
            .await?;
        let redeemed = sqlx::query(
            "INSERT INTO ticket_redemptions (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(&claims.jti)
        .bind(claims.exp)
        .execute(&db.pool)
        .await?;
        if redeemed.rows_affected() != 1 {
            return Err(TicketError::Used);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_works_once_and_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        let tickets = Tickets::new(&Secret::new("k".repeat(32)));
        let user = UserId::parse("@mt_a:example.org").unwrap();
        let ticket = tickets.issue(&user);
        assert_eq!(tickets.redeem(&db, &ticket).await.unwrap(), user);
        assert!(matches!(tickets.redeem(&db, &ticket).await, Err(TicketError::Used)));
        // Another process with the same key shares the database, so the ticket stays used.
        let replica = Tickets::new(&Secret::new("k".repeat(32)));
        assert!(matches!(replica.redeem(&db, &ticket).await, Err(TicketError::Used)));
        let other = Tickets::new(&Secret::new("x".repeat(32)));
        assert!(matches!(other.redeem(&db, &tickets.issue(&user)).await, Err(TicketError::Invalid)));
        assert!(matches!(tickets.redeem(&db, "garbage").await, Err(TicketError::Invalid)));
    }
}
