//! The bridge core: what sits between the Matrix side and a network connector.

use std::sync::Arc;

use ruma::{OwnedUserId, UserId};
use tokio::sync::{Mutex, mpsc};

use crate::config::{BridgeConfig, ProvisioningConfig, ServerConfig};
use crate::db::Db;
use crate::login::LoginProcesses;
use crate::matrix::{MatrixClient, MatrixError};
use crate::network::{AccountId, Network, NetworkError};
use crate::outbox::Outbox;
use crate::{queue, store};

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

/// A device the network logged out (removed on the phone), for whoever reports it.
#[derive(Debug, Clone)]
pub struct DeviceLoggedOut {
    pub account: AccountId,
    /// The Matrix user who linked it.
    pub owner: String,
    /// Unix seconds.
    pub at: i64,
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
    pub logged_out: mpsc::UnboundedSender<DeviceLoggedOut>,
    pub outbox: Outbox,
}

impl Core {
    pub fn new(
        config: BridgeConfig,
        provisioning: ProvisioningConfig,
        server: &ServerConfig,
        db: Db,
        network: Arc<dyn Network>,
        logged_out: mpsc::UnboundedSender<DeviceLoggedOut>,
    ) -> Self {
        let matrix = MatrixClient::new(server.homeserver_url.clone(), config.bridge_as_token.clone());
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
            logged_out,
            outbox: Outbox::default(),
            config,
            provisioning,
        }
    }

    pub fn puppet_id(&self, phone: &str) -> OwnedUserId {
        UserId::parse(format!("@{}{phone}:{}", self.config.puppet_prefix, self.server_name))
            .expect("digits make a valid localpart")
    }

    pub fn is_puppet(&self, user: &UserId) -> bool {
        user.server_name() == self.server_name.as_str() && user.localpart().starts_with(&self.config.puppet_prefix)
    }

    /// Reconnects every device linked earlier and registers the bot. Neither needs the
    /// other: with the homeserver down, devices connect (their messages wait in the inbox)
    /// and the bot is registered once the homeserver answers. A device that cannot be
    /// restored is tried again with backoff.
    pub async fn start(self: &Arc<Self>) -> Result<(), BridgeError> {
        let logins = store::connected_logins(&self.db).await?;
        let results = futures::future::join_all(logins.iter().map(|login| self.restore(&login.account_id))).await;
        let restored = results.iter().filter(|ok| **ok).count();
        tracing::info!(restored, failed = logins.len() - restored, "linked devices reconnected");
        for (login, restored) in logins.into_iter().zip(results) {
            if !restored {
                let core = self.clone();
                queue::keep_trying(move || {
                    let (core, account) = (core.clone(), login.account_id.clone());
                    async move { core.restore(&account).await }
                });
            }
        }
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

    /// One attempt to reconnect a linked device; says whether it is under way.
    async fn restore(&self, account_id: &str) -> bool {
        let account: AccountId = match account_id.parse() {
            Ok(account) => account,
            Err(error) => {
                tracing::error!(device = %account_id, error = %error, "a stored device id is not a phone number");
                return true;
            }
        };
        match self.network.connect(&account).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(device = %account, error = %error, "device could not be restored; will retry");
                false
            }
        }
    }
}
