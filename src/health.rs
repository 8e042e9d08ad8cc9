//! `GET /livez`, `GET /health` and `GET /metrics`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mxgate_bridge::network::ConnectionState;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody, Scheme};
use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(livez)).routes(routes!(health)).routes(routes!(metrics))
}

/// The process answers: no database, homeserver or bridge behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 `{"status":"ok"}` whenever the process serves HTTP, without touching the
/// store or the homeserver (`/health` checks those). For a liveness probe, and the
/// baseline of `make bench`'s auth figure.
#[utoipa::path(get, path = "/livez", tag = "operations", security(()), responses((status = 200, body = Liveness)))]
async fn livez() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Anyone gets `status`; the operator (the super admin's Basic auth, or
/// `MXGATE_METRICS_TOKEN` as Bearer) gets the rest too.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when every dependency answers, otherwise `degraded`.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub detail: Option<HealthDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthDetail {
    pub database: Check,
    pub homeserver: Check,
    /// Linked devices by connection state, when the bridge runs in this process. A device
    /// in `error` does not make the service unhealthy: it is retried, and named here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Devices>,
    /// What is waiting in the durable queues; all zero when the system is quiet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<Queues>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Queues {
    /// Received messages not yet in Matrix (retried while the homeserver is down).
    pub inbox: i64,
    /// Events from Matrix not yet sent to WhatsApp.
    pub send_queue: i64,
    /// Webhook deliveries not yet accepted by their receiver.
    pub webhook_deliveries: i64,
    /// Sends that answered `pending` and have since ended, their `message.status` not yet
    /// queued for webhooks.
    pub late_statuses: i64,
    /// Finished sends whose `com.beeper.message_send_status` event
    /// (`MXGATE_MESSAGE_STATUS_EVENTS=true`) is not in the room yet.
    pub send_statuses: i64,
}

async fn queues(state: &AppState) -> Option<Queues> {
    let inbox = mxgate_bridge::inbox::pending(&state.db).await.ok()?;
    let send_queue = mxgate_bridge::outbox::queued(&state.db).await.ok()?;
    let webhook_deliveries = crate::webhooks::delivery::pending(&state.db).await.ok()?;
    let late_statuses = crate::messages::late::due(&state.db).await.ok()?;
    let send_statuses = mxgate_bridge::outbox::unreported_count(&state.db).await.ok()?;
    Some(Queues { inbox, send_queue, webhook_deliveries, late_statuses, send_statuses })
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Devices {
    pub connected: usize,
    pub connecting: usize,
    pub error: usize,
    pub failing: Vec<FailingDevice>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailingDevice {
    #[schema(example = "237123456789")]
    pub device_id: String,
    pub error: String,
}

async fn devices(state: &AppState) -> Option<Devices> {
    let logins = mxgate_bridge::store::connected_logins(&state.db).await.ok()?;
    let mut devices = Devices::default();
    for login in logins {
        let Ok(account) = login.account_id.parse() else { continue };
        match state.devices.state(&account).await.ok()? {
            ConnectionState::Connected => devices.connected += 1,
            ConnectionState::Connecting => devices.connecting += 1,
            ConnectionState::Error(error) => {
                devices.error += 1;
                devices.failing.push(FailingDevice { device_id: login.account_id, error });
            }
            ConnectionState::LoggedOut => {}
        }
    }
    Some(devices)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    /// Why the check failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<E: std::fmt::Display> From<Result<(), E>> for Check {
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self { ok: true, error: None },
            Err(e) => Self { ok: false, error: Some(e.to_string()) },
        }
    }
}

/// Whether the store and the homeserver answer. 503 when either does not. Anyone sees
/// only the status; the operator also sees each check, the devices and the queues.
#[utoipa::path(get, path = "/health", tag = "operations",
    security((), ("basic" = []), ("metrics" = [])),
    responses(
        (status = 200, body = Health), (status = 503, body = Health),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
async fn health(State(state): State<AppState>, caller: Caller) -> (StatusCode, Json<Health>) {
    let (database, homeserver) = tokio::join!(state.db.ping(), state.homeserver.ping());
    let (database, homeserver) = (Check::from(database), Check::from(homeserver));
    let healthy = database.ok && homeserver.ok;
    let status = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status_text = if healthy { "ok" } else { "degraded" };
    let detail = match caller {
        Caller::Anyone => None,
        Caller::Operator => {
            let (devices, queues) = tokio::join!(devices(&state), queues(&state));
            Some(HealthDetail { database, homeserver, devices, queues })
        }
    };
    (status, Json(Health { status: status_text, detail }))
}

/// The process-wide Prometheus recorder; installed once, whatever the number of apps.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().expect("no other metrics recorder is installed"))
}

/// Prometheus metrics in the text exposition format, for the operator.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(("basic" = []), ("metrics" = [])),
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
async fn metrics(caller: Caller) -> ApiResult<impl IntoResponse> {
    if caller == Caller::Anyone {
        return Err(ApiError::Unauthorized(
            "the super admin's Basic auth or MXGATE_METRICS_TOKEN as Bearer required",
            Scheme::Basic,
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render()))
}
