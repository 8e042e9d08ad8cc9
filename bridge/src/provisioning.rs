//! The provisioning API, in the shape of mautrix's (`/_matrix/provision/v3/…`):
//! a shared secret in `Authorization: Bearer`, the acting user in `?user_id=`.
//! mxgate adds `POST /v3/join_group` (resolve and join a group invite URL) and
//! `POST /v3/send` (queue an event the caller just sent).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::{BridgeError, Core};
use crate::ids::{ChatId, GroupInvite, PhoneNumber};
use crate::login::{self, Step};
use crate::network::{
    AccountId, ConnectionState, GroupInfo, GroupSettings, LoginMethod, MemberAction, NetworkError, Profile,
    ProfileChange, Typing,
};
use crate::portal::{PortalInfo, ensure_portal};
use crate::store;

pub const QR_STEP: &str = "fi.mxgate.whatsapp.qr";
pub const PAIR_CODE_STEP: &str = "fi.mxgate.whatsapp.pair_code";

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/_matrix/provision/v3/login/start/qr", post(login_start))
        .route("/_matrix/provision/v3/login/start/phone", post(login_start_phone))
        .route("/_matrix/provision/v3/login/step/{process}/{step}/display_and_wait", post(login_step))
        .route("/_matrix/provision/v3/login/cancel/{process}", post(login_cancel))
        .route("/_matrix/provision/v3/logins", get(logins))
        .route("/_matrix/provision/v3/logout/{login_id}", post(logout))
        .route("/_matrix/provision/v3/create_dm/{identifier}", post(create_dm))
        .route("/_matrix/provision/v3/join_group", post(join_group))
        .route("/_matrix/provision/v3/typing", post(typing))
        .route("/_matrix/provision/v3/read", post(read))
        .route("/_matrix/provision/v3/presence", post(presence))
        .route("/_matrix/provision/v3/contacts/check", post(check_numbers))
        .route("/_matrix/provision/v3/contacts/{phone}/profile", get(contact_profile))
        .route("/_matrix/provision/v3/profile", get(own_profile).put(set_profile))
        .route("/_matrix/provision/v3/groups", get(groups).post(create_group))
        .route("/_matrix/provision/v3/groups/{chat}", get(group).put(update_group))
        .route("/_matrix/provision/v3/groups/{chat}/members", post(change_members))
        .route("/_matrix/provision/v3/groups/{chat}/invite", post(invite_link))
        .route("/_matrix/provision/v3/groups/{chat}/leave", post(leave_group))
}

/// A provisioning error in Matrix's shape, `{"errcode", "error"}`.
#[derive(Debug)]
pub struct ProvisionError(StatusCode, &'static str, String);

impl IntoResponse for ProvisionError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "errcode": self.1, "error": self.2 }))).into_response()
    }
}

