use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::credentials;
use crate::db;
use crate::error::{ApiError, Scheme};
use crate::secret;
use crate::state::AppState;
use crate::tokens::ApiToken;
use crate::tokens::store::{self, TokenRow};

/// Extractor for `Authorization: Bearer mt_…`. Every request reads the token's row and its
/// credential's, so a revoked or expired token, or one whose credential was deactivated, is
/// refused on its very next use.
#[derive(Debug, Clone)]
pub struct TokenAuth(pub TokenRow);

const INVALID: ApiError = ApiError::Unauthorized("invalid or revoked token", Scheme::Bearer);

impl FromRequestParts<AppState> for TokenAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate_bearer(&parts.headers, state).await.map(Self)
    }
}

/// The token row behind `Authorization: Bearer mt_…`, if it is valid now.
pub async fn authenticate_bearer(headers: &HeaderMap, state: &AppState) -> Result<TokenRow, ApiError> {
    let value = credentials(headers, "Bearer")
        .ok_or(ApiError::Unauthorized("Bearer authentication with an mt_ token required", Scheme::Bearer))?;
    let token = ApiToken::parse(value).ok_or(INVALID)?;
    let hash = token.hash();
    let (row, issuer_active) = store::find_by_hash(&state.db, &hash).await?.ok_or(INVALID)?;
    // Found by index; the final equality is constant-time as SECURITY.md promises.
    if !secret::constant_time_eq(&row.token_hash, &hash) {
        return Err(INVALID);
    }
    if row.expires_at.is_some_and(|at| at <= db::now()) {
        return Err(ApiError::Unauthorized("token expired", Scheme::Bearer));
    }
    // A deleted credential takes its tokens with it (by cascade); a deactivated one holds them.
    if !issuer_active {
        return Err(ApiError::Unauthorized("the credential that issued this token is inactive", Scheme::Bearer));
    }
    Ok(row)
}
