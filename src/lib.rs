//! mxgate: a REST API for WhatsApp whose plumbing is Matrix.
//!
//! HTTP layer (`*/routes.rs`) → services (`*/service.rs`) → storage (`*/store.rs`).

pub mod appservice;
pub mod auth;
pub mod bridge_client;
pub mod chats;
pub mod config;
pub mod console;
pub mod contacts;
pub mod credentials;
pub use mxgate_bridge::db;
pub mod devices;
pub mod error;
pub mod events;
pub mod extract;
pub mod groups;
pub mod health;
pub mod limits;
pub mod matrix;
pub mod messages;
pub mod openapi;
pub mod outbound;
pub mod routes;
pub mod secret;
pub mod server;
pub mod setup;
pub mod sim;
pub mod state;
pub mod time;
pub mod tokens;
pub mod webhooks;
