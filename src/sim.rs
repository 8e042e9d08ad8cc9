//! The simulator's control surface (`/sim/*`), served only when mxgate runs on the
//! `sim` network: scan a QR as a phone, make groups, inject messages, read the outbox.

use std::sync::Arc;

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mxgate_bridge::ids::PhoneNumber;
use mxgate_bridge::network::sim::{CreatedGroup, Injected, OutboxEntry, Signal, SimNetwork};
use mxgate_bridge::network::{ContactCard, IncomingBody, Location, Media, MediaKind, Poll, ReceiptKind, Structured};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::routes::Message;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(scan))
        .routes(routes!(remove_device))
        .routes(routes!(make_business))
        .routes(routes!(picture))
        .routes(routes!(rename_group))
        .routes(routes!(create_group))
        .routes(routes!(incoming))
        .routes(routes!(receipts))
        .routes(routes!(outbox))
        .routes(routes!(signals))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrScan {
    #[schema(example = "237123456789")]
    pub phone: String,
    /// The code the phone read off a screen: only the login showing it succeeds.
    pub code: Option<String>,
}

/// The phone scans the newest pending QR code (or the one showing `code`), so that login
/// succeeds as this number.
#[utoipa::path(post, path = "/sim/qr/scan", tag = "sim", request_body = QrScan,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn scan(State(state): State<AppState>, Json(scan): Json<QrScan>) -> ApiResult<Json<Message>> {
    sim(&state)?.scan(phone(&scan.phone)?, scan.code.as_deref()).await.map_err(network_error)?;
    Ok(Json(Message::new("QR code scanned")))
}

/// The phone logs the linked device out, as from Settings → Linked devices.
#[utoipa::path(post, path = "/sim/devices/remove", tag = "sim", request_body = Scan,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn remove_device(State(state): State<AppState>, Json(device): Json<Scan>) -> ApiResult<Json<Message>> {
    sim(&state)?.remove_device(&phone(&device.phone)?).map_err(network_error)?;
    Ok(Json(Message::new("Device removed on the phone")))
}

/// The number becomes a WhatsApp Business account.
#[utoipa::path(post, path = "/sim/business", tag = "sim", request_body = Scan,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn make_business(State(state): State<AppState>, Json(number): Json<Scan>) -> ApiResult<Json<Message>> {
    sim(&state)?.make_business(phone(&number.phone)?);
    Ok(Json(Message::new("Now a business account")))
}

