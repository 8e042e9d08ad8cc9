//! The bridge core: what sits between the Matrix side and a network connector.

use std::sync::Arc;
use std::time::Duration;

use ruma::{OwnedUserId, UserId};
use tokio::sync::{Mutex, mpsc};

use crate::config::{BridgeConfig, ProvisioningConfig, ServerConfig};
use crate::db::Db;
use crate::lease::{self, Leases};
use crate::login::LoginProcesses;
use crate::matrix::{MatrixClient, MatrixError};
use crate::network::{AccountId, ConnectionState, Network, NetworkError};
use crate::outbox::Outbox;
use crate::queue;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Id(#[from] crate::ids::IdError),
    #[error("{0} logins are in progress for this identity already; finish or cancel one first")]
    TooManyLogins(usize),
}

impl BridgeError {
    /// Whether trying again later may succeed: the homeserver, the database or the
    /// device's connection is unavailable for now, as opposed to refusing the request.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Matrix(MatrixError::Refused { status, .. }) => *status == 429 || *status >= 500,
            Self::Matrix(_) | Self::Database(_) => true,
            Self::Network(error) => matches!(error, NetworkError::Disconnected),
            Self::Invalid(_) | Self::Id(_) | Self::TooManyLogins(_) => false,
        }
    }
}

/// A device's connection changed state here (or the network logged it out, removed on
/// the phone), for whoever reports it.
#[derive(Debug, Clone)]
pub struct DeviceChange {
    pub account: AccountId,
    /// The Matrix user who linked it.
    pub owner: String,
    pub state: ConnectionState,
    /// Unix milliseconds.
    pub at_ms: i64,
}

pub struct Core {
    pub config: BridgeConfig,
    pub provisioning: ProvisioningConfig,
    pub server_name: String,
    pub db: Db,
    pub matrix: MatrixClient,
    pub network: Arc<dyn Network>,
    pub bot: OwnedUserId,
    pub logins: LoginProcesses,
    /// Serialises portal creation so two events of a new chat make one room.
    pub portal_creation: Mutex<()>,
    /// Buffered until the reporter takes the receiving end, so none is missed at start-up.
    pub device_changes: mpsc::UnboundedSender<DeviceChange>,
    pub outbox: Outbox,
    /// Which devices this process runs.
    pub leases: Leases,
    /// The portals whose owner is typing in a Matrix client now, as last pushed.
    pub typing: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Which numbers the devices this process runs found on WhatsApp lately.
    pub numbers: crate::numbers::CheckedNumbers,
}

impl Core {
    pub fn new(
        config: BridgeConfig,
        provisioning: ProvisioningConfig,
        server: &ServerConfig,
        db: Db,
        network: Arc<dyn Network>,
        device_changes: mpsc::UnboundedSender<DeviceChange>,
    ) -> Self {
        let matrix = MatrixClient::new(server.homeserver_url.clone(), config.bridge_as_token.clone(), "bridge");
        let leases = Leases::new(db.clone(), config.advertised_url(), Duration::from_secs(config.lease_secs));
        let bot = UserId::parse(format!("@{}:{}", config.bot_localpart, server.server_name))
            .expect("the bot localpart and server name make a valid user id");
        Self {
            server_name: server.server_name.clone(),
            db,
            matrix,
            network,
            bot,
            logins: LoginProcesses::default(),
            portal_creation: Mutex::new(()),
            device_changes,
            outbox: Outbox::default(),
            leases,
            typing: Default::default(),
            numbers: Default::default(),
            config,
            provisioning,
        }
    }

    pub fn puppet_id(&self, phone: &str) -> OwnedUserId {
        UserId::parse(format!("@{}{phone}:{}", self.config.puppet_prefix, self.server_name))
            .expect("digits make a valid localpart")
    }

    /// Where `account` stands: as its client says if it runs here, else as the process
    /// that runs it last wrote.
    pub async fn device_state(&self, account: &AccountId) -> Result<ConnectionState, sqlx::Error> {
        match self.leases.runs(account) {
            true => Ok(self.network.state(account)),
            false => lease::stored_state(&self.db, account.as_str()).await,
        }
    }

    pub fn is_puppet(&self, user: &UserId) -> bool {
        user.server_name() == self.server_name.as_str() && user.localpart().starts_with(&self.config.puppet_prefix)
    }

    /// Reconnects this process's share of the devices linked earlier (see [`crate::lease`])
    /// and registers the bot. Neither needs the other: with the homeserver down, devices
    /// connect (their messages wait in the inbox) and the bot is registered once the
    /// homeserver answers. A device that cannot be restored is tried again on each round
    /// of the lease keeper.
    pub async fn start(self: &Arc<Self>) -> Result<(), BridgeError> {
        lease::keep(self).await?;
        tracing::info!(process = %self.leases.process(), "linked devices of this process reconnecting");
        lease::spawn_keeper(self.clone());
        if let Err(error) = self.register_bot().await {
            tracing::warn!(error = %error, "homeserver not ready; the bridge keeps trying to register its bot");
            let core = self.clone();
            queue::keep_trying(move || {
                let core = core.clone();
                async move {
                    let registered = core.register_bot().await;
                    if let Err(error) = &registered {
                        tracing::warn!(error = %error, "bridge bot not registered yet");
                    }
                    registered.is_ok()
                }
            });
        }
        Ok(())
    }

    async fn register_bot(&self) -> Result<(), BridgeError> {
        self.matrix.ensure_registered(&self.config.bot_localpart).await?;
        self.matrix.set_displayname(&self.bot, "WhatsApp bridge").await?;
        tracing::info!(bot = %self.bot, "bridge bot registered");
        Ok(())
    }
}
