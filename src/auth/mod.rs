//! Authentication: Basic auth for client credentials, Bearer auth for `mt_` tokens,
//! the scope model, and the throttle on failed Basic auth.

mod basic;
mod bearer;
mod operator;
mod scope;
mod throttle;

pub use basic::{ClientAuth, Principal};
pub use bearer::{TokenAuth, authenticate_bearer};
pub use operator::Caller;
pub use scope::{Scope, Scopes};
pub use throttle::AuthThrottle;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

/// The value after `<scheme> ` in `Authorization`, if the header uses that scheme.
fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The peer address the failed-auth throttle counts by.
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}
