use std::sync::LazyLock;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Scope, Scopes, client_ip, credentials};
use crate::config::ApiConfig;
use crate::credentials::store;
use crate::error::{ApiError, Scheme};
use crate::secret;
use crate::state::AppState;

/// Who authenticated with Basic auth.
#[derive(Debug, Clone)]
pub enum Principal {
    /// `CLIENT_ID`/`CLIENT_SECRET` from `.env`: every scope, and credential management.
    SuperAdmin,
    Credential {
        client_id: String,
        scopes: Scopes,
    },
}

/// Extractor for `Authorization: Basic` with a client credential.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub principal: Principal,
    super_admin_id: String,
}

impl ClientAuth {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.principal {
            Principal::SuperAdmin => Ok(()),
            Principal::Credential { scopes, .. } if scopes.allows(scope) => Ok(()),
            Principal::Credential { .. } => {
                Err(ApiError::Forbidden(format!("this credential lacks the `{scope}` scope")))
            }
        }
    }

    pub fn require_super_admin(&self) -> Result<(), ApiError> {
        match self.principal {
            Principal::SuperAdmin => Ok(()),
            Principal::Credential { .. } => Err(ApiError::Forbidden("only the super admin manages credentials".into())),
        }
    }

    /// The credential that owns what this caller creates; `None` for the super admin.
    pub fn owner(&self) -> Option<&str> {
        match &self.principal {
            Principal::SuperAdmin => None,
            Principal::Credential { client_id, .. } => Some(client_id),
        }
    }

    pub fn super_admin_id(&self) -> &str {
        &self.super_admin_id
    }
}

/// A hash to verify against when the client id is unknown, so that an unknown id
/// costs the same time as a wrong secret and ids cannot be enumerated.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| secret::hash_password("mxgate-dummy-secret"));

const UNAUTHORIZED: ApiError = ApiError::Unauthorized("invalid client credentials", Scheme::Basic);

/// `client_id` and `client_secret` from `Authorization: Basic`, if well formed.
pub(super) fn basic_pair(headers: &HeaderMap) -> Option<(String, String)> {
    credentials(headers, "Basic")
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())))
}

/// Whether the pair is the super admin's, compared in constant time.
pub(super) fn is_super_admin(config: &ApiConfig, client_id: &str, client_secret: &str) -> bool {
    secret::constant_time_eq(client_id, &config.client_id)
        & secret::constant_time_eq(client_secret, config.client_secret.expose())
}

impl FromRequestParts<AppState> for ClientAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (client_id, client_secret) = basic_pair(&parts.headers).ok_or(ApiError::Unauthorized(
            "Basic authentication with client_id:client_secret required",
            Scheme::Basic,
        ))?;

        let ip = client_ip(parts);
        state.throttle.check(ip).map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;

        let config = &state.config;
        let super_admin_id = config.client_id.clone();
        if is_super_admin(config, &client_id, &client_secret) {
            return Ok(Self { principal: Principal::SuperAdmin, super_admin_id });
        }

        let row = store::find(&state.db, &client_id).await?;
        let hash = row.as_ref().map_or_else(|| DUMMY_HASH.clone(), |r| r.secret_hash.clone());
        let verified = tokio::task::spawn_blocking(move || secret::verify_password(&client_secret, &hash))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        match row {
            Some(row) if verified && row.active => Ok(Self {
                principal: Principal::Credential { client_id: row.client_id, scopes: Scopes::from_stored(&row.scopes) },
                super_admin_id,
            }),
            Some(_) if verified => Err(ApiError::Unauthorized("this credential is inactive", Scheme::Basic)),
            _ => {
                state.throttle.record_failure(ip);
                Err(UNAUTHORIZED)
            }
        }
    }
}
