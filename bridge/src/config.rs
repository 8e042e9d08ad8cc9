//! The bridge's configuration; every flag has an environment variable.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use url::Url;

use crate::secret::Secret;

/// Where mxgate's store lives (shared by the API and the bridge).
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// sqlx URL of mxgate's store: `sqlite://path` or `postgres://user@host/db`.
    // Its value stays out of `--help`: a PostgreSQL URL may carry a password.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/mxgate.db", hide_env_values = true)]
    pub database_url: String,
}

/// The homeserver both the API and the bridge talk to.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Client-server API base URL of the homeserver.
    #[arg(long, env = "MXGATE_HOMESERVER_URL", default_value = "http://127.0.0.1:8008")]
    pub homeserver_url: Url,

    /// The homeserver's server name (the part after `:` in user ids).
    #[arg(long, env = "MXGATE_SERVER_NAME", default_value = "localhost")]
    pub server_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkKind {
    /// The real WhatsApp network.
    Whatsapp,
    /// The in-process simulator, for tests and offline demos only.
    Sim,
}

#[derive(Debug, Clone, Args)]
pub struct BridgeConfig {
    /// Address of the bridge's appservice and provisioning API.
    #[arg(long, env = "MXGATE_BRIDGE_LISTEN_ADDR", default_value = "127.0.0.1:29318")]
    pub bridge_listen_addr: SocketAddr,

    /// Where the APIs of the other mxgate processes on this database reach this bridge,
    /// for a device it runs. Default: `http://` and the listen address (`127.0.0.1` for
    /// an unspecified one), which serves processes on one machine.
    #[arg(long, env = "MXGATE_BRIDGE_ADVERTISE_URL")]
    pub bridge_advertise_url: Option<Url>,

    /// How long a process's hold on a device lasts unless renewed (every third of it), in
    /// seconds: the longest a device stays without a client when its process dies.
    #[arg(long, env = "MXGATE_LEASE_SECS", default_value_t = 15)]
    pub lease_secs: u64,

    /// `as_token` of the bridge's appservice registration.
    #[arg(long, env = "MXGATE_BRIDGE_AS_TOKEN", hide_env_values = true)]
    pub bridge_as_token: Secret,

    /// `hs_token` of the bridge's appservice registration.
    #[arg(long, env = "MXGATE_BRIDGE_HS_TOKEN", hide_env_values = true)]
    pub bridge_hs_token: Secret,

    /// `id` of the bridge's appservice registration (for the homeserver's ping at start).
    #[arg(long, env = "MXGATE_BRIDGE_APPSERVICE_ID", default_value = "mxgate-whatsapp")]
    pub bridge_appservice_id: String,

    /// Localpart of the bridge bot.
    #[arg(long, env = "MXGATE_BRIDGE_BOT", default_value = "whatsappbot")]
    pub bot_localpart: String,

    /// Localpart prefix of puppets; must match the bridge registration's user namespace.
    #[arg(long, env = "MXGATE_PUPPET_PREFIX", default_value = "whatsapp_")]
    pub puppet_prefix: String,

    /// Which network to bridge. `sim` is a simulator for tests and demos.
    #[arg(long, env = "MXGATE_NETWORK", value_enum, default_value = "whatsapp")]
    pub network: NetworkKind,

    /// Logins (QR or pairing code) one Matrix identity may have in progress at once: each
    /// is a WhatsApp client until it ends.
    #[arg(long, env = "MXGATE_MAX_LOGINS_PER_IDENTITY", default_value_t = 3)]
    pub max_logins_per_identity: usize,

    /// Post each send's outcome into its room as a `com.beeper.message_send_status` event,
    /// for Matrix clients that show it (as mautrix's `message_status_events`). Off by
    /// default: the API reads outcomes from the send queue, and each status event costs
    /// the homeserver one more event persisted and pushed.
    #[arg(long, env = "MXGATE_MESSAGE_STATUS_EVENTS", default_value_t = false)]
    pub message_status_events: bool,

    /// Turn down every WhatsApp call a device is offered, as it rings (Evolution API's
    /// `reject_call`). Either way the call is told in its chat and to webhooks (`call`).
    #[arg(long, env = "MXGATE_REJECT_CALLS", default_value_t = false)]
    pub reject_calls: bool,

    /// How long each simulated QR code lives, in milliseconds.
    #[arg(long, env = "MXGATE_SIM_QR_INTERVAL_MS", default_value_t = 20_000)]
    pub sim_qr_interval_ms: u64,

    #[command(flatten)]
    pub whatsapp: WhatsAppConfig,
}

impl BridgeConfig {
    /// [`BridgeConfig::bridge_advertise_url`] or its default.
    pub fn advertised_url(&self) -> Url {
        self.bridge_advertise_url.clone().unwrap_or_else(|| {
            let mut addr = self.bridge_listen_addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}").parse().expect("an address makes a URL")
        })
    }
}

/// The `whatsapp` connector.
#[derive(Debug, Clone, clap::Args)]
pub struct WhatsAppConfig {
    /// The WhatsApp server's WebSocket address. Unset means WhatsApp's own; set it only
    /// to reach a protocol simulator in tests.
    #[arg(long = "whatsapp-url", env = "MXGATE_WHATSAPP_URL")]
    pub url: Option<String>,

    /// Where whatsapp-rust's HTTPS requests (media, version lookup) go instead, as
    /// `http://host:port`: the path is kept, scheme and host are replaced. Set it only to
    /// reach a protocol simulator in tests.
    #[arg(long = "whatsapp-http-url", env = "MXGATE_WHATSAPP_HTTP_URL")]
    pub http_url: Option<String>,

    /// The least time between two messages a device sends, in milliseconds, so that a
    /// burst from the API does not get the account flagged as a spammer.
    #[arg(long = "whatsapp-send-interval-ms", env = "MXGATE_WHATSAPP_SEND_INTERVAL_MS", default_value_t = 1_000)]
    pub send_interval_ms: u64,

    /// How long a restored device may stay unconnected before it is reported as `error`
    /// (it keeps retrying with backoff), in milliseconds.
    #[arg(long = "whatsapp-connect-timeout-ms", env = "MXGATE_WHATSAPP_CONNECT_TIMEOUT_MS", default_value_t = 30_000)]
    pub connect_timeout_ms: u64,
}

/// The shared secret of the bridge's provisioning API: the bridge checks it, the API presents it.
#[derive(Debug, Clone, Args)]
pub struct ProvisioningConfig {
    #[arg(long, env = "MXGATE_PROVISIONING_SECRET", hide_env_values = true)]
    pub provisioning_secret: Secret,

    /// Where the API reaches the bridge's provisioning API.
    #[arg(long, env = "MXGATE_BRIDGE_URL", default_value = "http://127.0.0.1:29318")]
    pub bridge_url: Url,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Both {
        #[command(flatten)]
        bridge: BridgeConfig,
        #[command(flatten)]
        provisioning: ProvisioningConfig,
    }

    #[test]
    fn a_printed_configuration_shows_no_secret() {
        let secrets = ["as-token-value", "hs-token-value", "provisioning-value"];
        let both = Both::parse_from([
            "mxgate",
            "--bridge-as-token",
            secrets[0],
            "--bridge-hs-token",
            secrets[1],
            "--provisioning-secret",
            secrets[2],
        ]);
        let printed = format!("{:?} {:?}", both.bridge, both.provisioning);
        assert!(secrets.iter().all(|s| !printed.contains(s)), "{printed}");
        assert_eq!(both.bridge.bridge_as_token.expose(), secrets[0]);
    }
}
