mod cli;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use clap::Args;
use mxgate::config::{ApiConfig, BridgeConfig, DatabaseConfig, ProvisioningConfig, ServerConfig, SetupConfig};
use mxgate::db::Db;
use mxgate::{server, setup};

/// mxgate — a REST API for WhatsApp whose plumbing is Matrix.
///
/// Every flag can also be given as the environment variable shown in its help, or in `.env`.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Client(cli::Command),
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Run the API and the bridge in one process.
    Serve(Box<ServeArgs>),
    /// Run the HTTP API only (the bridge runs elsewhere, at MXGATE_BRIDGE_URL).
    Api(Box<ApiConfig>),
    /// Run the appservice bridge only, for `mxgate api` processes elsewhere on the same
    /// database (the `whatsapp` network; `sim` runs inside `serve`).
    Bridge(Box<BridgeArgs>),
    /// Apply the database migrations and exit.
    Migrate(DatabaseConfig),
    /// Write `.env` (keeping existing values), render the homeserver config and the
    /// two appservice registrations, and migrate the database.
    Setup {
        #[command(flatten)]
        setup: SetupConfig,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

#[derive(Args)]
struct BridgeArgs {
    #[command(flatten)]
    database: DatabaseConfig,
    #[command(flatten)]
    server: ServerConfig,
    #[command(flatten)]
    provisioning: ProvisioningConfig,
    #[command(flatten)]
    bridge: BridgeConfig,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    api: ApiConfig,
    #[command(flatten)]
    bridge: BridgeConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    // `.env` fills in what the environment does not already set.
    let _ = dotenvy::dotenv();
    let command = match Cli::parse().command {
        // A person reads what these print; the server's log stays out of it.
        Command::Client(command) => return Ok(cli::run(command).await),
        Command::Server(command) => command,
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("MXGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let finished = match command {
        ServerCommand::Serve(args) => {
            let ServeArgs { api, bridge } = *args;
            let listener = TcpListener::bind(bridge.bridge_listen_addr)
                .await
                .with_context(|| format!("binding {}", bridge.bridge_listen_addr))?;
            run_api(api, Some(server::BridgePart { config: bridge, listener })).await
        }
        ServerCommand::Api(config) => run_api(*config, None).await,
        ServerCommand::Bridge(args) => {
            let BridgeArgs { database, server, provisioning, bridge } = *args;
            let db = migrated(&database.database_url).await?;
            let listener = TcpListener::bind(bridge.bridge_listen_addr)
                .await
                .with_context(|| format!("binding {}", bridge.bridge_listen_addr))?;
            let part = server::BridgePart { config: bridge, listener };
            server::serve_bridge(part, server, provisioning, db, server::shutdown_signal()).await
        }
        ServerCommand::Migrate(database) => {
            migrated(&database.database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        ServerCommand::Setup { setup, database } => {
            setup::run(&setup)?;
            // Setup may just have written DATABASE_URL's default into .env; read it again.
            let _ = dotenvy::from_path_override(&setup.env_file);
            let url = std::env::var("DATABASE_URL").unwrap_or(database.database_url);
            migrated(&url).await?;
            if let Ok(synapse) = std::env::var("SYNAPSE_DATABASE_URL") {
                setup::create_synapse_database(&url, &synapse).await?;
            }
            tracing::info!(env_file = %setup.env_file.display(), "setup complete");
            Ok(())
        }
    };
    finished.map(|()| ExitCode::SUCCESS)
}

async fn migrated(url: &str) -> anyhow::Result<Db> {
    let db = Db::connect(url).await.context("connecting to the database")?;
    db.migrate().await.context("migrating the database")?;
    Ok(db)
}

async fn run_api(config: ApiConfig, bridge: Option<server::BridgePart>) -> anyhow::Result<()> {
    let db = migrated(&config.database.database_url).await?;
    let listener =
        TcpListener::bind(config.listen_addr).await.with_context(|| format!("binding {}", config.listen_addr))?;
    server::serve(listener, config, bridge, db, server::shutdown_signal()).await
}
