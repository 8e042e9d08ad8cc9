//! The shared harness: a real Synapse, a real mxgate on a free port with a fresh
//! database (SQLite, or PostgreSQL when `MXGATE_TEST_POSTGRES` names a server), and
//! HTTP helpers that speak the API the way a client would.
#![allow(dead_code)]

pub mod browser;
mod cluster;
mod gate;
pub mod groups;
pub mod history;
mod phone;
mod process;
mod receiver;
pub mod relay;
mod synapse;
mod wa_linked;

use std::time::Duration;

use base64::Engine;
use mxgate::config::{
    ApiConfig, BridgeConfig, DatabaseConfig, HomeserverConfig, NetworkKind, ProvisioningConfig, ServerConfig, Span,
    WhatsAppConfig,
};
use mxgate::db::Db;
use mxgate::secret::{Secret, random_hex, random_string};
use mxgate::server::BridgePart;
use mxgate::setup::AppservicePair;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[allow(unused_imports)]
pub use cluster::{Balancer, Cluster, Layout};
#[allow(unused_imports)]
pub use gate::Gate;
#[allow(unused_imports)]
pub use phone::Phone;
#[allow(unused_imports)]
pub use receiver::{Received, WebhookReceiver, device_state_seen};
#[allow(unused_imports)]
pub use synapse::{SLOTS, Synapse, free_port, synapse, synapse_on_postgres};
#[allow(unused_imports)]
pub use wa_linked::{Linked, link_on_wa_sim, routed, wa_sim_options};

/// Which registration pairs are taken by running mxgates.
static TAKEN: std::sync::Mutex<[bool; SLOTS]> = std::sync::Mutex::new([false; SLOTS]);
static SLOT_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(SLOTS);

/// One registration pair, held while a test's mxgate runs.
pub struct Slot {
    pub index: usize,
    pub pair: &'static AppservicePair,
}

impl Drop for Slot {
    fn drop(&mut self) {
        relay::unpoint(&self.pair.api.url);
        relay::unpoint(&self.pair.bridge.url);
        TAKEN.lock().unwrap()[self.index] = false;
        SLOT_PERMITS.add_permits(1);
    }
}

pub async fn take_slot(synapse: &'static Synapse) -> Slot {
    SLOT_PERMITS.acquire().await.unwrap().forget();
    let mut taken = TAKEN.lock().unwrap();
    let index = taken.iter().position(|t| !t).expect("a permit means a free slot");
    taken[index] = true;
    Slot { index, pair: &synapse.slots[index] }
}

pub struct TestApp {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    /// The bridge as the homeserver and the API reach it.
    pub bridge_url: String,
    pub provisioning_secret: String,
    /// `MXGATE_METRICS_TOKEN`: a scraper's Bearer for `/metrics` and the detail of `/health`.
    pub metrics_token: String,
    pub http: reqwest::Client,
    pub synapse: &'static Synapse,
    pub slot: Slot,
    /// mxgate's store, for a story that says where a missing message stopped.
    pub database_url: String,
    /// The API's configuration, for a replica of it on the same database.
    api: ApiConfig,
    runner: Runner,
    _sqlite_dir: Option<tempfile::TempDir>,
}

