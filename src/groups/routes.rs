//! `GET|POST /devices/{id}/groups`, `GET|PUT /devices/{id}/groups/{chat_id}`,
//! `POST …/participants`, `GET|DELETE …/invite`, `POST …/leave`.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use mxgate_bridge::network::{GroupSettings, MemberAction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use mxgate_bridge::ids::ChatId;
use ruma::OwnedUserId;

use super::{Group, MemberResult, group_chat, phones};
use crate::auth::TokenAuth;
use crate::contacts::routes::PhoneText;
use crate::devices::service::identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::routes::Message;
use crate::state::AppState;

/// WhatsApp's longest subject and description.
const SUBJECT_MOST: usize = 100;
const DESCRIPTION_MOST: usize = 2048;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update))
        .routes(routes!(participants))
        .routes(routes!(invite, revoke_invite))
        .routes(routes!(leave))
}

/// What every `/devices/{device_id}/groups/{chat_id}…` route starts from: the caller's
/// Matrix user (the token is checked before the path is read), the device and the group.
struct GroupRoute {
    user: OwnedUserId,
    device_id: String,
    chat: ChatId,
}

impl FromRequestParts<AppState> for GroupRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TokenAuth(token) = TokenAuth::from_request_parts(parts, state).await?;
        let user = identity(&token)?;
        let Path((device_id, chat_id)) = Path::<(String, String)>::from_request_parts(parts, state).await?;
        Ok(Self { user, device_id, chat: group_chat(&chat_id)? })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Groups {
    pub groups: Vec<Group>,
}

