use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::basic::{basic_pair, is_super_admin};
use super::{client_ip, credentials};
use crate::error::{ApiError, Scheme};
use crate::secret;
use crate::state::AppState;

/// Who asks for the operational detail (`/metrics`, the body of `/health`): the operator
/// with the super admin's Basic auth or `MXGATE_METRICS_TOKEN` as Bearer, anyone with no
/// `Authorization` at all. Anything else is refused (401, counted by the failed-auth
/// throttle), so a mistyped secret is told so instead of getting the public view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anyone,
    Operator,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(Self::Anyone);
        }
        let ip = client_ip(parts);
        state.throttle.check(ip).map_err(|retry_after| ApiError::TooManyRequests { retry_after })?;
        let config = &state.config;
        let by_basic = basic_pair(&parts.headers).is_some_and(|(id, secret)| is_super_admin(config, &id, &secret));
        let by_bearer = credentials(&parts.headers, "Bearer").is_some_and(|given| {
            config.metrics_token.as_ref().is_some_and(|token| secret::constant_time_eq(given, token.expose()))
        });
        if by_basic || by_bearer {
            return Ok(Self::Operator);
        }
        state.throttle.record_failure(ip);
        Err(ApiError::Unauthorized(
            "the super admin's Basic auth or MXGATE_METRICS_TOKEN as Bearer required",
            Scheme::Basic,
        ))
    }
}
