//! Authentication: Basic auth for client credentials, Bearer auth for `mt_` tokens,
//! the scope model, and the throttle on failed Basic auth.

mod basic;
mod bearer;
mod scope;
mod throttle;

pub use basic::{ClientAuth, Principal};
pub use bearer::{TokenAuth, authenticate_bearer};
pub use scope::{Scope, Scopes};
pub use throttle::AuthThrottle;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// The value after `<scheme> ` in `Authorization`, if the header uses that scheme.
fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}
