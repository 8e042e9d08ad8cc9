//! mxgate's appservice bridge between Matrix and WhatsApp, shaped like mautrix's
//! bridgev2: a core between the Matrix side (`appservice`, `provisioning`, `commands`)
//! and one network connector (`network::{sim, …}`), with portals, puppets and logins
//! as their own parts.

mod appservice;
mod commands;
pub mod config;
pub mod content;
mod core;
pub mod db;
mod groups;
pub mod ids;
pub mod inbox;
mod incoming;
pub mod lease;
mod login;
pub mod matrix;
pub mod media;
pub mod network;
mod numbers;
pub mod outbox;
mod portal;
pub mod provisioning;
mod puppet;
pub mod qr;
mod queue;
pub mod secret;
mod signals;
pub mod store;
pub mod wake;

use std::sync::Arc;

use axum::Router;
use tokio::sync::mpsc;

pub use crate::appservice::{HsTokenError, TRANSACTION_BODY_LIMIT, check_hs_token, transaction_key};
use crate::config::{BridgeConfig, ProvisioningConfig, ServerConfig};
pub use crate::content::MESSAGE_STATUS;

/// Where a bridged event names its network source (device, chat, message id): events
/// with it came from the network, whoever sent them in Matrix.
pub const SOURCE_FIELD: &str = "fi.mxgate.source";

/// On a redaction: the message is deleted from Matrix only (WhatsApp's "delete for me"
/// as mxgate keeps it), so the send queue does not revoke it on the network.
pub const LOCAL_ONLY_FIELD: &str = "fi.mxgate.local_only";
use crate::core::Core;
pub use crate::core::{BridgeError, DeviceChange};
use crate::db::Db;
use crate::inbox::Inbox;
use crate::network::Network;
pub use crate::outbox::{NETWORK_ID_FIELD, SEND_STATUS};

/// Where linked devices stand: the process that runs one knows, the others read what it
/// last wrote to the database.
#[derive(Clone)]
pub struct DeviceStates {
    db: Db,
    local: Option<Arc<Core>>,
}

impl DeviceStates {
    /// For a process without a bridge of its own (`mxgate api`).
    pub fn stored(db: Db) -> Self {
        Self { db, local: None }
    }

    pub async fn state(&self, account: &network::AccountId) -> Result<network::ConnectionState, sqlx::Error> {
        match &self.local {
            Some(core) => core.device_state(account).await,
            None => lease::stored_state(&self.db, account.as_str()).await,
        }
    }
}

/// A running bridge: its HTTP surface and the task relaying network events.
pub struct Bridge {
    core: Arc<Core>,
    device_changes: std::sync::Mutex<Option<mpsc::UnboundedReceiver<DeviceChange>>>,
}

impl Bridge {
    /// Restores linked devices, registers the bot (now or once the homeserver answers),
    /// and starts relaying: `inbox` to Matrix, the send queue to the network, and the
    /// network's other events.
    pub async fn start(
        config: BridgeConfig,
        provisioning: ProvisioningConfig,
        server: &ServerConfig,
        db: Db,
        network: Arc<dyn Network>,
        inbox: Inbox,
    ) -> Result<Self, BridgeError> {
        let (device_changes, receiver) = mpsc::unbounded_channel();
        let core = Arc::new(Core::new(config, provisioning, server, db, network, device_changes));
        core.start().await?;
        if let Some(events) = core.network.take_events() {
            incoming::spawn_relay(core.clone(), events);
        }
        inbox::spawn_relay(core.clone(), inbox);
        outbox::spawn_sender(core.clone());
        tracing::info!(network = core.network.name(), bot = %core.bot, "bridge started");
        Ok(Self { core, device_changes: std::sync::Mutex::new(Some(receiver)) })
    }

    /// The state changes of the devices this process runs, and the devices the network
    /// logs out, from now on (and any since start-up); taken once.
    pub fn take_device_changes(&self) -> Option<mpsc::UnboundedReceiver<DeviceChange>> {
        self.device_changes.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Has the homeserver ping the bridge's appservice once it listens (see
    /// [`matrix::MatrixClient::announce_appservice`]).
    pub fn announce(&self) {
        self.core.matrix.announce_appservice(self.core.config.bridge_appservice_id.clone());
    }

    /// Stops every client this process runs and frees their leases, so the other
    /// processes on the database take the devices at once (a graceful stop).
    pub async fn stop(&self) {
        lease::hand_back(&self.core).await;
    }

    /// Where each device stands, wherever it runs.
    pub fn devices(&self) -> DeviceStates {
        DeviceStates { db: self.core.db.clone(), local: Some(self.core.clone()) }
    }

    /// The appservice and provisioning endpoints, to serve on the bridge's address.
    pub fn router(&self) -> Router {
        appservice::router().merge(provisioning::router()).with_state(self.core.clone())
    }
}
