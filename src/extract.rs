//! axum's extractors with their rejections turned into [`ApiError`], so malformed
//! input gets the same JSON envelope as every other error.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `Option<Json<T>>`: no body (no `Content-Type`) is `None`; a body is parsed as usual.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let json = <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(json.map(|axum::Json(value)| Self(value)))
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// For an optional field that may be absent but not `null` (its schema says it is not
/// nullable): absent is `None` through `#[serde(default)]`, `null` is refused.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// An optional whole number, written as JSON Schema's `integer` allows: `3600` or `3600.0`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(float) if float >= 0.0 && float.fract() == 0.0 && float <= u64::MAX as f64 => Ok(Some(float as u64)),
        _ => Err(serde::de::Error::custom(format!("{number} is not a whole number of 0 or more"))),
    }
}
