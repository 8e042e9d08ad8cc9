//! Webhooks: where a token's incoming messages are delivered.

mod address;
pub mod delivery;
pub mod queue;
pub mod routes;
pub mod service;
pub mod store;

pub use address::{AddressPolicy, ForbiddenAddress};
