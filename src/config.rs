//! Runtime configuration. Every field is a clap flag with an environment variable,
//! so `.env`, the environment and the command line all work the same way.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use url::Url;

pub use mxgate_bridge::config::{
    BridgeConfig, DatabaseConfig, NetworkKind, ProvisioningConfig, ServerConfig, WhatsAppConfig,
};

use crate::secret::Secret;

/// The homeserver and the API's appservice registration on it.
#[derive(Debug, Clone, Args)]
pub struct HomeserverConfig {
    #[command(flatten)]
    pub server: ServerConfig,

    /// `as_token` of the API's appservice registration.
    #[arg(long, env = "MXGATE_API_AS_TOKEN", hide_env_values = true)]
    pub api_as_token: Secret,

    /// `id` of the API's appservice registration (for the homeserver's ping at start).
    #[arg(long, env = "MXGATE_API_APPSERVICE_ID", default_value = "mxgate-api")]
    pub api_appservice_id: String,

    /// `hs_token` of the API's appservice registration (authenticates the homeserver's pushes).
    #[arg(long, env = "MXGATE_API_HS_TOKEN", hide_env_values = true)]
    pub api_hs_token: Secret,

    /// Synapse's `registration_shared_secret`, used to set the password a person logs in with.
    #[arg(long, env = "MXGATE_REGISTRATION_SHARED_SECRET", hide_env_values = true)]
    pub registration_shared_secret: Option<Secret>,

    /// Localpart prefix of token identities; must match the API registration's user namespace.
    #[arg(long, env = "MXGATE_IDENTITY_PREFIX", default_value = "mt_")]
    pub identity_prefix: String,

    /// Localpart of the Synapse admin account mxgate creates to manage passwords.
    #[arg(long, env = "MXGATE_HOMESERVER_ADMIN", default_value = "mxgate_admin")]
    pub admin_localpart: String,
}

/// Configuration of the HTTP API.
#[derive(Debug, Clone, Args)]
pub struct ApiConfig {
    /// Address the API listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// URL clients reach the API at (for URLs the API hands out); defaults to http://LISTEN_ADDR.
    #[arg(long, env = "MXGATE_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// The super admin's client id.
    #[arg(long, env = "CLIENT_ID")]
    pub client_id: String,

    /// The super admin's client secret.
    #[arg(long, env = "CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Secret,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MXGATE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Bearer token a metrics scraper presents for `/metrics` and the detail of `/health`
    /// (the super admin's Basic auth works too). Unset: the super admin only.
    #[arg(long, env = "MXGATE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// Failed Basic-auth attempts one address may make per minute before getting 429.
    #[arg(long, env = "MXGATE_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,

    /// Device links (QR or pairing code) one token may start per hour.
    #[arg(long, env = "MXGATE_LIMIT_LINKS_PER_HOUR", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_links_per_hour: u32,

    /// Matrix identities (tokens without `use_host`) one credential may create per hour.
    #[arg(long, env = "MXGATE_LIMIT_IDENTITIES_PER_HOUR", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_identities_per_hour: u32,

    /// Messages (one per recipient) one token may send per minute, at most that many at once.
    #[arg(long, env = "MXGATE_LIMIT_SENDS_PER_MINUTE", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_sends_per_minute: u32,

    /// Phone numbers one token may check (`contacts/check`) per minute, at most that
    /// many at once: WhatsApp watches for accounts that probe many numbers.
    #[arg(long, env = "MXGATE_LIMIT_CHECKS_PER_MINUTE", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_checks_per_minute: u32,

    /// Allow webhook URLs that resolve to loopback addresses (development and tests).
    #[arg(long, env = "MXGATE_WEBHOOK_ALLOW_LOOPBACK", default_value_t = false)]
    pub webhook_allow_loopback: bool,

    /// Allow webhook URLs that resolve to private or link-local addresses.
    #[arg(long, env = "MXGATE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,

    #[command(flatten)]
    pub database: DatabaseConfig,

    #[command(flatten)]
    pub homeserver: HomeserverConfig,

    #[command(flatten)]
    pub provisioning: ProvisioningConfig,

    /// Seconds a per-recipient send waits for WhatsApp to accept the message.
    #[arg(long, env = "MXGATE_SEND_TIMEOUT_SECS", default_value_t = 30)]
    pub send_timeout_secs: u64,

    /// Largest file accepted by `POST /devices/{id}/message`, in bytes.
    #[arg(long, env = "MXGATE_MAX_FILE_SIZE", default_value_t = 16 * 1024 * 1024)]
    pub max_file_size: usize,

    /// Key that signs the WebSocket tickets of device linking (HS256).
    #[arg(long, env = "MXGATE_TICKET_KEY", hide_env_values = true)]
    pub ticket_key: Secret,

    /// First retry delay of webhook deliveries, in milliseconds; it doubles per attempt, with jitter.
    #[arg(long, env = "MXGATE_WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    pub webhook_retry_base_ms: u64,

