//! Stories against a real mxgate, a real Synapse and a real database.

#[path = "../common/mod.rs"]
mod common;

mod actions;
mod bot;
mod cli;
mod console;
mod contacts;
mod credentials;
mod devices;
mod events;
mod fuzz;
mod groups;
mod history;
mod http;
mod identity_lifecycle;
mod incoming;
mod kinds;
mod limits;
mod matrix_login;
mod messages;
mod openapi;
mod polls_calls;
mod reliability;
mod replicas;
mod restart;
mod signals;
mod tokens;
mod webhooks;
