//! The bridge core: what sits between the Matrix side and a network connector.

use std::sync::Arc;

use ruma::{OwnedUserId, UserId};
use tokio::sync::{Mutex, mpsc};

use crate::config::{BridgeConfig, ProvisioningConfig, ServerConfig};
use crate::db::Db;
use crate::login::LoginProcesses;
use crate::matrix::{MatrixClient, MatrixError};
use crate::network::{AccountId, Network, NetworkError};
use crate::store;

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

    /// Registers the bot and reconnects every device linked earlier.
    pub async fn start(&self) -> Result<(), BridgeError> {
        self.matrix.ensure_registered(&self.config.bot_localpart).await?;
        self.matrix.set_displayname(&self.bot, "WhatsApp bridge").await?;
        let logins = store::connected_logins(&self.db).await?;
        let network = &self.network;
        let results = futures::future::join_all(logins.iter().map(|login| async move {
            let account: AccountId = login.account_id.parse()?;
            network.connect(&account).await.map_err(BridgeError::from)
        }))
        .await;
        let mut restored = 0;
        for (login, result) in logins.iter().zip(results) {
            match result {
                Ok(()) => restored += 1,
                Err(e) => tracing::warn!(device = %login.account_id, error = %e, "device could not be restored"),
            }
        }
        tracing::info!(restored, failed = logins.len() - restored, "linked devices reconnected");
        Ok(())
    }
}
