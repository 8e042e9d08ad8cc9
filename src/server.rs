//! Running the API, and the bridge beside it, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mxgate_bridge::Bridge;
use mxgate_bridge::config::{BridgeConfig, NetworkKind, ProvisioningConfig, ServerConfig};
use mxgate_bridge::inbox::Inbox;
use mxgate_bridge::network::Network;
use mxgate_bridge::network::sim::SimNetwork;
use mxgate_bridge::network::whatsapp::WhatsAppNetwork;
use tokio::net::TcpListener;

use crate::config::ApiConfig;
use crate::db::Db;
use crate::routes;
use crate::state::AppState;

/// The bridge half of `serve`: its configuration and the listener for its appservice.
pub struct BridgePart {
    pub config: BridgeConfig,
    pub listener: TcpListener,
}

/// Starts the bridge and serves its appservice and provisioning API on its listener.
async fn start_bridge(
    part: BridgePart,
    server: &ServerConfig,
    provisioning: ProvisioningConfig,
    db: &Db,
) -> anyhow::Result<(Bridge, Option<Arc<SimNetwork>>)> {
    let BridgePart { config, listener } = part;
    let inbox = Inbox::new(db.clone());
    let mut sim = None;
    let network: Arc<dyn Network> = match config.network {
        NetworkKind::Sim => {
            let qr_interval = Duration::from_millis(config.sim_qr_interval_ms);
            let network = Arc::new(SimNetwork::new(qr_interval, config.reject_calls, inbox.clone()));
            sim = Some(network.clone());
            network
        }
        NetworkKind::Whatsapp => {
            Arc::new(WhatsAppNetwork::new(db.clone(), config.whatsapp.clone(), config.reject_calls, inbox.clone()))
        }
    };
    let bridge = Bridge::start(config, provisioning, server, db.clone(), network, inbox).await?;
    tracing::info!(addr = %listener.local_addr()?, "bridge listening");
    let router = bridge.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    bridge.announce();
    Ok((bridge, sim))
}

/// Serves the bridge alone (`mxgate bridge`) until `shutdown` completes, for APIs that
/// run elsewhere on the same database. The database must be migrated.
pub async fn serve_bridge(
    part: BridgePart,
    server: ServerConfig,
    provisioning: ProvisioningConfig,
    db: Db,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    if part.config.network == NetworkKind::Sim {
        anyhow::bail!("the sim network runs inside `mxgate serve`, whose API drives it at /sim/*");
    }
    let (bridge, _) = start_bridge(part, &server, provisioning, &db).await?;
    if let Some(changes) = bridge.take_device_changes() {
        // The APIs' delivery workers find the queued announcement on their next round.
        let wake = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(crate::devices::state_events::report(db.clone(), wake, changes));
    }
    shutdown.await;
    bridge.stop().await;
    Ok(())
}

/// Serves the API (and the bridge, when given) until `shutdown` completes.
/// The database must be migrated.
pub async fn serve(
    listener: TcpListener,
    config: ApiConfig,
    bridge: Option<BridgePart>,
    db: Db,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::health::prometheus();
    let (mut sim, mut device_changes, mut running) = (None, None, None);
    let mut devices = mxgate_bridge::DeviceStates::stored(db.clone());
    if let Some(part) = bridge {
        let provisioning = config.provisioning.clone();
        let (bridge, network) = start_bridge(part, &config.homeserver.server, provisioning, &db).await?;
        device_changes = bridge.take_device_changes();
        devices = bridge.devices();
        sim = network;
        running = Some(bridge);
    }
    let state = AppState::new(config, db, devices, sim);
    if let Some(changes) = device_changes {
        tokio::spawn(crate::devices::state_events::report(state.db.clone(), state.deliveries.clone(), changes));
    }
    let deliveries = crate::webhooks::delivery::spawn_worker(state.clone());
    state.homeserver.announce();
    crate::tokens::lifecycle::spawn_sweeper(state.clone());
    crate::appservice::catch_up::spawn(state.clone());
    crate::messages::late::spawn(state.clone());
    let (router, _) = routes::app(state);
    tracing::info!(addr = %listener.local_addr()?, "API listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    deliveries.stop().await;
    if let Some(bridge) = running {
        bridge.stop().await;
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutting down");
}
