//! The people a device can reach: which numbers are on WhatsApp.

pub mod routes;
