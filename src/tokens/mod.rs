//! `mt_` API tokens and the Matrix identities they act as.

pub mod lifecycle;
pub mod routes;
pub mod service;
pub mod store;

pub use service::ApiToken;