impl From<BridgeError> for ProvisionError {
    fn from(error: BridgeError) -> Self {
        match error {
            BridgeError::Network(e) => e.into(),
            BridgeError::Invalid(message) => Self(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message),
            BridgeError::Id(error) => error.into(),
            too_many @ BridgeError::TooManyLogins(_) => {
                Self(StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED", too_many.to_string())
            }
            other => {
                tracing::error!(error = %other, "provisioning request failed");
                Self(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "the bridge failed; its log has the detail".into())
            }
        }
    }
}

impl From<NetworkError> for ProvisionError {
    fn from(error: NetworkError) -> Self {
        let (status, code) = match &error {
            NetworkError::NotOnNetwork(_) => (StatusCode::NOT_FOUND, "FI.MXGATE.NOT_ON_WHATSAPP"),
            NetworkError::InvalidInvite => (StatusCode::NOT_FOUND, "FI.MXGATE.INVALID_INVITE"),
            NetworkError::Disconnected => (StatusCode::CONFLICT, "FI.MXGATE.DISCONNECTED"),
            NetworkError::NoPendingLogin => (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            NetworkError::NoSuchGroup(_) => (StatusCode::NOT_FOUND, "FI.MXGATE.NO_SUCH_GROUP"),
            NetworkError::NotAdmin => (StatusCode::FORBIDDEN, "FI.MXGATE.NOT_ADMIN"),
            NetworkError::Refused(_) => (StatusCode::BAD_GATEWAY, "FI.MXGATE.NETWORK_REFUSED"),
        };
        Self(status, code, error.to_string())
    }
}

impl From<crate::ids::IdError> for ProvisionError {
    fn from(error: crate::ids::IdError) -> Self {
        invalid(error.to_string())
    }
}

impl From<sqlx::Error> for ProvisionError {
    fn from(error: sqlx::Error) -> Self {
        BridgeError::from(error).into()
    }
}

fn invalid(message: impl Into<String>) -> ProvisionError {
    ProvisionError(StatusCode::BAD_REQUEST, "M_INVALID_PARAM", message.into())
}

/// The acting user, after the shared secret was checked.
pub struct Caller(OwnedUserId);

#[derive(Deserialize)]
struct CallerQuery {
    user_id: Option<String>,
}

impl FromRequestParts<Arc<Core>> for Caller {
    type Rejection = ProvisionError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, ProvisionError> {
        let given = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ProvisionError(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing auth token".into()))?;
        if !core.provisioning.provisioning_secret.matches(given) {
            return Err(ProvisionError(StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN", "Invalid auth token".into()));
        }
        let Query(query) = Query::<CallerQuery>::try_from_uri(&parts.uri).map_err(|e| invalid(e.body_text()))?;
        let user = query.user_id.ok_or_else(|| invalid("user_id is required"))?;
        let user = UserId::parse(&user).map_err(|e| invalid(format!("user_id: {e}")))?;
        Ok(Self(user))
    }
}

fn step_json(process: &str, step: Step) -> Result<Value, ProvisionError> {
    match step {
        Step::Qr(code) => Ok(json!({
            "login_id": process,
            "type": "display_and_wait",
            "step_id": QR_STEP,
            "instructions": "Scan the QR code with WhatsApp on your phone: Settings → Linked devices → Link a device",
            "display_and_wait": { "type": "qr", "data": code },
        })),
        Step::PairCode(code) => Ok(json!({
            "login_id": process,
            "type": "display_and_wait",
            "step_id": PAIR_CODE_STEP,
            "instructions": "On your phone: Settings → Linked devices → Link a device → Link with phone number instead, then type this code",
            "display_and_wait": { "type": "code", "data": code },
        })),
        Step::Complete(account) => Ok(json!({
            "login_id": process,
            "type": "complete",
            "step_id": "fi.mxgate.whatsapp.complete",
            "instructions": format!("Linked {account}"),
            "complete": { "user_login_id": account },
        })),
        Step::TimedOut => Err(ProvisionError(
            StatusCode::GONE,
            "FI.MAU.BRIDGE.LOGIN_TIMED_OUT",
            "no QR code was scanned in time".into(),
        )),
        Step::Failed(reason) => Err(ProvisionError(StatusCode::BAD_REQUEST, "FI.MXGATE.LOGIN_FAILED", reason)),
    }
}

async fn login_start(State(core): State<Arc<Core>>, Caller(user): Caller) -> Result<Json<Value>, ProvisionError> {
    let (process, step) = login::start(&core, &user, LoginMethod::Qr).await?;
    Ok(Json(step_json(&process, step)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneLogin {
    phone_number: String,
}

/// Linking by pairing code: mautrix asks the number in a `user_input` step; mxgate takes
/// it in the start request, since its only caller already has it.
async fn login_start_phone(
    State(core): State<Arc<Core>>,
    Caller(user): Caller,
    body: Result<Json<PhoneLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ProvisionError> {
    let Json(body) = body.map_err(|e| invalid(e.body_text()))?;
    let phone: PhoneNumber = body.phone_number.parse()?;
    let (process, step) = login::start(&core, &user, LoginMethod::PairCode(phone)).await?;
    Ok(Json(step_json(&process, step)?))
}

async fn login_step(
    State(core): State<Arc<Core>>,
    Caller(user): Caller,
    Path((process, step)): Path<(String, String)>,
) -> Result<Json<Value>, ProvisionError> {
    if step != QR_STEP {
        return Err(ProvisionError(StatusCode::BAD_REQUEST, "M_BAD_STATE", "Step ID does not match".into()));
    }
    let not_found = || ProvisionError(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Login not found".into());
    let step = login::next(&core, &process, &user).await?.ok_or_else(not_found)?;
    Ok(Json(step_json(&process, step)?))
}

async fn login_cancel(
    State(core): State<Arc<Core>>,
    Caller(user): Caller,
    Path(process): Path<String>,
) -> Result<Json<Value>, ProvisionError> {
    if !login::cancel(&core, &process, &user) {
        return Err(ProvisionError(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Login not found".into()));
    }
    Ok(Json(json!({})))
}

/// `login_ids` as mautrix has it (the usable ones), and mxgate's `logins` beside it with
/// each device's connection state, including those the phone logged out.
async fn logins(State(core): State<Arc<Core>>, Caller(user): Caller) -> Result<Json<Value>, ProvisionError> {
    let logins = store::listed_logins_of(&core.db, user.as_str()).await?;
    let ids: Vec<&str> = logins.iter().filter(|l| l.state == store::CONNECTED).map(|l| l.account_id.as_str()).collect();
    let mut states = Vec::with_capacity(logins.len());
    for l in &logins {
        let state = match l.account_id.parse::<AccountId>() {
            Ok(account) if l.state == store::CONNECTED => core.device_state(&account).await?,
            _ => ConnectionState::LoggedOut,
        };
        let error = match &state {
            ConnectionState::Error(message) => Some(message.clone()),
            _ => None,
        };
        states.push(json!({ "id": l.account_id, "state": state.as_str(), "error": error }));
    }
    Ok(Json(json!({ "login_ids": ids, "logins": states })))
}

fn parse_account(text: &str) -> Result<AccountId, ProvisionError> {
    Ok(text.parse()?)
}

async fn logout(
    State(core): State<Arc<Core>>,
    Caller(user): Caller,
    Path(login_id): Path<String>,
) -> Result<Json<Value>, ProvisionError> {
    let account = parse_account(&login_id)?;
    if !login::logout(&core, &user, &account).await? {
        return Err(ProvisionError(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Login not found".into()));
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LoginQuery {
    login_id: Option<String>,
}

/// The caller and the login a call acts through: the one `login_id` names, or the
/// caller's only one.
struct Acting {
    user: OwnedUserId,
    account: AccountId,
}

impl FromRequestParts<Arc<Core>> for Acting {
    type Rejection = ProvisionError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, ProvisionError> {
        let Caller(user) = Caller::from_request_parts(parts, core).await?;
        let Query(query) = Query::<LoginQuery>::try_from_uri(&parts.uri).map_err(|e| invalid(e.body_text()))?;
        let logins = store::logins_of(&core.db, user.as_str()).await?;
        let login = match query.login_id {
            Some(id) => logins.into_iter().find(|l| l.account_id == id),
            None if logins.len() == 1 => logins.into_iter().next(),
            None => None,
        };
        let login =
            login.ok_or_else(|| ProvisionError(StatusCode::NOT_FOUND, "M_NOT_FOUND", "Login not found".into()))?;
        Ok(Self { account: parse_account(&login.account_id)?, user })
    }
}

async fn create_dm(
    State(core): State<Arc<Core>>,
    Acting { user, account }: Acting,
    Path(identifier): Path<String>,
) -> Result<(StatusCode, Json<Value>), ProvisionError> {
    let phone: PhoneNumber = identifier.parse()?;
    let answer = |portal: store::PortalRow| json!({ "id": phone, "name": portal.name, "mxid": core.puppet_id(phone.as_str()), "dm_room_mxid": portal.room_id });
    // A portal exists only for a number already checked: no network query on every send.
    let chat = ChatId::Direct(phone.clone());
    if let Some(portal) = store::portal(&core.db, account.as_str(), &chat.to_string()).await? {
        return Ok((StatusCode::OK, Json(answer(portal))));
    }
    let contact = core.network.resolve_contact(&account, &phone).await?;
    let portal = ensure_portal(&core, &account, &user, PortalInfo::Direct(&contact)).await?;
    Ok((StatusCode::CREATED, Json(answer(portal))))
}

#[derive(Deserialize)]
struct JoinGroup {
    invite_url: String,
}

async fn join_group(
    State(core): State<Arc<Core>>,
    Acting { user, account }: Acting,
    Json(body): Json<JoinGroup>,
) -> Result<Json<Value>, ProvisionError> {
    let invite: GroupInvite = body.invite_url.parse()?;
    let group = core.network.join_group(&account, &invite).await?;
    let portal = ensure_portal(&core, &account, &user, PortalInfo::Group(&group)).await?;
    Ok(Json(json!({ "id": group.chat.to_string(), "name": group.name, "mxid": portal.room_id })))
}

/// A group as the network shows it, and its portal when there is one.
async fn group_answer(core: &Core, account: &AccountId, group: &GroupInfo) -> Result<Value, ProvisionError> {
    let portal = store::portal(&core.db, account.as_str(), &group.chat.to_string()).await?;
    let mut answer = serde_json::to_value(group).map_err(|e| BridgeError::Invalid(e.to_string()))?;
    answer["room_id"] = json!(portal.map(|p| p.room_id));
    Ok(answer)
}

/// A `{chat}` path segment that names a group.
struct GroupPath(ChatId);

impl FromRequestParts<Arc<Core>> for GroupPath {
    type Rejection = ProvisionError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, ProvisionError> {
        let Path(chat) = Path::<String>::from_request_parts(parts, core).await.map_err(|e| invalid(e.body_text()))?;
        match chat.parse::<ChatId>()? {
            chat @ ChatId::Group(_) => Ok(Self(chat)),
            other => Err(invalid(format!("{other} is not a group"))),
        }
    }
}

async fn groups(State(core): State<Arc<Core>>, Acting { account, .. }: Acting) -> Result<Json<Value>, ProvisionError> {
    let mut groups = Vec::new();
    for group in core.network.groups(&account).await? {
        groups.push(group_answer(&core, &account, &group).await?);
    }
    Ok(Json(json!({ "groups": groups })))
}

#[derive(Deserialize)]
struct NewGroup {
    subject: String,
    members: Vec<PhoneNumber>,
}

/// Makes a group and its portal; the members' puppets join it as the network tells of it.
async fn create_group(
    State(core): State<Arc<Core>>,
    Acting { user, account }: Acting,
    Json(body): Json<NewGroup>,
) -> Result<(StatusCode, Json<Value>), ProvisionError> {
    let group = core.network.create_group(&account, &body.subject, &body.members).await?;
    ensure_portal(&core, &account, &user, PortalInfo::Group(&group)).await?;
    Ok((StatusCode::CREATED, Json(group_answer(&core, &account, &group).await?)))
}

async fn group(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    GroupPath(chat): GroupPath,
) -> Result<Json<Value>, ProvisionError> {
    let group = core.network.group_info(&account, &chat).await?;
    Ok(Json(group_answer(&core, &account, &group).await?))
}

async fn update_group(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    GroupPath(chat): GroupPath,
    Json(settings): Json<GroupSettings>,
) -> Result<Json<Value>, ProvisionError> {
    core.network.update_group(&account, &chat, settings).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ChangeMembers {
    action: MemberAction,
    phones: Vec<PhoneNumber>,
}

async fn change_members(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    GroupPath(chat): GroupPath,
    Json(body): Json<ChangeMembers>,
) -> Result<Json<Value>, ProvisionError> {
    let results = core.network.change_members(&account, &chat, body.action, &body.phones).await?;
    Ok(Json(json!({ "results": results })))
}

#[derive(Deserialize)]
struct InviteQuery {
    #[serde(default)]
    reset: bool,
}

async fn invite_link(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    GroupPath(chat): GroupPath,
    Query(query): Query<InviteQuery>,
) -> Result<Json<Value>, ProvisionError> {
    let url = core.network.invite_link(&account, &chat, query.reset).await?;
    Ok(Json(json!({ "invite_url": url })))
}

async fn leave_group(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    GroupPath(chat): GroupPath,
) -> Result<Json<Value>, ProvisionError> {
    core.network.leave_group(&account, &chat).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ShowTyping {
    chat_id: ChatId,
    state: Typing,
}

/// Shows a chat that the device is typing, recording or stopped. Answered by the process
/// that runs the device; elsewhere the device is "disconnected".
async fn typing(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Json(body): Json<ShowTyping>,
) -> Result<Json<Value>, ProvisionError> {
    core.network.send_typing(&account, &body.chat_id, body.state).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct MarkRead {
    chat_id: ChatId,
    /// One received message; without it, every unread one of the chat.
    event_id: Option<String>,
}

/// The most messages one call marks read: WhatsApp's own cap on one receipt.
pub(crate) const READ_AT_ONCE: i64 = 256;

/// Marks a received message, or every unread one of a chat, read on the network.
async fn read(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Json(body): Json<MarkRead>,
) -> Result<Json<Value>, ProvisionError> {
    let chat = body.chat_id.to_string();
    let messages: Vec<(String, String)> = match &body.event_id {
        Some(event_id) => {
            let message = store::message_by_event(&core.db, event_id)
                .await?
                .filter(|m| m.account_id == account.as_str() && m.chat_id == chat && m.direction == "in");
            let message = message.ok_or_else(|| {
                ProvisionError(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no message received in this chat".into())
            })?;
            let sender = message.sender.ok_or_else(|| invalid("a reaction, edit or deletion is not read"))?;
            vec![(message.network_id, sender)]
        }
        None => store::unread(&core.db, account.as_str(), &chat, None, READ_AT_ONCE).await?,
    };
    let read = crate::signals::mark_read(&core, &account, &body.chat_id, messages).await?;
    Ok(Json(json!({ "read": read })))
}

#[derive(Deserialize)]
struct ShowPresence {
    available: bool,
}

async fn presence(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Json(body): Json<ShowPresence>,
) -> Result<Json<Value>, ProvisionError> {
    core.network.send_presence(&account, body.available).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct CheckNumbers {
    phones: Vec<PhoneNumber>,
}

/// Which of the numbers are on WhatsApp, asked by the device in one query (answers are
/// kept an hour).
async fn check_numbers(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Json(body): Json<CheckNumbers>,
) -> Result<Json<Value>, ProvisionError> {
    let results = core.numbers.check(core.network.as_ref(), &account, &body.phones).await?;
    Ok(Json(json!({ "results": results })))
}

/// A contact's About and picture, as the network shows them to the device.
async fn contact_profile(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Path(phone): Path<String>,
) -> Result<Json<Profile>, ProvisionError> {
    let phone: PhoneNumber = phone.parse()?;
    Ok(Json(core.network.contact_profile(&account, &phone).await?))
}

async fn own_profile(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
) -> Result<Json<Profile>, ProvisionError> {
    Ok(Json(core.network.own_profile(&account).await?))
}

async fn set_profile(
    State(core): State<Arc<Core>>,
    Acting { account, .. }: Acting,
    Json(change): Json<ProfileChange>,
) -> Result<Json<Value>, ProvisionError> {
    core.network.set_profile(&account, change).await?;
    Ok(Json(json!({})))
}
