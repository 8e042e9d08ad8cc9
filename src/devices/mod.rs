//! Devices: WhatsApp accounts linked to a token's Matrix identity through the bridge.

pub mod logged_out;
pub mod routes;
pub mod service;
mod ticket;
mod ws;

pub use ticket::Tickets;
