//! Per-caller rate limits on what costs someone else: starting a device link (a WhatsApp
//! client for minutes, a notification on a stranger's phone), creating a homeserver user,
//! sending messages. Counted with `governor` (GCRA, one state per key, in this process),
//! answered with 429 and `Retry-After`. The failed-auth throttle (`auth/throttle.rs`)
//! is the other limit, and counts failures only.

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::ApiConfig;
use crate::error::ApiError;

/// One limit, keyed by token id (or client id).
struct Limiter {
    limiter: DefaultKeyedRateLimiter<String>,
    /// What is limited and how much, for the 429's message.
    described: String,
}

impl Limiter {
    fn new(quota: Quota, described: String) -> Self {
        Self { limiter: DefaultKeyedRateLimiter::keyed(quota), described }
    }

    /// Takes `n` units for `key`, or says when to retry. Units that were refused are not
    /// taken, so a refused request costs nothing.
    fn take(&self, key: &str, n: u32) -> Result<(), ApiError> {
        let Some(n) = NonZeroU32::new(n) else { return Ok(()) };
        let retry_after = match self.limiter.check_key_n(&key.to_owned(), n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
            // More at once than the whole allowance: waiting would not help.
            Err(_) => return Err(ApiError::unprocessable(format!("{}; this request alone needs {n}", self.described))),
        };
        let retry_after = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Err(ApiError::RateLimited { limit: self.described.clone(), retry_after: retry_after.max(1) })
    }
}

pub struct Limits {
    links: Limiter,
    identities: Limiter,
    sends: Limiter,
    checks: Limiter,
}

fn quota(per: u32) -> NonZeroU32 {
    NonZeroU32::new(per).unwrap_or(NonZeroU32::MIN)
}

impl Limits {
    pub fn new(config: &ApiConfig) -> Self {
        let (links, identities, sends) =
            (config.limit_links_per_hour, config.limit_identities_per_hour, config.limit_sends_per_minute);
        Self {
            links: Limiter::new(
                Quota::per_hour(quota(links)),
                format!("a token starts at most {links} device links an hour"),
            ),
            identities: Limiter::new(
                Quota::per_hour(quota(identities)),
                format!("a credential creates at most {identities} Matrix identities an hour"),
            ),
            sends: Limiter::new(
                Quota::per_minute(quota(sends)),
                format!("a token sends at most {sends} messages (one per recipient) a minute"),
            ),
            checks: Limiter::new(
                Quota::per_minute(quota(config.limit_checks_per_minute)),
                format!("a token checks at most {} numbers a minute", config.limit_checks_per_minute),
            ),
        }
    }

    /// One device link (QR or pairing code) for the token `token_id`.
    pub fn link(&self, token_id: &str) -> Result<(), ApiError> {
        self.links.take(token_id, 1)
    }

    /// One new Matrix identity for the credential `client_id` (`None`: the super admin).
    pub fn identity(&self, client_id: Option<&str>) -> Result<(), ApiError> {
        self.identities.take(client_id.unwrap_or(""), 1)
    }

    /// `recipients` messages from the token `token_id`.
    pub fn sends(&self, token_id: &str, recipients: u32) -> Result<(), ApiError> {
        self.sends.take(token_id, recipients)
    }

    /// `numbers` phone numbers checked on WhatsApp for the token `token_id`.
    pub fn checks(&self, token_id: &str, numbers: u32) -> Result<(), ApiError> {
        self.checks.take(token_id, numbers)
    }
}