    /// Longest wait between two attempts of one delivery (e.g. `10m`, `30s`).
    #[arg(long, env = "MXGATE_WEBHOOK_RETRY_MAX_DELAY", default_value = "10m")]
    pub webhook_retry_max_delay: Span,

    /// How long a delivery is retried, from its first attempt, before it is `failed` (e.g. `3d`, `12h`).
    #[arg(long, env = "MXGATE_WEBHOOK_RETRY_HORIZON", default_value = "3d")]
    pub webhook_retry_horizon: Span,

    /// How long delivered (and failed) deliveries, and the event log, are kept (e.g. `7d`).
    #[arg(long, env = "MXGATE_WEBHOOK_RETENTION", default_value = "7d")]
    pub webhook_retention: Span,

    /// A file in a webhook payload: `inline` (base64 in `media.content`, beside
    /// `media.url`) or `url` (only `media.url`, the download route; smaller deliveries).
    #[arg(long, env = "MXGATE_WEBHOOK_MEDIA", value_enum, default_value = "inline")]
    pub webhook_media: crate::webhooks::payload::MediaMode,
}

impl ApiConfig {
    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}", self.listen_addr)).expect("a socket address is a valid host")
        })
    }
}

/// Options of `mxgate setup`.
#[derive(Debug, Clone, Args)]
pub struct SetupConfig {
    /// The `.env` file to create or complete; existing values are kept.
    #[arg(long, env = "MXGATE_ENV_FILE", default_value = ".env")]
    pub env_file: PathBuf,

    /// Directory for generated state (Synapse config and data, the SQLite store).
    #[arg(long, env = "MXGATE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Directory holding the templates (`homeserver.yaml`, the two registrations).
    #[arg(long, env = "MXGATE_CONFIG_DIR", default_value = "config")]
    pub config_dir: PathBuf,
}

/// A length of time as people write it in a setting: `3d`, `12h`, `10m`, `1h30m`,
/// `500ms`, `2 weeks`, or a bare number of seconds (`90`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpanError {
    #[error("a duration must not be empty (write e.g. `3d`, `10m` or `90` seconds)")]
    Empty,
    #[error("`{0}` is not a duration: write numbers with units, e.g. `3d`, `12h`, `1h30m`, `500ms`")]
    Malformed(String),
    #[error("`{unit}` is not a unit of time (use ms, s, m, h, d or w)")]
    Unit { unit: String },
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

impl Span {
    pub fn as_millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Self, SpanError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SpanError::Empty);
        }
        if let Ok(seconds) = text.parse::<u64>() {
            return Ok(Self(Duration::from_secs(seconds)));
        }
        let malformed = || SpanError::Malformed(text.to_owned());
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let number: u64 = rest[..digits].parse().map_err(|_| malformed())?;
            rest = rest[digits..].trim_start();
            let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let unit_ms: u64 = match &rest[..letters] {
                "ms" | "msec" | "millis" | "milliseconds" => 1,
                "s" | "sec" | "secs" | "second" | "seconds" => 1000,
                "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
                "d" | "day" | "days" => 86_400_000,
                "w" | "week" | "weeks" => 604_800_000,
                "" => return Err(malformed()),
                unit => return Err(SpanError::Unit { unit: unit.to_owned() }),
            };
            let ms = number.checked_mul(unit_ms).ok_or_else(|| SpanError::Overflow(text.to_owned()))?;
            total = total.checked_add(Duration::from_millis(ms)).ok_or_else(|| SpanError::Overflow(text.to_owned()))?;
            rest = rest[letters..].trim_start();
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Span {
    /// Milliseconds, which parse back to the same span.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_the_way_people_write_them() {
        let ms = |text: &str| text.parse::<Span>().map(Span::as_millis);
        assert_eq!(ms("3d"), Ok(3 * 86_400_000));
        assert_eq!(ms("10m"), Ok(600_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("2 weeks"), Ok(2 * 604_800_000));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("90"), Ok(90_000));
        assert_eq!(ms(" 7 days "), Ok(7 * 86_400_000));
        let span: Span = "1h".parse().unwrap();
        assert_eq!(span.to_string().parse::<Span>(), Ok(span));
    }

    #[test]
    fn malformed_spans_say_what_is_wrong() {
        assert_eq!("".parse::<Span>(), Err(SpanError::Empty));
        assert_eq!("3 fortnights".parse::<Span>(), Err(SpanError::Unit { unit: "fortnights".into() }));
        assert!(matches!("d3".parse::<Span>(), Err(SpanError::Malformed(_))));
        assert!(matches!("-5s".parse::<Span>(), Err(SpanError::Malformed(_))));
        assert!(matches!("99999999999999999999d".parse::<Span>(), Err(SpanError::Malformed(_))));
        assert!(matches!("999999999999999w".parse::<Span>(), Err(SpanError::Overflow(_))));
    }
}
