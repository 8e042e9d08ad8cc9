//! Client credentials: the super admin (from `.env`) and the credentials it issues.

pub mod routes;
pub mod service;
pub mod store;
