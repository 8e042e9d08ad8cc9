//! Webhooks: where a token's incoming messages are delivered.

pub mod catalogue;
pub mod delivery;
pub mod payload;
pub mod queue;
pub mod routes;
pub mod service;
mod signing;
pub mod store;
