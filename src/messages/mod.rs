//! Sending messages from a device to contacts and groups, through Matrix and the bridge.

pub mod actions;
pub mod attachment;
pub mod idempotency;
pub mod late;
pub mod routes;
pub mod service;
pub mod signals;
mod status;

pub use status::{SendStatus, SendStatuses};
