use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Device, DeviceRef, NewDevice};
use super::ticket::TicketError;
use super::ws;
use crate::auth::TokenAuth;
use crate::error::{ApiError, ApiResult, ErrorBody, Scheme};
use crate::extract::{Json, Query};
use crate::routes::Message;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(link_device, list_devices, delete_device)).routes(routes!(qr_code))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkStarted {
    #[schema(example = "Connect to qr_code_url and scan the QR codes it streams")]
    pub message: String,
    /// WebSocket URL with a short-lived, single-use ticket (never the token); absent when
    /// linking by pairing code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ws://127.0.0.1:8080/api/v1/devices/qr-code?ticket=eyJ…")]
    pub qr_code_url: Option<String>,
    /// The 8-character code to type on the phone, when `phone` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ABCD1234")]
    pub pair_code: Option<String>,
}

/// Start linking a WhatsApp account: returns the WebSocket that streams its QR codes or,
/// with `phone`, the pairing code to type on that phone (`GET /devices` shows the device
/// once it is linked).
#[utoipa::path(post, path = "/devices", tag = "devices", security(("bearer" = [])),
    request_body = NewDevice,
    responses(
        (status = 200, body = LinkStarted), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
async fn link_device(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Json(new): Json<NewDevice>,
) -> ApiResult<Json<LinkStarted>> {
    service::check_platform(&new.platform)?;
    state.limits.link(&token.id)?;
    if let Some(phone) = &new.phone {
        let code = service::pair_code(&state, &token, phone).await?;
        return Ok(Json(LinkStarted {
            message:
                "On the phone: Linked devices → Link a device → Link with phone number instead, then type pair_code"
                    .into(),
            qr_code_url: None,
            pair_code: Some(code),
        }));
    }
    let qr_code_url = service::link_url(&state, &token)?;
    Ok(Json(LinkStarted {
        message: "Connect to qr_code_url and scan the QR codes it streams".into(),
        qr_code_url: Some(qr_code_url),
        pair_code: None,
    }))
}

/// The devices linked to this token's Matrix identity (`use_host` tokens: the admin's).
#[utoipa::path(get, path = "/devices", tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = Vec<Device>), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list_devices(State(state): State<AppState>, TokenAuth(token): TokenAuth) -> ApiResult<Json<Vec<Device>>> {
    Ok(Json(service::list(&state, &token).await?))
}

/// Log a device out of WhatsApp and unbridge it.
#[utoipa::path(delete, path = "/devices", tag = "devices", security(("bearer" = [])),
    request_body = DeviceRef,
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn delete_device(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Json(device): Json<DeviceRef>,
) -> ApiResult<Json<Message>> {
    service::log_out(&state, &token, device).await?;
    Ok(Json(Message::new("Device logged out")))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TicketQuery {
    /// The ticket from `qr_code_url`; alternatively send `Authorization: Bearer mt_…`.
    pub ticket: Option<String>,
}

/// WebSocket streaming the QR codes of a login: `{"type":"qr","code","png_base64"}` frames,
/// then `{"type":"success","device_id"}`, `{"type":"timeout","message"}` or `{"type":"error","message"}`.
#[utoipa::path(get, path = "/devices/qr-code", tag = "devices", security((), ("bearer" = [])),
    params(TicketQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = ErrorBody)))]
async fn qr_code(
    State(state): State<AppState>,
    Query(query): Query<TicketQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let user = match query.ticket {
        Some(ticket) => state.tickets.redeem(&state.db, &ticket).await.map_err(ticket_error)?,
        // A ticket was counted when `POST /devices` issued it; a token here starts a link itself.
        None => {
            let token = crate::auth::authenticate_bearer(&headers, &state).await?;
            state.limits.link(&token.id)?;
            service::identity(&token)?
        }
    };
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest(format!("a WebSocket upgrade is required: {e}")))?;
    Ok(upgrade.on_upgrade(move |socket| ws::relay(state, user, socket)))
}

fn ticket_error(error: TicketError) -> ApiError {
    match error {
        TicketError::Invalid => ApiError::Unauthorized("the ticket is invalid or expired", Scheme::Bearer),
        TicketError::Used => ApiError::Unauthorized("the ticket was already used", Scheme::Bearer),
        TicketError::Store(error) => error.into(),
    }
}
