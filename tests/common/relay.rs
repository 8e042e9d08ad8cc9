//! Stand-ins for the appservice URLs Synapse knows. Synapse learns each registration's
//! URL once, at start-up, and backs off for a long time after a push fails; so every
//! registration URL is served for the whole run by a relay that forwards to whichever
//! mxgate holds the slot now, and answers `{}` (dropping stale events) when none does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Relay port → the mxgate address it forwards to.
fn targets() -> &'static Mutex<HashMap<u16, SocketAddr>> {
    static TARGETS: OnceLock<Mutex<HashMap<u16, SocketAddr>>> = OnceLock::new();
    TARGETS.get_or_init(Default::default)
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a registration URL ends in a port")
}

pub fn point(url: &str, target: SocketAddr) {
    targets().lock().unwrap().insert(port(url), target);
}

pub fn unpoint(url: &str) {
    targets().lock().unwrap().remove(&port(url));
}

/// Serves every registration URL from its bound socket on a thread of their own, so the
/// relays outlive the test that happened to start Synapse.
pub fn start(relays: Vec<(String, std::net::TcpListener)>) {
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            // No pooled connections: the port behind a slot changes hands between tests, and a
            // kept-alive connection to last test's server would fail the next push.
            let http =
                reqwest::Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(0).build().unwrap();
            for (url, listener) in relays {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(forward).with_state((port(&url), http.clone()));
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            ready.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    started.recv().unwrap();
}

async fn forward(State((port, http)): State<(u16, reqwest::Client)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    // A restarting mxgate is waited for, so Synapse sees no failure and no back-off begins.
    for _ in 0..150 {
        let Some(target) = targets().lock().unwrap().get(&port).copied() else {
            return (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response();
        };
        let mut outgoing = http.request(parts.method.clone(), format!("http://{target}{path}")).body(body.clone());
        for (name, value) in &parts.headers {
            if name != axum::http::header::HOST {
                outgoing = outgoing.header(name, value);
            }
        }
        match outgoing.send().await {
            Ok(answer) => {
                let status = answer.status();
                let bytes = answer.bytes().await.unwrap_or_default();
                return Response::builder().status(status).body(Body::from(bytes)).unwrap();
            }
            // Transactions are idempotent by id, so any failed attempt can be repeated.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}
