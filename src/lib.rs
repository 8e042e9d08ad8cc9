//! mxgate: a REST API for WhatsApp whose plumbing is Matrix.
//!
//! HTTP layer (`*/routes.rs`) → services (`*/service.rs`) → storage (`*/store.rs`).

pub mod auth;
pub mod config;
pub mod credentials;
pub mod db;
pub mod error;
pub mod extract;
pub mod health;
pub mod matrix;
pub mod routes;
pub mod secret;
pub mod server;
pub mod setup;
pub mod state;
pub mod time;
pub mod tokens;
pub mod webhooks;
