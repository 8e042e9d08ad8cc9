//! Runtime configuration. Every field is a clap flag with an environment variable,
//! so `.env`, the environment and the command line all work the same way.

use std::net::SocketAddr;
use std::path::PathBuf;

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

    /// Failed Basic-auth attempts one address may make per minute before getting 429.
    #[arg(long, env = "MXGATE_AUTH_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub auth_failures_per_minute: u32,

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

    /// Delivery attempts per webhook event before it is given up.
    #[arg(long, env = "MXGATE_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8)]
    pub webhook_max_attempts: u32,

    /// First retry delay of webhook deliveries, in milliseconds; it doubles per attempt, with jitter.
    #[arg(long, env = "MXGATE_WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    pub webhook_retry_base_ms: u64,
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
