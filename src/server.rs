//! Running the API, and the bridge beside it, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mxgate_bridge::Bridge;
use mxgate_bridge::config::{BridgeConfig, NetworkKind};
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
    let mut sim = None;
    let mut logged_out = None;
    let mut running = None;
    if let Some(BridgePart { config: bridge_config, listener: bridge_listener }) = bridge {
        let inbox = Inbox::new(db.clone());
        let network: Arc<dyn Network> = match bridge_config.network {
            NetworkKind::Sim => {
                let interval = Duration::from_millis(bridge_config.sim_qr_interval_ms);
                let network = Arc::new(SimNetwork::new(interval, inbox.clone()));
                sim = Some(network.clone());
                network
            }
            NetworkKind::Whatsapp => {
                Arc::new(WhatsAppNetwork::new(db.clone(), bridge_config.whatsapp.clone(), inbox.clone()))
            }
        };
        running = Some(network.clone());
        let server = config.homeserver.server.clone();
        let provisioning = config.provisioning.clone();
        let bridge = Bridge::start(bridge_config, provisioning, &server, db.clone(), network, inbox).await?;
        logged_out = bridge.take_logged_out();
        tracing::info!(addr = %bridge_listener.local_addr()?, "bridge listening");
        let router = bridge.router();
        tokio::spawn(async move { axum::serve(bridge_listener, router).await });
        bridge.announce();
    }
    let state = AppState::new(config, db, running, sim);
    if let Some(devices) = logged_out {
        tokio::spawn(crate::devices::logged_out::report(state.clone(), devices));
    }
    let deliveries = crate::webhooks::delivery::spawn_worker(state.clone());
    state.homeserver.announce();
    crate::tokens::lifecycle::spawn_sweeper(state.clone());
    crate::appservice::catch_up::spawn(state.clone());
    let (router, _) = routes::app(state);
    tracing::info!(addr = %listener.local_addr()?, "API listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    deliveries.stop().await;
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