/// The profile picture a number set, as the simulated WhatsApp serves it.
#[utoipa::path(get, path = "/sim/pictures/{phone}", tag = "sim", params(("phone" = String, Path)),
    responses((status = 200, content_type = "image/jpeg"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn picture(State(state): State<AppState>, Path(number): Path<String>) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let picture = sim(&state)?.picture(&phone(&number)?).ok_or(ApiError::NotFound("picture"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "image/jpeg")], picture).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRename {
    pub jid: String,
    pub name: String,
    /// The member who renames it; any member when not given.
    pub by: Option<String>,
}

/// A member renames the group.
#[utoipa::path(post, path = "/sim/groups/rename", tag = "sim", request_body = GroupRename,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rename_group(State(state): State<AppState>, Json(rename): Json<GroupRename>) -> ApiResult<Json<Message>> {
    if rename.name.trim().is_empty() {
        return Err(ApiError::unprocessable("name must not be empty"));
    }
    let by = rename.by.as_deref().map(phone).transpose()?;
    sim(&state)?.rename_group(&rename.jid, by, rename.name).await.map_err(network_error)?;
    Ok(Json(Message::new("Group renamed")))
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
    Ok(Json(sim(&state)?.new_group(group.name, members)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedMedia {
    pub base64: String,
    pub mime_type: String,
    pub file_name: String,
    /// How the file is shown; by its type when not given.
    pub kind: Option<MediaKind>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    /// The recipient may open it once.
    #[serde(default)]
    pub view_once: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedReaction {
    /// Network id of the message reacted to.
    pub target: String,
    /// Empty takes the contact's reaction back.
    pub emoji: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedEdit {
    pub target: String,
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedDeletion {
    pub target: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedVote {
    /// Network id of the poll voted on.
    pub target: String,
    /// The options now chosen, by name; none takes the vote back.
    pub options: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedCall {
    #[serde(default)]
    pub video: bool,
}

/// A message (`text`, `media`, `reply_to`), or exactly one of `reaction`, `edit`,
/// `delete`, `poll_vote`, `call`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incoming {
    /// The linked device that receives the message.
    pub device_id: String,
    /// The sender's phone number.
    pub from: String,
    /// Set for a group message: the group's JID.
    pub group_jid: Option<String>,
    /// The account wrote it, on its phone (in the chat with `from`, or in `group_jid`).
    #[serde(default)]
    pub from_me: bool,
    pub text: Option<String>,
    pub media: Option<InjectedMedia>,
    /// Network id of the message this one quotes.
    pub reply_to: Option<String>,
    pub location: Option<Location>,
    pub contact_cards: Option<Vec<ContactCard>>,
    pub poll: Option<Poll>,
    pub reaction: Option<InjectedReaction>,
    pub edit: Option<InjectedEdit>,
    pub delete: Option<InjectedDeletion>,
    pub poll_vote: Option<InjectedVote>,
    pub call: Option<InjectedCall>,
}

impl Incoming {
    fn body(self) -> ApiResult<IncomingBody> {
        let structured = match (self.location, self.contact_cards, self.poll) {
            (None, None, None) => None,
            (Some(location), None, None) => Some(Structured::Location(location)),
            (None, Some(cards), None) => Some(Structured::ContactCards { cards }),
            (None, None, Some(poll)) => Some(Structured::Poll(poll)),
            _ => return Err(ApiError::unprocessable("give at most one of location, contact_cards, poll")),
        };
        let message = self.text.is_some() || self.media.is_some() || self.reply_to.is_some() || structured.is_some();
        let given = [
            message,
            self.reaction.is_some(),
            self.edit.is_some(),
            self.delete.is_some(),
            self.poll_vote.is_some(),
            self.call.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ApiError::unprocessable(
                "give text and/or media, or one of reaction, edit, delete, poll_vote, call",
            ));
        }
        if let Some(vote) = self.poll_vote {
            return Ok(IncomingBody::PollVote { target: vote.target, options: vote.options });
        }
        if let Some(call) = self.call {
            // Whether it is turned down is the device's setting, not the caller's.
            return Ok(IncomingBody::Call { video: call.video, rejected: false });
        }
        if let Some(reaction) = self.reaction {
            return Ok(IncomingBody::Reaction { target: reaction.target, emoji: reaction.emoji });
        }
        if let Some(edit) = self.edit {
            return Ok(IncomingBody::Edit { target: edit.target, text: edit.text });
        }
        if let Some(delete) = self.delete {
            return Ok(IncomingBody::Delete { target: delete.target });
        }
        if self.text.is_none() && self.media.is_none() && structured.is_none() {
            return Err(ApiError::unprocessable("give text, media, or both"));
        }
        let media = match self.media {
            Some(m) => Some(Media {
                kind: m.kind.unwrap_or_else(|| MediaKind::of_mime_type(&m.mime_type)),
                data: STANDARD.decode(&m.base64).map_err(|e| ApiError::unprocessable(format!("media.base64: {e}")))?,
                mime_type: m.mime_type,
                file_name: m.file_name,
                width: m.width,
                height: m.height,
                duration: m.duration_ms.map(std::time::Duration::from_millis),
                view_once: m.view_once,
            }),
            None => None,
        };
        Ok(IncomingBody::Message { text: self.text, media, reply_to: self.reply_to, structured })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Injection {
    pub message_id: String,
}

/// A contact sends a message (or reacts, edits, deletes) to a linked device.
#[utoipa::path(post, path = "/sim/incoming", tag = "sim", request_body = Incoming,
    responses((status = 200, body = Injection), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn incoming(State(state): State<AppState>, Json(incoming): Json<Incoming>) -> ApiResult<Json<Injection>> {
    let (device, from, group) = (phone(&incoming.device_id)?, phone(&incoming.from)?, incoming.group_jid.clone());
    let from_me = incoming.from_me;
    let injected = Injected { device, from, group, from_me, body: incoming.body()? };
    let message_id = sim(&state)?.inject(injected).await.map_err(network_error)?;
    Ok(Json(Injection { message_id }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectedReceipt {
    /// The linked device that sent the messages.
    pub device_id: String,
    /// Who received or read them.
    pub from: String,
    /// Set for a group: the group's JID.
    pub group_jid: Option<String>,
    /// Network ids of the messages, as the outbox lists them.
    pub message_ids: Vec<String>,
    pub kind: ReceiptKind,
}

/// A contact's phone reports that messages the device sent were delivered or read.
#[utoipa::path(post, path = "/sim/receipts", tag = "sim", request_body = InjectedReceipt,
    responses((status = 200, body = Message), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn receipts(State(state): State<AppState>, Json(receipt): Json<InjectedReceipt>) -> ApiResult<Json<Message>> {
    let (device, from) = (phone(&receipt.device_id)?, phone(&receipt.from)?);
    sim(&state)?.receipt(device, from, receipt.group_jid, receipt.message_ids, receipt.kind).map_err(network_error)?;
    Ok(Json(Message::new("receipt sent")))
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

/// What a device showed beside its messages (typing, reading, being online), oldest first.
#[utoipa::path(get, path = "/sim/signals", tag = "sim", params(OutboxQuery),
    responses((status = 200, body = Vec<Signal>), (status = 422, body = ErrorBody)))]
async fn signals(State(state): State<AppState>, Query(query): Query<OutboxQuery>) -> ApiResult<Json<Vec<Signal>>> {
    Ok(Json(sim(&state)?.signals(&phone(&query.device_id)?)))
}