/// How the mxgate under test runs; dropping it stops it.
enum Runner {
    Prepared,
    InProcess(#[allow(dead_code)] oneshot::Sender<()>),
    Process { child: std::process::Child, env: Vec<(&'static str, String)> },
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Runner::Process { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An API replica started by [`TestApp::replica`].
pub struct Replica {
    pub base: String,
    _shutdown: oneshot::Sender<()>,
}

/// Options that differ between scenarios.
#[derive(Clone)]
pub struct Options {
    pub allow_loopback_webhooks: bool,
    pub auth_failures_per_minute: u32,
    pub body_limit: usize,
    pub webhook_retry_base_ms: u64,
    /// Longest wait between two attempts of a delivery.
    pub webhook_retry_max_delay: Duration,
    /// How long a delivery is retried before it is `failed`.
    pub webhook_retry_horizon: Duration,
    /// How long delivered rows and the event log are kept.
    pub webhook_retention: Duration,
    /// The `whatsapp` connector against a protocol simulator, instead of the `sim` network.
    pub whatsapp: Option<WhatsAppServer>,
    /// Where mxgate reaches the homeserver, when not directly (e.g. through a [`Gate`]).
    pub homeserver_url: Option<url::Url>,
    /// The whatsapp connector's pacing between two sends of one device.
    pub send_interval_ms: u64,
    /// More environment for an mxgate started as a process.
    pub environment: Vec<(&'static str, String)>,
    /// The API looks for the bridge where nothing listens.
    pub bridge_unreachable: bool,
    /// Per-token (per-credential) rate limits: links an hour, identities an hour, sends a
    /// minute. High by default, so only the stories about them meet them.
    pub limits: (u32, u32, u32),
    /// Numbers a token may check a minute.
    pub checks_per_minute: u32,
    /// Logins one identity may have in progress at once.
    pub max_logins_per_identity: usize,
    /// `MXGATE_LEASE_SECS`: how soon a dead process's devices move.
    pub lease_secs: u64,
    /// How long the `sim` network shows each QR code of a login (six in all).
    pub sim_qr_interval_ms: u64,
    /// `MXGATE_MESSAGE_STATUS_EVENTS`: each send's outcome also posted into its room.
    pub message_status_events: bool,
    /// `MXGATE_REJECT_CALLS`: calls are turned down as they ring.
    pub reject_calls: bool,
    /// How long a send request waits for WhatsApp before it answers `pending`.
    pub send_timeout_secs: u64,
    /// The homeserver: the run's Synapse on SQLite ([`synapse`]) unless another is given
    /// (such as [`synapse_on_postgres`]).
    pub synapse: Option<&'static Synapse>,
}

/// Where mxgate's whatsapp-rust clients find the WhatsApp server (a `wa-sim`).
#[derive(Clone)]
pub struct WhatsAppServer {
    pub ws_url: String,
    pub http_url: String,
    /// How long a restored device may stay unconnected before it shows `error`.
    pub connect_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_loopback_webhooks: true,
            auth_failures_per_minute: 1000,
            body_limit: 64 * 1024,
            webhook_retry_base_ms: 200,
            webhook_retry_max_delay: Duration::from_secs(600),
            webhook_retry_horizon: Duration::from_secs(3 * 86_400),
            webhook_retention: Duration::from_secs(7 * 86_400),
            whatsapp: None,
            homeserver_url: None,
            send_interval_ms: 0,
            environment: Vec::new(),
            bridge_unreachable: false,
            limits: (100_000, 100_000, 100_000),
            checks_per_minute: 100_000,
            max_logins_per_identity: 100,
            lease_secs: 15,
            sim_qr_interval_ms: 1000,
            message_status_events: false,
            reject_calls: false,
            send_timeout_secs: 30,
            synapse: None,
        }
    }
}

/// mxgate's own log in the test output, filtered by `MXGATE_TEST_LOG` (default: errors).
fn init_logging() {
    let filter = std::env::var("MXGATE_TEST_LOG").unwrap_or_else(|_| "error".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A database URL for one test: a SQLite file, or a new PostgreSQL database.
async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("MXGATE_TEST_POSTGRES") {
        Ok(server) => {
            let name = format!("mxgate_test_{}", random_hex(6));
            let admin = Db::connect(&server).await.expect("connect to MXGATE_TEST_POSTGRES");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin.pool).await.unwrap();
            admin.pool.close().await;
            let (base, _) = server.rsplit_once('/').unwrap();
            (format!("{base}/{name}"), None)
        }
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            (format!("sqlite://{}", dir.path().join("mxgate.db").display()), Some(dir))
        }
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bridge_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (listener.local_addr().unwrap(), bridge_listener.local_addr().unwrap());
        let (app, api, bridge) = Self::prepare(options, addrs).await;
        let db = Db::connect(&api.database.database_url).await.unwrap();
        db.migrate().await.unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let bridge = Some(BridgePart { config: bridge, listener: bridge_listener });
        tokio::spawn(async move {
            let run = mxgate::server::serve(listener, api, bridge, db, async {
                let _ = stopped.await;
            });
            if let Err(error) = run.await {
                panic!("mxgate stopped: {error:#}");
            }
        });
        Self { runner: Runner::InProcess(shutdown), ..app }
    }

    /// mxgate as its own process (the `mxgate serve` binary), so a test can `kill -9` it.
    pub async fn start_process() -> Self {
        Self::start_process_with(Options::default()).await
    }

    pub async fn start_process_with(options: Options) -> Self {
        let addrs = ([127, 0, 0, 1], free_port()).into();
        let bridge_addr = ([127, 0, 0, 1], free_port()).into();
        let extra = options.environment.clone();
        let (app, api, bridge) = Self::prepare(options, (addrs, bridge_addr)).await;
        let mut env = process::environment(&api, &bridge);
        env.extend(extra);
        let child = process::spawn(&env, &app.base).await;
        Self { runner: Runner::Process { child, env }, ..app }
    }

    /// Another API process on the same database and homeserver (`mxgate api`: no bridge of
    /// its own; it reaches this one's), as behind a load balancer. Stops when dropped.
    pub async fn replica(&self) -> Replica {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen_addr = listener.local_addr().unwrap();
        let config = ApiConfig { listen_addr, ..self.api.clone() };
        let db = Db::connect(&self.database_url).await.unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let run = mxgate::server::serve(listener, config, None, db, async {
                let _ = stopped.await;
            });
            if let Err(error) = run.await {
                panic!("the replica stopped: {error:#}");
            }
        });
        Replica { base: format!("http://{listen_addr}"), _shutdown: shutdown }
    }

    /// The process id of an mxgate started with `start_process`.
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Process { child, .. } => Some(child.id()),
            _ => None,
        }
    }

    /// SIGKILL, then the same command again on the same database.
    pub async fn kill_and_restart(&mut self) {
        let Runner::Process { child, env } = &mut self.runner else { panic!("not a process") };
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        *child = process::spawn(env, &self.base).await;
    }

    /// SIGTERM, which must end the process cleanly and on its own, then the same command again.
    pub async fn terminate_and_restart(&mut self) {
        let Runner::Process { child, env } = &mut self.runner else { panic!("not a process") };
        let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM");
        let exited = child.wait().unwrap();
        assert!(exited.success(), "mxgate ends cleanly on SIGTERM: {exited}");
        *child = process::spawn(env, &self.base).await;
    }

    /// Everything but the running server: a slot, a database and the two configurations.
    async fn prepare(
        options: Options,
        (listen_addr, bridge_addr): (std::net::SocketAddr, std::net::SocketAddr),
    ) -> (Self, ApiConfig, BridgeConfig) {
        init_logging();
        let synapse = options.synapse.unwrap_or_else(synapse);
        let (database_url, sqlite_dir) = fresh_database().await;
        let slot = take_slot(synapse).await;
        relay::point(&slot.pair.api.url, listen_addr);
        relay::point(&slot.pair.bridge.url, bridge_addr);
        let homeserver_url = options.homeserver_url.clone().unwrap_or_else(|| synapse.url.clone());
        let server = ServerConfig { homeserver_url, server_name: synapse.server_name.clone() };
        let api = ApiConfig {
            listen_addr,
            public_url: None,
            client_id: format!("admin-{}", random_hex(4)),
            client_secret: Secret::new(random_string(32)),
            metrics_token: Some(Secret::new(random_string(32))),
            body_limit: options.body_limit,
            auth_failures_per_minute: options.auth_failures_per_minute,
            limit_links_per_hour: options.limits.0,
            limit_identities_per_hour: options.limits.1,
            limit_sends_per_minute: options.limits.2,
            limit_checks_per_minute: options.checks_per_minute,
            webhook_allow_loopback: options.allow_loopback_webhooks,
            webhook_allow_private: false,
            database: DatabaseConfig { database_url },
            homeserver: HomeserverConfig {
                server,
                api_as_token: Secret::new(slot.pair.api.as_token.clone()),
                api_appservice_id: slot.pair.api_id(),
                api_hs_token: Secret::new(slot.pair.api.hs_token.clone()),
                registration_shared_secret: Some(Secret::new(synapse.registration_shared_secret.clone())),
                identity_prefix: slot.pair.api.prefix.clone(),
                admin_localpart: "mxgate_admin".into(),
            },
            provisioning: ProvisioningConfig {
                provisioning_secret: Secret::new(random_string(32)),
                bridge_url: match options.bridge_unreachable {
                    true => format!("http://127.0.0.1:{}", free_port()).parse().unwrap(),
                    false => format!("http://{bridge_addr}").parse().unwrap(),
                },
            },
            send_timeout_secs: options.send_timeout_secs,
            max_file_size: 2 * 1024 * 1024,
            ticket_key: Secret::new(random_string(32)),
            webhook_retry_base_ms: options.webhook_retry_base_ms,
            webhook_retry_max_delay: Span(options.webhook_retry_max_delay),
            webhook_retry_horizon: Span(options.webhook_retry_horizon),
            webhook_retention: Span(options.webhook_retention),
            webhook_media: Default::default(),
        };
        let bridge = BridgeConfig {
            bridge_listen_addr: bridge_addr,
            bridge_advertise_url: None,
            lease_secs: options.lease_secs,
            bridge_as_token: Secret::new(slot.pair.bridge.as_token.clone()),
            bridge_hs_token: Secret::new(slot.pair.bridge.hs_token.clone()),
            bridge_appservice_id: slot.pair.bridge_id(),
            bot_localpart: slot.pair.bridge.sender_localpart.clone(),
            puppet_prefix: slot.pair.bridge.prefix.clone(),
            network: if options.whatsapp.is_some() { NetworkKind::Whatsapp } else { NetworkKind::Sim },
            max_logins_per_identity: options.max_logins_per_identity,
            message_status_events: options.message_status_events,
            reject_calls: options.reject_calls,
            sim_qr_interval_ms: options.sim_qr_interval_ms,
            whatsapp: WhatsAppConfig {
                url: options.whatsapp.as_ref().map(|s| s.ws_url.clone()),
                http_url: options.whatsapp.as_ref().map(|s| s.http_url.clone()),
                send_interval_ms: options.send_interval_ms,
                connect_timeout_ms: options.whatsapp.as_ref().map_or(30_000, |s| s.connect_timeout_ms),
            },
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let app = Self {
            base: format!("http://{listen_addr}"),
            client_id: api.client_id.clone(),
            client_secret: api.client_secret.expose().to_owned(),
            bridge_url: format!("http://{bridge_addr}"),
            provisioning_secret: api.provisioning.provisioning_secret.expose().to_owned(),
            metrics_token: api.metrics_token.as_ref().unwrap().expose().to_owned(),
            http,
            synapse,
            slot,
            database_url: api.database.database_url.clone(),
            api: api.clone(),
            runner: Runner::Prepared,
            _sqlite_dir: sqlite_dir,
        };
        (app, api, bridge)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET /health` as the operator, with its detail (checks, devices, queues).
    pub fn health(&self) -> RequestBuilder {
        self.request(Method::GET, "/health").bearer_auth(&self.metrics_token)
    }

    /// A request with Basic auth as the super admin.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).basic_auth(&self.client_id, Some(&self.client_secret))
    }

    pub fn basic(&self, method: Method, path: &str, client: &Client) -> RequestBuilder {
        self.request(method, path).basic_auth(&client.id, Some(&client.secret))
    }

    pub fn bearer(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    /// The super admin creates a credential (with the default scopes unless `scopes` is given).
    pub async fn credential(&self, client_id: &str, scopes: Option<&[&str]>) -> Client {
        let mut body = json!({ "client_id": client_id, "description": "test" });
        if let Some(scopes) = scopes {
            body["scopes"] = json!(scopes);
        }
        let created = expect(self.admin(Method::POST, "/api/v1/credentials").json(&body), StatusCode::CREATED).await;
        Client { id: client_id.into(), secret: created["client_secret"].as_str().unwrap().into() }
    }

    /// Issues a token as the super admin; returns the creation response.
    pub async fn admin_token(&self, use_host: bool) -> Value {
        let request = self.admin(Method::POST, "/api/v1/tokens").json(&json!({ "use_host": use_host }));
        expect(request, StatusCode::CREATED).await
    }

    /// A new token of the super admin's, with `device` linked on it.
    pub async fn token_with_device(&self, device: &str) -> String {
        let token = self.admin_token(false).await["token"].as_str().unwrap().to_owned();
        link_device(self, &token, device).await;
        token
    }

    /// [`Self::token_with_device`], with a webhook of the token's to a new receiver.
    #[allow(dead_code)]
    pub async fn token_with_receiver(&self, device: &str) -> (String, WebhookReceiver) {
        let token = self.token_with_device(device).await;
        let receiver = WebhookReceiver::start().await;
        self.add_webhook(&token, &receiver.url).await;
        (token, receiver)
    }

    /// Waits until the durable queues (inbox, send queue, webhook deliveries) are empty, so
    /// a test counts what happened once nothing is still on its way. Patient: a delivery in
    /// flight when mxgate was killed waits out its claim (half a minute) before it goes again.
    pub async fn quiet(&self) {
        patiently("empty queues", Duration::from_secs(120), || async {
            let health: Value = self.health().send().await.ok()?.json().await.ok()?;
            let queues = &health["queues"];
            let empty = ["inbox", "send_queue", "webhook_deliveries", "late_statuses", "send_statuses"]
                .iter()
                .all(|q| queues[q] == 0);
            empty.then_some(())
        })
        .await;
    }

    /// The rooms `user` (a token identity) is joined to, as the homeserver says.
    #[allow(dead_code)]
    pub async fn joined_rooms(&self, user: &str) -> std::collections::BTreeSet<String> {
        let mut url = self.synapse.url.join("/_matrix/client/v3/joined_rooms").unwrap();
        url.query_pairs_mut().append_pair("user_id", user);
        let request = self.http.get(url).bearer_auth(&self.slot.pair.api.as_token);
        let rooms = expect(request, StatusCode::OK).await;
        rooms["joined_rooms"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect()
    }

    /// The types of the latest events of `room` (at most 100), newest first, as `user` sees them.
    #[allow(dead_code)]
    pub async fn room_event_types(&self, user: &str, room: &str) -> Vec<String> {
        let mut url = self.synapse.url.clone();
        url.path_segments_mut().unwrap().clear().extend(["_matrix", "client", "v3", "rooms", room, "messages"]);
        url.query_pairs_mut().append_pair("user_id", user).append_pair("dir", "b").append_pair("limit", "100");
        let request = self.http.get(url).bearer_auth(&self.slot.pair.api.as_token);
        let page = expect(request, StatusCode::OK).await;
        page["chunk"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// A Matrix client logged in as `token`'s identity (a fresh password from
    /// `POST /matrix/credentials`), as a person in Element would be, synced once.
    #[allow(dead_code)]
    pub async fn matrix_client(&self, token: &str) -> matrix_sdk::Client {
        let login = expect(self.bearer(Method::POST, "/api/v1/matrix/credentials", token), StatusCode::OK).await;
        let client = matrix_sdk::Client::builder().homeserver_url(self.synapse.url.as_str()).build().await.unwrap();
        let (user, password) = (login["username"].as_str().unwrap(), login["password"].as_str().unwrap());
        client.matrix_auth().login_username(user, password).await.unwrap();
        client.sync_once(matrix_sdk::config::SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
        client
    }

    /// What the simulated network received from `device`, oldest first.
    pub async fn sim_outbox(&self, device: &str) -> Vec<Value> {
        let sent = expect(self.request(Method::GET, &format!("/sim/outbox?device_id={device}")), StatusCode::OK).await;
        sent.as_array().unwrap().clone()
    }

    /// A contact `from` sends `body` (a `/sim/incoming` body without its device and
    /// sender) to `device`; the network's id of what it sent.
    pub async fn inject(&self, device: &str, from: &str, body: Value) -> String {
        let mut body = body;
        body["device_id"] = json!(device);
        body["from"] = json!(from);
        let injected = expect(self.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
        injected["message_id"].as_str().unwrap().to_owned()
    }

    /// Gives `token` a webhook to `url`; returns the creation response (with its secret).
    pub async fn add_webhook(&self, token: &str, url: &str) -> Value {
        let request = self.bearer(Method::POST, "/api/v1/webhooks", token).json(&json!({ "url": url }));
        expect(request, StatusCode::CREATED).await
    }
}

/// The bodies of the `m.room.message` events a Matrix client can page back through in `room`.
pub async fn room_bodies(room: &matrix_sdk::Room) -> Vec<String> {
    let messages = room.messages(matrix_sdk::room::MessagesOptions::backward()).await.unwrap();
    messages
        .chunk
        .iter()
        .filter_map(|event| {
            let raw: Value = event.raw().deserialize_as().ok()?;
            (raw["type"] == "m.room.message").then(|| raw["content"]["body"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// A client credential as its owner holds it.
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// Sends `request`, checks the status and returns the JSON body (Null when empty).
pub async fn expect(request: RequestBuilder, status: StatusCode) -> Value {
    let response = request.send().await.expect("request sent");
    let actual = response.status();
    let body = json_body(response).await;
    assert_eq!(actual, status, "unexpected status; body: {body}");
    body
}

/// Sends `request` and checks it failed with `status` and the envelope's `code`.
pub async fn expect_error(request: RequestBuilder, status: StatusCode, code: &str) -> Value {
    let body = expect(request, status).await;
    assert_eq!(body["error"], code, "unexpected error code; body: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {body}");
    body
}

pub async fn json_body(response: Response) -> Value {
    let bytes = response.bytes().await.unwrap();
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    }
}

pub fn basic_header(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

/// A linked device: the phone scanned the QR streamed over the WebSocket.
pub async fn link_device(app: &TestApp, token: &str, phone: &str) -> Vec<Value> {
    // Scan once the code has rotated, so the stream is seen to carry more than one.
    link_device_with(app, token, 2, |_| async {
        expect(app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": phone })), StatusCode::OK).await;
    })
    .await
}

/// Links a device through the API's QR WebSocket, calling `scan` with the `nth` code;
/// returns every frame the socket sent.
pub async fn link_device_with<F, Fut>(app: &TestApp, token: &str, nth: usize, mut scan: F) -> Vec<Value>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::StreamExt;
    let link =
        expect(app.bearer(Method::POST, "/api/v1/devices", token).json(&json!({ "platform": "wa" })), StatusCode::OK)
            .await;
    let url = link["qr_code_url"].as_str().unwrap().to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("the QR WebSocket opens");
    let mut frames = Vec::new();
    while let Some(message) = socket.next().await {
        let text = match message.unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(text) => text,
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => continue,
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        frames.push(frame.clone());
        if frame["type"] == "qr" && frames.iter().filter(|f| f["type"] == "qr").count() == nth {
            scan(frame["code"].as_str().unwrap().to_owned()).await;
        }
    }
    if let Some(device) = frames.last().filter(|f| f["type"] == "success").and_then(|f| f["device_id"].as_str()) {
        told_linked(app, token, device).await;
    }
    frames
}

/// Waits until the identity's event feed has the `device.state` its link made, so a story
/// that counts the feed's events finds none arriving later.
async fn told_linked(app: &TestApp, token: &str, device: &str) {
    patiently("device.state of a new link in the feed", Duration::from_secs(60), || async {
        let mut after = "0".to_owned();
        loop {
            let path = format!("/api/v1/events?after={after}&limit=500");
            let page = expect(app.bearer(Method::GET, &path, token), StatusCode::OK).await;
            let events = page["events"].as_array()?;
            let told = |e: &&Value| e["payload"]["event"] == "device.state" && e["payload"]["device_id"] == device;
            if events.iter().any(|e| told(&e)) {
                return Some(());
            }
            if page["has_more"] != true {
                return None;
            }
            after = page["next_cursor"].as_str()?.to_owned();
        }
    })
    .await;
}

/// Polls `check` until it returns `Some`, for state that settles asynchronously.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    patiently(what, Duration::from_secs(30), check).await
}

/// Waits up to `patience` for `done`, for a story that then asserts with the detail of
/// what never came (rather than a bare "gave up").
pub async fn wait_until(patience: Duration, mut done: impl FnMut() -> bool) {
    for _ in 0..patience.as_millis() / 100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`eventually`] with more patience, for state that waits on Synapse's own back-off: after
/// a push to a stopped mxgate fails, Synapse retries after 2, 4, 8, … seconds.
pub async fn patiently<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..patience.as_millis() / 100 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting for {what}");
}
