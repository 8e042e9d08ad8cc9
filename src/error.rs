//! The one error type of the HTTP layer and its mapping to status codes and the
//! JSON envelope `{"error": "<code>", "message": "<human text>"}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::matrix::HomeserverError;

/// Which authentication scheme a 401 should advertise in `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str, Scheme),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("too many failed authentication attempts; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("{limit}; retry in {retry_after} s")]
    RateLimited { limit: String, retry_after: u64 },
    #[error("{}", homeserver_message(.0))]
    Homeserver(#[from] HomeserverError),
    #[error("{0}")]
    NotSupported(String),
    /// The detail (the bridge's answer, its address) goes to the log, not to the client.
    #[error("the bridge could not do this now; try again (the log has the detail under this response's x-request-id)")]
    BridgeUnavailable(String),
    #[error("internal error")]
    Database(#[from] sqlx::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// What a client reads of a homeserver failure: whether to wait, not Synapse's own words.
fn homeserver_message(error: &HomeserverError) -> &'static str {
    match error {
        HomeserverError::Matrix(mxgate_bridge::matrix::MatrixError::Unreachable(_)) => {
            "the homeserver is unavailable; try again (the log has the detail under this response's x-request-id)"
        }
        HomeserverError::NoSharedSecret => {
            "setting passwords needs MXGATE_REGISTRATION_SHARED_SECRET and a Synapse homeserver"
        }
        HomeserverError::Matrix(_) => {
            "the homeserver refused the request (the log has the detail under this response's x-request-id)"
        }
    }
}

/// The error envelope every non-2xx response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_json`, `forbidden`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// Human-readable explanation.
    #[schema(example = "webhook not found")]
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(..) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            // Unreachable is an outage the client should wait out; anything else is a bad answer.
            Self::Homeserver(crate::matrix::HomeserverError::Matrix(
                mxgate_bridge::matrix::MatrixError::Unreachable(_),
            )) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Homeserver(_) => StatusCode::BAD_GATEWAY,
            Self::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            Self::BridgeUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(..) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) | Self::NoRoute(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Unprocessable(_) => "validation_failed",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::RateLimited { .. } => "rate_limited",
            Self::Homeserver(_) => "homeserver_unavailable",
            Self::NotSupported(_) => "not_supported",
            Self::BridgeUnavailable(_) => "bridge_unavailable",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::Unprocessable(message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The detail goes to the log only; the client sees the generic message.
            tracing::error!(error = ?self, "request failed");
        }
        let body = ErrorBody { error: self.code(), message: self.to_string() };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_, scheme) => {
                let challenge = match scheme {
                    Scheme::Basic => r#"Basic realm="mxgate", charset="UTF-8""#,
                    Scheme::Bearer => r#"Bearer realm="mxgate""#,
                };
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            Self::TooManyRequests { retry_after } | Self::RateLimited { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            _ => {}
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::UnsupportedMediaType("expected `Content-Type: application/json`".into())
            }
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(rejection.body_text()),
            _ => Self::BadRequest(rejection.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
