//! The API's side of Matrix: it acts as its appservice to create token identities
//! and, on Synapse, as an admin to give a person a password for an identity.

mod homeserver;
pub mod routes;

pub use homeserver::{Homeserver, HomeserverError};
