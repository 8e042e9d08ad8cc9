//! The simulator's control surface (`/sim/*`), served only when mxgate runs on the
//! `sim` network: scan a QR as a phone, make groups, inject messages, read the outbox.

use std::sync::Arc;

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mxgate_bridge::ids::PhoneNumber;
use mxgate_bridge::network::Media;
use mxgate_bridge::network::sim::{CreatedGroup, Injected, OutboxEntry, SimNetwork};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::routes::Message;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scan))
        .routes(routes!(remove_device))
        .routes(routes!(create_group))
        .routes(routes!(incoming))
        .routes(routes!(outbox))
}

fn sim(state: &AppState) -> ApiResult<&Arc<SimNetwork>> {
    state.sim.as_ref().ok_or(ApiError::NotFound("simulator"))
}

fn phone(text: &str) -> ApiResult<PhoneNumber> {
    text.parse().map_err(|e: mxgate_bridge::ids::IdError| ApiError::unprocessable(e.to_string()))
}

fn network_error(error: mxgate_bridge::network::NetworkError) -> ApiError {
    ApiError::Conflict(error.to_string())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    #[schema(example = "237123456789")]
    pub phone: String,
}

/// The phone scans the newest pending QR code, so that login succeeds as this number.
#[utoipa::path(post, path = "/sim/qr/scan", tag = "sim", request_body = Scan,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn scan(State(state): State<AppState>, Json(scan): Json<Scan>) -> ApiResult<Json<Message>> {
    sim(&state)?.scan(phone(&scan.phone)?).await.map_err(network_error)?;
    Ok(Json(Message::new("QR code scanned")))
}

/// The phone logs the linked device out, as from Settings → Linked devices.
#[utoipa::path(post, path = "/sim/devices/remove", tag = "sim", request_body = Scan,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove_device(State(state): State<AppState>, Json(device): Json<Scan>) -> ApiResult<Json<Message>> {
    sim(&state)?.remove_device(&phone(&device.phone)?).map_err(network_error)?;
    Ok(Json(Message::new("Device removed on the phone")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    pub members: Vec<String>,
}

/// Create a group with an invite link.
#[utoipa::path(post, path = "/sim/groups", tag = "sim", request_body = NewGroup,
    responses((status = 200, body = CreatedGroup), (status = 422, body = ErrorBody)))]
async fn create_group(State(state): State<AppState>, Json(group): Json<NewGroup>) -> ApiResult<Json<CreatedGroup>> {
    let members = group.members.iter().map(|m| phone(m)).collect::<ApiResult<Vec<_>>>()?;
    if group.name.trim().is_empty() {
        return Err(ApiError::unprocessable("name must not be empty"));
    }
    Ok(Json(sim(&state)?.create_group(group.name, members)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedMedia {
    pub base64: String,
    pub mime_type: String,
    pub file_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incoming {
    /// The linked device that receives the message.
    pub device_id: String,
    /// The sender's phone number.
    pub from: String,
    /// Set for a group message: the group's JID.
    pub group_jid: Option<String>,
    pub text: Option<String>,
    pub media: Option<InjectedMedia>,
    /// Network id of the message this one quotes.
    pub reply_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Injection {
    pub message_id: String,
}

/// A contact sends a message to a linked device.
#[utoipa::path(post, path = "/sim/incoming", tag = "sim", request_body = Incoming,
    responses((status = 200, body = Injection), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn incoming(State(state): State<AppState>, Json(incoming): Json<Incoming>) -> ApiResult<Json<Injection>> {
    if incoming.text.is_none() && incoming.media.is_none() {
        return Err(ApiError::unprocessable("give text, media, or both"));
    }
    let media = match incoming.media {
        Some(m) => Some(Media {
            data: STANDARD.decode(&m.base64).map_err(|e| ApiError::unprocessable(format!("media.base64: {e}")))?,
            mime_type: m.mime_type,
            file_name: m.file_name,
        }),
        None => None,
    };
    let injected = Injected {
        device: phone(&incoming.device_id)?,
        from: phone(&incoming.from)?,
        group: incoming.group_jid,
        text: incoming.text,
        media,
        reply_to: incoming.reply_to,
    };
    let message_id = sim(&state)?.inject(injected).map_err(network_error)?;
    Ok(Json(Injection { message_id }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OutboxQuery {
    pub device_id: String,
}

/// What the network received from a device, oldest first.
#[utoipa::path(get, path = "/sim/outbox", tag = "sim", params(OutboxQuery),
    responses((status = 200, body = Vec<OutboxEntry>), (status = 422, body = ErrorBody)))]
async fn outbox(State(state): State<AppState>, Query(query): Query<OutboxQuery>) -> ApiResult<Json<Vec<OutboxEntry>>> {
    Ok(Json(sim(&state)?.outbox(&phone(&query.device_id)?)))
}
