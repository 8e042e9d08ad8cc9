use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{self, TokenRow};
use crate::auth::{ClientAuth, Scope};
use crate::db::{self, is_unique_violation};
use crate::error::{ApiError, ApiResult};
use crate::secret;
use crate::state::AppState;
use crate::time::Timestamp;

/// A plaintext `mt_` token. It exists only between issuing and the response, and
/// between reading the `Authorization` header and hashing it.
pub struct ApiToken(String);

const PREFIX: &str = "mt_";

impl ApiToken {
    /// `mt_` and 32 random bytes (256 bits), base64url.
    pub fn generate() -> Self {
        Self(format!("{PREFIX}{}", secret::random_string(32)))
    }

    pub fn parse(value: &str) -> Option<Self> {
        let body = value.strip_prefix(PREFIX)?;
        let well_formed = body.len() == 43 && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Self(value.to_owned()))
    }

    pub fn hash(&self) -> String {
        secret::sha256_hex(&self.0)
    }

    pub fn reveal(self) -> String {
        self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(mt_***)")
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Share the host (admin) Matrix identity and its devices; `false` gives the token
    /// a Matrix identity of its own. Ignored for the first token ever, which creates the host.
    pub use_host: bool,
    /// When the token stops working (RFC 3339, in the future). Never, when absent.
    #[schema(value_type = Option<String>, format = DateTime, example = "2027-01-01T00:00:00Z")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as listed: everything but the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    #[schema(example = "6f1c2b7e-0d6c-4f55-9a51-0c2f0f4b7d11")]
    pub id: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// The first token ever issued; it created the host Matrix identity.
    pub is_admin: bool,
    pub use_host: bool,
    #[schema(example = "@mt_3f2a9c0d1e2b4a5c:localhost")]
    pub matrix_user_id: String,
    /// The credential that issued it; `null` for the super admin.
    pub client_id: Option<String>,
}

impl From<TokenRow> for TokenInfo {
    fn from(row: TokenRow) -> Self {
        Self {
            id: row.id,
            created_at: Timestamp(row.created_at),
            expires_at: row.expires_at.map(Timestamp),
            is_admin: row.is_admin,
            use_host: row.use_host,
            matrix_user_id: row.matrix_user_id,
            client_id: row.client_id,
        }
    }
}

/// Issues a token. The first token ever becomes the admin token and creates the host
/// identity; later ones share it (`use_host`) or get a fresh identity.
pub async fn issue(state: &AppState, auth: &ClientAuth, new: NewToken) -> ApiResult<(ApiToken, TokenInfo)> {
    auth.require(Scope::TokensCreate)?;
    let now = db::now();
    let expires_at = new.expires_at.map(Timestamp::from_datetime);
    if expires_at.is_some_and(|at| at.0 <= now) {
        return Err(ApiError::unprocessable("expires_at must be in the future"));
    }
    let host = store::host_identity(&state.db).await?;
    if new.use_host && host.is_some() {
        auth.require(Scope::TokensUseHost)?;
    }
    // Only the host identity is shared; every other token gets a fresh one.
    let shared_host = host.clone().filter(|_| new.use_host);
    let new_identity = match shared_host {
        Some(_) => None,
        None => {
            state.limits.identity(auth.owner())?;
            Some(state.homeserver.register_identity().await?.to_string())
        }
    };

    let mut tx = state.db.pool.begin().await?;
    let is_admin = host.is_none();
    if let Some(identity) = &new_identity {
        store::insert_identity(&mut tx, identity, now).await?;
        if is_admin {
            match store::insert_host(&mut tx, identity).await {
                Err(e) if is_unique_violation(&e) => {
                    return Err(ApiError::Conflict("another request created the admin token just now; retry".into()));
                }
                other => other?,
            }
        }
    }
    let use_host = shared_host.is_some();
    if let Some(host) = &shared_host {
        store::unretire(&mut tx, host).await?;
    }
    let matrix_user_id = shared_host.or(new_identity).expect("one of the two is set above");
    let token = ApiToken::generate();
    let row = TokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: token.hash(),
        client_id: auth.owner().map(str::to_owned),
        is_admin,
        use_host,
        matrix_user_id,
        created_at: now,
        expires_at: expires_at.map(|at| at.0),
    };
    store::insert(&mut tx, &row).await?;
    tx.commit().await?;
    tracing::info!(token_id = %row.id, matrix_user_id = %row.matrix_user_id, is_admin, "token issued");
    Ok((token, row.into()))
}

/// A credential's own tokens; for the super admin, every token.
pub async fn list(state: &AppState, auth: &ClientAuth) -> ApiResult<Vec<TokenInfo>> {
    auth.require(Scope::TokensRead)?;
    Ok(store::list(&state.db, auth.owner()).await?.into_iter().map(TokenInfo::from).collect())
}

/// Revokes one of a credential's own tokens (the super admin may revoke any); when it
/// was its identity's last, retires the identity. Returns the devices that unlinked.
pub async fn revoke(state: &AppState, auth: &ClientAuth, id: &str) -> ApiResult<Vec<String>> {
    auth.require(Scope::TokensDelete)?;
    if store::delete(&state.db, id, auth.owner()).await?.is_none() {
        return Err(ApiError::NotFound("token"));
    }
    tracing::info!(token_id = %id, "token revoked");
    Ok(super::lifecycle::retire_now(state).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_never_print() {
        let token = ApiToken::generate();
        assert_eq!(format!("{token:?}"), "ApiToken(mt_***)");
        let text = token.reveal();
        assert!(ApiToken::parse(&text).is_some());
        assert!(ApiToken::parse(&text[1..]).is_none());
        assert!(ApiToken::parse("mt_short").is_none());
    }
}
