//! Sending messages from a device to contacts and groups, through Matrix and the bridge.

pub mod actions;
pub mod idempotency;
pub mod late;
pub mod routes;
pub mod service;
mod status;

pub use status::{SendStatus, SendStatuses};
