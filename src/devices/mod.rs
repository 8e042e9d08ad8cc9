//! Devices: WhatsApp accounts linked to a token's Matrix identity through the bridge.

pub mod routes;
pub mod service;
pub mod state_events;
mod ticket;
mod ws;

pub use ticket::Tickets;