/// The groups the device is in, as WhatsApp has them now.
#[utoipa::path(get, path = "/devices/{device_id}/groups", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    responses((status = 200, body = Groups), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
) -> ApiResult<Json<Groups>> {
    let user = identity(&token)?;
    Ok(Json(Groups { groups: super::list(&state, &user, &device_id).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// 1 to 100 characters.
    #[schema(example = "Team", min_length = 1, max_length = 100)]
    pub subject: String,
    /// Up to 256 phone numbers (one named twice is added once); the device is the
    /// group's owner.
    #[schema(value_type = Vec<PhoneText>, example = json!(["237698765432"]), max_items = 256)]
    pub participants: Vec<String>,
}

fn subject(subject: &str) -> ApiResult<()> {
    match subject.trim().is_empty() || subject.chars().count() > SUBJECT_MOST {
        true => Err(ApiError::unprocessable(format!("subject is 1 to {SUBJECT_MOST} characters"))),
        false => Ok(()),
    }
}

/// Make a group with the device as its owner. Its portal is made at once (`room_id`);
/// the members join it, and `group.created` is delivered, as WhatsApp tells the device.
#[utoipa::path(post, path = "/devices/{device_id}/groups", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    request_body = NewGroup,
    responses((status = 201, body = Group), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Json(body): Json<NewGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let user = identity(&token)?;
    subject(&body.subject)?;
    let members = phones("participants", &body.participants)?;
    let group = super::create(&state, &user, &device_id, &body.subject, &members).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// A group's subject, description, settings and participants with their roles.
#[utoipa::path(get, path = "/devices/{device_id}/groups/{chat_id}", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    responses((status = 200, body = Group), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get(State(state): State<AppState>, route: GroupRoute) -> ApiResult<Json<Group>> {
    let GroupRoute { user, device_id, chat } = route;
    Ok(Json(super::get(&state, &user, &device_id, &chat).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub subject: Option<String>,
    /// Up to 2048 characters; empty removes it.
    #[schema(max_length = 2048)]
    pub description: Option<String>,
    /// A picture (JPEG, PNG, GIF or WebP), base64; sent as a JPEG of at most 640×640.
    #[schema(min_length = 16, pattern = r"^[A-Za-z0-9+/]+={0,2}$")]
    pub picture_base64: Option<String>,
    /// Only admins send messages.
    pub announce: Option<bool>,
    /// Only admins edit the subject, description and picture.
    pub locked: Option<bool>,
}

/// Change what the body names; the rest stays. Each change is its own `group.updated`
/// webhook, and the portal shows it (name, topic, avatar, power levels).
#[utoipa::path(put, path = "/devices/{device_id}/groups/{chat_id}", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    request_body = GroupUpdate,
    responses((status = 200, body = Group), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    route: GroupRoute,
    Json(body): Json<GroupUpdate>,
) -> ApiResult<Json<Group>> {
    let GroupRoute { user, device_id, chat } = route;
    if let Some(new) = &body.subject {
        subject(new)?;
    }
    if body.description.as_ref().is_some_and(|d| d.chars().count() > DESCRIPTION_MOST) {
        return Err(ApiError::unprocessable(format!("description is at most {DESCRIPTION_MOST} characters")));
    }
    let picture = body.picture_base64.as_deref().map(crate::contacts::picture).transpose()?;
    let settings = GroupSettings {
        subject: body.subject,
        description: body.description,
        picture,
        announce: body.announce,
        locked: body.locked,
    };
    if settings == GroupSettings::default() {
        return Err(ApiError::unprocessable(
            "name at least one of subject, description, picture_base64, announce, locked",
        ));
    }
    super::update(&state, &user, &device_id, &chat, settings).await?;
    Ok(Json(super::get(&state, &user, &device_id, &chat).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantsChange {
    pub action: MemberAction,
    /// 1 to 256 phone numbers; one named twice is acted on once, and answered twice.
    #[schema(value_type = Vec<PhoneText>, example = json!(["237698765432"]), min_items = 1, max_items = 256)]
    pub phones: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantsChanged {
    /// One per number, in the order given.
    pub results: Vec<MemberResult>,
}

/// Add, remove, promote or demote participants (the device must be an admin). Each number
/// has its result; those done are one `group.participants` webhook.
#[utoipa::path(post, path = "/devices/{device_id}/groups/{chat_id}/participants", tag = "groups",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    request_body = ParticipantsChange,
    responses((status = 200, body = ParticipantsChanged), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn participants(
    State(state): State<AppState>,
    route: GroupRoute,
    Json(body): Json<ParticipantsChange>,
) -> ApiResult<Json<ParticipantsChanged>> {
    let GroupRoute { user, device_id, chat } = route;
    if body.phones.is_empty() {
        return Err(ApiError::unprocessable("phones names at least one number"));
    }
    let parsed = phones("phones", &body.phones)?;
    let results = super::change_members(&state, &user, &device_id, &chat, body.action, body.phones, &parsed).await?;
    Ok(Json(ParticipantsChanged { results }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InviteLink {
    #[schema(example = "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv")]
    pub invite_url: String,
}

/// The group's invite link (the device must be an admin).
#[utoipa::path(get, path = "/devices/{device_id}/groups/{chat_id}/invite", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    responses((status = 200, body = InviteLink), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn invite(State(state): State<AppState>, route: GroupRoute) -> ApiResult<Json<InviteLink>> {
    let GroupRoute { user, device_id, chat } = route;
    Ok(Json(InviteLink { invite_url: super::invite_link(&state, &user, &device_id, &chat, false).await? }))
}

/// Revoke the invite link; the answer is the new one.
#[utoipa::path(delete, path = "/devices/{device_id}/groups/{chat_id}/invite", tag = "groups",
    security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    responses((status = 200, body = InviteLink), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn revoke_invite(State(state): State<AppState>, route: GroupRoute) -> ApiResult<Json<InviteLink>> {
    let GroupRoute { user, device_id, chat } = route;
    Ok(Json(InviteLink { invite_url: super::invite_link(&state, &user, &device_id, &chat, true).await? }))
}

/// Leave the group. Its portal stays, readable, with the history.
#[utoipa::path(post, path = "/devices/{device_id}/groups/{chat_id}/leave", tag = "groups", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("chat_id" = String, Path, description = "The group's JID", pattern = r"^[0-9]{6,20}(-[0-9]{1,12})?@g\.us$")),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn leave(State(state): State<AppState>, route: GroupRoute) -> ApiResult<Json<Message>> {
    let GroupRoute { user, device_id, chat } = route;
    super::leave(&state, &user, &device_id, &chat).await?;
    Ok(Json(Message::new("Left the group")))
}
