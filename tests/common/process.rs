//! mxgate as a child process, configured only through its environment, as in production.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mxgate::config::{ApiConfig, BridgeConfig};

pub fn environment(api: &ApiConfig, bridge: &BridgeConfig) -> Vec<(&'static str, String)> {
    let hs = &api.homeserver;
    let simulator =
        [("MXGATE_WHATSAPP_URL", &bridge.whatsapp.url), ("MXGATE_WHATSAPP_HTTP_URL", &bridge.whatsapp.http_url)];
    let mut env = vec![
        ("LISTEN_ADDR", api.listen_addr.to_string()),
        ("DATABASE_URL", api.database.database_url.clone()),
        ("CLIENT_ID", api.client_id.clone()),
        ("CLIENT_SECRET", api.client_secret.expose().to_owned()),
        ("MXGATE_METRICS_TOKEN", api.metrics_token.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default()),
        ("MXGATE_HOMESERVER_URL", hs.server.homeserver_url.to_string()),
        ("MXGATE_SERVER_NAME", hs.server.server_name.clone()),
        ("MXGATE_API_AS_TOKEN", hs.api_as_token.expose().to_owned()),
        ("MXGATE_API_HS_TOKEN", hs.api_hs_token.expose().to_owned()),
        ("MXGATE_API_APPSERVICE_ID", hs.api_appservice_id.clone()),
        (
            "MXGATE_REGISTRATION_SHARED_SECRET",
            hs.registration_shared_secret.as_ref().map(|s| s.expose().to_owned()).unwrap_or_default(),
        ),
        ("MXGATE_IDENTITY_PREFIX", hs.identity_prefix.clone()),
        ("MXGATE_PROVISIONING_SECRET", api.provisioning.provisioning_secret.expose().to_owned()),
        ("MXGATE_BRIDGE_URL", api.provisioning.bridge_url.to_string()),
        ("MXGATE_TICKET_KEY", api.ticket_key.expose().to_owned()),
        ("MXGATE_WEBHOOK_ALLOW_LOOPBACK", api.webhook_allow_loopback.to_string()),
        ("MXGATE_LIMIT_LINKS_PER_HOUR", api.limit_links_per_hour.to_string()),
        ("MXGATE_LIMIT_IDENTITIES_PER_HOUR", api.limit_identities_per_hour.to_string()),
        ("MXGATE_LIMIT_SENDS_PER_MINUTE", api.limit_sends_per_minute.to_string()),
        ("MXGATE_LIMIT_CHECKS_PER_MINUTE", api.limit_checks_per_minute.to_string()),
        ("MXGATE_MAX_LOGINS_PER_IDENTITY", bridge.max_logins_per_identity.to_string()),
        ("MXGATE_WEBHOOK_RETRY_BASE_MS", api.webhook_retry_base_ms.to_string()),
        ("MXGATE_WEBHOOK_RETRY_MAX_DELAY", api.webhook_retry_max_delay.to_string()),
        ("MXGATE_WEBHOOK_RETRY_HORIZON", api.webhook_retry_horizon.to_string()),
        ("MXGATE_WEBHOOK_RETENTION", api.webhook_retention.to_string()),
        ("MXGATE_WEBHOOK_MEDIA", format!("{:?}", api.webhook_media).to_lowercase()),
        ("MXGATE_BRIDGE_LISTEN_ADDR", bridge.bridge_listen_addr.to_string()),
        ("MXGATE_LEASE_SECS", bridge.lease_secs.to_string()),
        ("MXGATE_SEND_TIMEOUT_SECS", api.send_timeout_secs.to_string()),
        ("MXGATE_BRIDGE_AS_TOKEN", bridge.bridge_as_token.expose().to_owned()),
        ("MXGATE_BRIDGE_HS_TOKEN", bridge.bridge_hs_token.expose().to_owned()),
        ("MXGATE_BRIDGE_APPSERVICE_ID", bridge.bridge_appservice_id.clone()),
        ("MXGATE_BRIDGE_BOT", bridge.bot_localpart.clone()),
        ("MXGATE_PUPPET_PREFIX", bridge.puppet_prefix.clone()),
        ("MXGATE_NETWORK", if bridge.whatsapp.url.is_some() { "whatsapp" } else { "sim" }.into()),
        ("MXGATE_WHATSAPP_SEND_INTERVAL_MS", bridge.whatsapp.send_interval_ms.to_string()),
        ("MXGATE_WHATSAPP_CONNECT_TIMEOUT_MS", bridge.whatsapp.connect_timeout_ms.to_string()),
        ("MXGATE_SIM_QR_INTERVAL_MS", bridge.sim_qr_interval_ms.to_string()),
        ("MXGATE_MESSAGE_STATUS_EVENTS", bridge.message_status_events.to_string()),
        ("MXGATE_REJECT_CALLS", bridge.reject_calls.to_string()),
        // whatsapp-rust logs each reconnect attempt as an error; a story provokes them on purpose.
        ("MXGATE_LOG", std::env::var("MXGATE_TEST_LOG").unwrap_or_else(|_| "error,whatsapp_rust=off".into())),
    ];
    env.extend(simulator.into_iter().filter_map(|(name, value)| Some((name, value.clone()?))));
    env
}

/// Starts `mxgate serve` and waits until its API answers (healthy or not: a test may start
/// it with the homeserver down).
pub async fn spawn(env: &[(&'static str, String)], base: &str) -> Child {
    spawn_command("serve", env, &format!("{base}/health")).await
}

/// Starts `mxgate <command>` and waits until `ready` answers HTTP, whatever the status.
pub async fn spawn_command(command: &str, env: &[(&'static str, String)], ready: &str) -> Child {
    let workdir = std::env::temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mxgate"))
        .arg(command)
        .current_dir(workdir)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .spawn()
        .expect("mxgate starts");
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mxgate {command} exited at start-up: {status}");
        }
        if http.get(ready).send().await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("mxgate {command} did not answer at {ready}");
}
