//! The HTTP surface: every resource's router under `/api/v1`, the operational
//! endpoints, the OpenAPI document, and the middleware every response passes through.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{
    appservice, chats, console, contacts, credentials, devices, events, groups, health, matrix, messages, sim, tokens,
    webhooks,
};

/// A response that only says what happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    #[schema(example = "Token deleted")]
    pub message: String,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mxgate", description = "A REST API for WhatsApp whose plumbing is Matrix."),
    modifiers(&SecuritySchemes),
    components(schemas(
        webhooks::catalogue::payloads::MessagePayload,
        webhooks::catalogue::payloads::StatusPayload,
        webhooks::catalogue::payloads::ActionPayload,
        webhooks::catalogue::payloads::DevicePayload,
        webhooks::catalogue::payloads::CallPayload,
        webhooks::catalogue::payloads::GroupPayload,
    )),
    tags(
        (name = "credentials", description = "Client credentials (Basic auth, super admin)"),
        (name = "tokens", description = "mt_ tokens (Basic auth)"),
        (name = "webhooks", description = "Where incoming messages are delivered (Bearer)"),
        (name = "events", description = "The event feed webhooks are a view of, to catch up from (Bearer)"),
        (name = "matrix", description = "Opening a token's identity in a Matrix client (Bearer)"),
        (name = "devices", description = "Linking WhatsApp accounts by QR code (Bearer)"),
        (name = "messages", description = "Sending from a linked device (Bearer)"),
        (name = "contacts", description = "Who a device can reach on WhatsApp (Bearer)"),
        (name = "groups", description = "Making and administering WhatsApp groups (Bearer)"),
        (name = "chats", description = "Reading a device's chats, history and files back from Matrix (Bearer)"),
        (name = "appservice", description = "The homeserver's pushes to the API (hs_token)"),
        (name = "sim", description = "The simulator's control surface, only with --network sim"),
        (name = "operations", description = "Health (status for anyone, detail for the operator) and metrics (the operator)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "homeserver",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("hs_token").build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("mt_…").build()),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("MXGATE_METRICS_TOKEN").build(),
            ),
        );
    }
}

/// Homeserver transactions carry up to 100 events with their content (the bridge's limit).
const APPSERVICE_BODY_LIMIT: usize = mxgate_bridge::TRANSACTION_BODY_LIMIT;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application, with its OpenAPI document.
pub fn app(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let body_limit = state.config.body_limit;
    // Files travel only to the message route; everything else keeps the small limit.
    let file_limit = state.config.max_file_size + 1024 * 1024;
    let api = OpenApiRouter::new()
        .merge(credentials::routes::router())
        .merge(tokens::routes::router())
        .merge(webhooks::routes::router())
        .merge(events::routes::router())
        .merge(matrix::routes::router())
        .merge(devices::routes::router())
        .merge(messages::actions::router())
        .merge(chats::routes::router())
        .merge(contacts::routes::router())
        .merge(groups::routes::router())
        .merge(messages::signals::router())
        .layer(RequestBodyLimitLayer::new(body_limit))
        .merge(
            messages::routes::router()
                .layer(RequestBodyLimitLayer::new(file_limit))
                .layer(DefaultBodyLimit::max(file_limit)),
        );
    let mut root = OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", api).merge(health::router()).merge(
        appservice::router()
            .layer(RequestBodyLimitLayer::new(APPSERVICE_BODY_LIMIT))
            .layer(DefaultBodyLimit::max(APPSERVICE_BODY_LIMIT)),
    );
    if state.sim.is_some() {
        root = root.merge(sim::router().layer(RequestBodyLimitLayer::new(file_limit)));
    }
    let (router, openapi) = root.split_for_parts();
    let openapi = crate::openapi::complete(openapi);

    let router = router
        .route_layer(middleware::from_fn(record_metrics))
        .merge(SwaggerUi::new("/docs").url("/docs/openapi.json", openapi.clone()))
        .merge(console::router())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    // The path only: query strings are not logged, whatever they carry.
                    tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
                .layer(middleware::from_fn(json_limit_errors))
                .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(60))),
        );
    (router, openapi)
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute(format!("{method} {}", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// tower-http's body limit answers 413 with a plain-text body; give it the envelope.
async fn json_limit_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE
        && !response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        return ApiError::PayloadTooLarge.into_response();
    }
    response
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    // The route template, not the raw path, so ids do not explode the label set.
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("mxgate_http_requests_total", &labels).increment(1);
    metrics::histogram!("mxgate_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}
