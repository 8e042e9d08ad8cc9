//! The shared harness: a real Synapse, a real mxgate on a free port with a fresh
//! database (SQLite, or PostgreSQL when `MXGATE_TEST_POSTGRES` names a server), and
//! HTTP helpers that speak the API the way a client would.
#![allow(dead_code)]

mod synapse;

use std::time::Duration;

use base64::Engine;
use mxgate::config::{ApiConfig, DatabaseConfig, HomeserverConfig};
use mxgate::db::Db;
use mxgate::secret::{Secret, random_hex, random_string};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use synapse::{Synapse, synapse};

pub struct TestApp {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    pub http: reqwest::Client,
    pub synapse: &'static Synapse,
    _shutdown: oneshot::Sender<()>,
    _sqlite_dir: Option<tempfile::TempDir>,
}

/// Options that differ between scenarios.
#[derive(Clone, Copy)]
pub struct Options {
    pub allow_loopback_webhooks: bool,
    pub auth_failures_per_minute: u32,
    pub body_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { allow_loopback_webhooks: true, auth_failures_per_minute: 1000, body_limit: 64 * 1024 }
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
        init_logging();
        let synapse = synapse();
        let (database_url, sqlite_dir) = fresh_database().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen_addr = listener.local_addr().unwrap();
        let config = ApiConfig {
            listen_addr,
            public_url: None,
            client_id: format!("admin-{}", random_hex(4)),
            client_secret: Secret::new(random_string(32)),
            body_limit: options.body_limit,
            auth_failures_per_minute: options.auth_failures_per_minute,
            webhook_allow_loopback: options.allow_loopback_webhooks,
            webhook_allow_private: false,
            database: DatabaseConfig { database_url: database_url.clone() },
            homeserver: HomeserverConfig {
                homeserver_url: synapse.url.clone(),
                server_name: synapse.server_name.clone(),
                api_as_token: Secret::new(synapse.api.as_token.clone()),
                api_hs_token: Secret::new(synapse.api.hs_token.clone()),
                registration_shared_secret: Some(Secret::new(synapse.registration_shared_secret.clone())),
                identity_prefix: synapse.api.prefix.clone(),
                admin_localpart: "mxgate_admin".into(),
            },
        };
        let db = Db::connect(&database_url).await.unwrap();
        db.migrate().await.unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let (client_id, client_secret) = (config.client_id.clone(), config.client_secret.expose().to_owned());
        tokio::spawn(mxgate::server::serve(listener, config, db, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Self {
            base: format!("http://{listen_addr}"),
            client_id,
            client_secret,
            http,
            synapse,
            _shutdown: shutdown,
            _sqlite_dir: sqlite_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
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
