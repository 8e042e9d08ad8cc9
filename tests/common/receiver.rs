//! A real HTTP server standing in for a customer's webhook endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived, for the benchmarks' latencies.
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// Whether this delivery is signed with `secret`: by the Standard Webhooks library
    /// (which also refuses a timestamp more than 5 minutes off), and by `X-Mxgate-Signature`,
    /// HMAC-SHA256 of `timestamp.body` (the two schemes must agree).
    pub fn signed_with(&self, secret: &str) -> bool {
        let standard =
            standardwebhooks::Webhook::new(secret).is_ok_and(|hook| hook.verify(&self.body, &self.headers).is_ok());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{}.", self.header("x-mxgate-timestamp")).as_bytes());
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let legacy = self.header("x-mxgate-signature").split(' ').any(|signature| signature == expected);
        assert_eq!(standard, legacy, "webhook-signature and X-Mxgate-Signature agree");
        assert_eq!(self.header("webhook-id"), self.header("x-mxgate-delivery"));
        assert_eq!(self.header("webhook-timestamp"), self.header("x-mxgate-timestamp"));
        standard
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// While set, the receiver answers 503 and keeps nothing.
    down: bool,
    /// While set, requests hang until `release`.
    hanging: Option<Arc<tokio::sync::Notify>>,
}

pub struct WebhookReceiver {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

async fn receive(State(shared): State<Arc<Mutex<Shared>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let hanging = shared.lock().unwrap().hanging.clone();
    if let Some(release) = hanging {
        release.notified().await;
    }
    let mut shared = shared.lock().unwrap();
    if shared.down {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    shared.received.push(Received { headers, body, at: std::time::Instant::now() });
    StatusCode::OK
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().route("/hook", post(receive)).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, shared }
    }

    pub fn set_down(&self, down: bool) {
        self.shared.lock().unwrap().down = down;
    }

    /// From now on requests hang (a receiver that never answers) until `release`.
    pub fn hang(&self) {
        self.shared.lock().unwrap().hanging = Some(Arc::new(tokio::sync::Notify::new()));
    }

    pub fn release(&self) {
        if let Some(release) = self.shared.lock().unwrap().hanging.take() {
            release.notify_waiters();
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Waits until `count` deliveries arrived (the harness's patience, not an assertion).
    /// The payloads received so far in event order (by `X-Mxgate-Event-Cursor`), whatever
    /// order their deliveries took.
    #[allow(dead_code)]
    pub fn in_event_order(&self) -> Vec<serde_json::Value> {
        let mut received = self.received();
        received.sort_by_key(|r| r.header("x-mxgate-event-cursor").parse::<i64>().unwrap_or_default());
        received.iter().map(Received::json).collect()
    }

    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..600 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the receiver got {} of {count} deliveries", self.received().len());
    }
}

/// Waits until `receiver` has a `device.state` event with `state`.
#[allow(dead_code)]
pub async fn device_state_seen(receiver: &WebhookReceiver, state: &str) {
    super::patiently(&format!("device.state {state}"), Duration::from_secs(60), || async {
        receiver
            .received()
            .iter()
            .any(|r| r.json()["event"] == "device.state" && r.json()["state"] == state)
            .then_some(())
    })
    .await;
}
