use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ruma::{OwnedUserId, UserId};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Seconds a ticket is valid: enough to open the socket, too short to be worth stealing.
const TICKET_LIFETIME: i64 = 120;

/// Short-lived, single-use signed tickets that stand in for the `mt_` token in the
/// WebSocket URL, so no token ever appears in a URL.
pub struct Tickets {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Ticket ids already redeemed, with their expiry, so each works once.
    redeemed: Mutex<HashMap<String, i64>>,
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
}

impl Tickets {
    pub fn new(key: &Secret) -> Self {
        let bytes = key.expose().as_bytes();
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            redeemed: Mutex::new(HashMap::new()),
        }
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

    pub fn redeem(&self, ticket: &str) -> Result<OwnedUserId, TicketError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(ticket, &self.decoding, &validation)
            .map_err(|_| TicketError::Invalid)?
            .claims;
        let user = UserId::parse(&claims.sub).map_err(|_| TicketError::Invalid)?;
        let now = crate::db::now();
        let mut redeemed = self.redeemed.lock().unwrap_or_else(|e| e.into_inner());
        redeemed.retain(|_, exp| *exp >= now);
        if redeemed.insert(claims.jti, claims.exp).is_some() {
            return Err(TicketError::Used);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_and_only_with_its_key() {
        let tickets = Tickets::new(&Secret::new("k".repeat(32)));
        let user = UserId::parse("@mt_a:example.org").unwrap();
        let ticket = tickets.issue(&user);
        assert_eq!(tickets.redeem(&ticket).unwrap(), user);
        assert!(matches!(tickets.redeem(&ticket), Err(TicketError::Used)));
        let other = Tickets::new(&Secret::new("x".repeat(32)));
        assert!(matches!(other.redeem(&tickets.issue(&user)), Err(TicketError::Invalid)));
        assert!(matches!(tickets.redeem("garbage"), Err(TicketError::Invalid)));
    }
}
