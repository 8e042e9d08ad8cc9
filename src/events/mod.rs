//! The event log: every payload queued for a Matrix identity, once, in one total order
//! per identity. Webhook deliveries are a view of it; `GET /events?after=` reads it.

pub mod routes;
pub mod service;
pub mod store;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A position in an identity's event log: a feed page continues after it, and every
/// event and delivery carries its own. Opaque to clients: pass it back as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, ToSchema)]
#[schema(value_type = String, example = "42")]
pub struct Cursor(pub i64);

impl Cursor {
    /// Before the first event.
    pub const START: Self = Self(0);
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a cursor this API gave out")]
pub struct BadCursor(String);

impl FromStr for Cursor {
    type Err = BadCursor;

    fn from_str(text: &str) -> Result<Self, BadCursor> {
        match text.parse::<i64>() {
            Ok(seq) if seq >= 0 && !text.starts_with('+') => Ok(Self(seq)),
            _ => Err(BadCursor(text.chars().take(64).collect())),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How many items one page holds: 1 to 500, 50 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(value_type = u32, minimum = 1, maximum = 500, default = 50)]
pub struct Limit(pub u32);

impl Limit {
    pub const MAX: u32 = 500;
    pub const DEFAULT: Self = Self(50);

    pub fn get(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.parse::<u32>() {
            Ok(n @ 1..=Self::MAX) => Ok(Self(n)),
            _ => Err(serde::de::Error::custom(format!("limit must be a whole number from 1 to {}", Self::MAX))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        assert_eq!("17".parse::<Cursor>().unwrap().to_string(), "17");
        for bad in ["", "-1", "+3", "abc", "1.5", "99999999999999999999"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
