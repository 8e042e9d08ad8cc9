use std::ops::Deref;
use std::sync::Arc;

use mxgate_bridge::DeviceStates;
use mxgate_bridge::network::sim::SimNetwork;

use crate::auth::AuthThrottle;
use crate::bridge_client::BridgeClient;
use crate::config::ApiConfig;
use crate::db::Db;
use crate::devices::Tickets;
use crate::limits::Limits;
use crate::matrix::Homeserver;
use crate::messages::SendStatuses;
use crate::outbound::{AddressPolicy, Outbound};

/// Everything a handler can reach; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: ApiConfig,
    pub db: Db,
    pub homeserver: Homeserver,
    pub bridge: BridgeClient,
    pub throttle: AuthThrottle,
    pub limits: Limits,
    pub tickets: Tickets,
    pub send_statuses: SendStatuses,
    /// Requests to URLs API users gave (webhook receivers), behind the address guard.
    pub outbound: Outbound,
    /// Wakes the webhook delivery worker when deliveries are queued.
    pub deliveries: Arc<tokio::sync::Notify>,
    /// Where each linked device stands, for `/health`.
    pub devices: DeviceStates,
    /// The simulated network, when mxgate runs on it; enables `/sim/*`.
    pub sim: Option<Arc<SimNetwork>>,
}

impl AppState {
    pub fn new(config: ApiConfig, db: Db, devices: DeviceStates, sim: Option<Arc<SimNetwork>>) -> Self {
        let homeserver = Homeserver::new(config.homeserver.clone());
        let bridge = BridgeClient::new(&config.provisioning);
        let throttle = AuthThrottle::per_minute(config.auth_failures_per_minute);
        let limits = Limits::new(&config);
        let tickets = Tickets::new(&config.ticket_key);
        let send_statuses = SendStatuses::default();
        send_statuses.listen(&db);
        let deliveries = Arc::new(tokio::sync::Notify::new());
        let policy = AddressPolicy {
            allow_loopback: config.webhook_allow_loopback,
            allow_private: config.webhook_allow_private,
        };
        let outbound = Outbound::new(policy, crate::webhooks::delivery::RECEIVER_TIMEOUT);
        Self(Arc::new(Inner {
            config,
            db,
            homeserver,
            bridge,
            throttle,
            limits,
            tickets,
            send_statuses,
            outbound,
            deliveries,
            devices,
            sim,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
