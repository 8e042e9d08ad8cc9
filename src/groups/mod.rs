//! WhatsApp groups a device is in: made, read and administered through the bridge that
//! runs the device. The portal follows each change as the members hear of it (see the
//! bridge's `groups` module), and webhooks tell it as `group.*` events.

pub mod routes;

use mxgate_bridge::ids::{ChatId, PhoneNumber};
use mxgate_bridge::network::{GroupMember, MemberAction};
use reqwest::Method;
use ruma::OwnedUserId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::chats::parse_chat;
use crate::error::{ApiError, ApiResult};
use crate::messages::service::linked;
use crate::state::AppState;

/// The most members one request names, and one group is made with: WhatsApp's
/// smallest group size limit.
pub const MOST_MEMBERS: usize = 256;

/// A group as the device sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// The group's JID: what `chat_id` names in messages, chats and webhooks.
    #[schema(example = "120363012345678901@g.us")]
    pub chat_id: String,
    #[schema(example = "Team")]
    pub subject: String,
    pub description: Option<String>,
    /// Only admins send messages.
    pub announce: bool,
    /// Only admins edit the subject, description and picture.
    pub locked: bool,
    pub participants: Vec<GroupMember>,
    /// The portal room, for Matrix clients; `null` until the group has one.
    pub room_id: Option<String>,
}

/// The bridge's answer for one group, in the API's words.
#[derive(Deserialize)]
struct BridgeGroup {
    chat: String,
    name: String,
    topic: Option<String>,
    members: Vec<GroupMember>,
    announce: bool,
    locked: bool,
    room_id: Option<String>,
}

impl From<BridgeGroup> for Group {
    fn from(g: BridgeGroup) -> Self {
        Self {
            chat_id: g.chat,
            subject: g.name,
            description: g.topic,
            announce: g.announce,
            locked: g.locked,
            participants: g.members,
            room_id: g.room_id,
        }
    }
}

/// How a member change went for one number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberResult {
    /// As given.
    #[schema(example = "237698765432")]
    pub phone: String,
    /// Done.
    pub ok: bool,
    /// Why not: `already_member`, `not_member`, `not_on_whatsapp` or `refused` (their
    /// privacy settings allow only contacts to add them, or WhatsApp said no).
    pub error: Option<String>,
}

/// A path's `{chat_id}` that must name a group.
pub fn group_chat(raw: &str) -> ApiResult<ChatId> {
    match parse_chat(raw)? {
        chat @ ChatId::Group(_) => Ok(chat),
        ChatId::Direct(_) => Err(ApiError::unprocessable("chat_id is a group JID (…@g.us)")),
    }
}

/// Numbers as given, parsed, each once; `field` names them in errors.
pub fn phones(field: &str, given: &[String]) -> ApiResult<Vec<PhoneNumber>> {
    if given.len() > MOST_MEMBERS {
        return Err(ApiError::unprocessable(format!("{field} holds at most {MOST_MEMBERS} numbers")));
    }
    let mut parsed = Vec::with_capacity(given.len());
    for (n, phone) in given.iter().enumerate() {
        let number = phone.parse::<PhoneNumber>();
        let number = number.map_err(|e| ApiError::unprocessable(format!("{field}[{n}]: {e}")))?;
        if !parsed.contains(&number) {
            parsed.push(number);
        }
    }
    Ok(parsed)
}

/// Calls the bridge that runs `device_id` for its linked owner `user`.
async fn call(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    method: Method,
    path: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> ApiResult<Value> {
    linked(state, user, device_id).await?;
    let bridge = state.bridge.for_device(&state.db, device_id).await?;
    let query: Vec<(&str, &str)> = [("login_id", device_id)].into_iter().chain(query.iter().copied()).collect();
    Ok(bridge.call(method, path, user, &query, body).await?)
}

fn unreadable(what: &str, error: serde_json::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("the bridge answered {what} unreadably: {error}"))
}

fn group_path(chat: &ChatId) -> String {
    format!("groups/{}", crate::bridge_client::segment(&chat.to_string()))
}

pub async fn list(state: &AppState, user: &OwnedUserId, device_id: &str) -> ApiResult<Vec<Group>> {
    let mut answer = call(state, user, device_id, Method::GET, "groups", &[], None).await?;
    let groups: Vec<BridgeGroup> =
        serde_json::from_value(answer["groups"].take()).map_err(|e| unreadable("a group list", e))?;
    Ok(groups.into_iter().map(Group::from).collect())
}

pub async fn create(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    subject: &str,
    members: &[PhoneNumber],
) -> ApiResult<Group> {
    let body = serde_json::json!({ "subject": subject, "members": members });
    let answer = call(state, user, device_id, Method::POST, "groups", &[], Some(body)).await?;
    Ok(serde_json::from_value::<BridgeGroup>(answer).map_err(|e| unreadable("a new group", e))?.into())
}

pub async fn get(state: &AppState, user: &OwnedUserId, device_id: &str, chat: &ChatId) -> ApiResult<Group> {
    let answer = call(state, user, device_id, Method::GET, &group_path(chat), &[], None).await?;
    Ok(serde_json::from_value::<BridgeGroup>(answer).map_err(|e| unreadable("a group", e))?.into())
}

pub async fn update(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    chat: &ChatId,
    settings: mxgate_bridge::network::GroupSettings,
) -> ApiResult<()> {
    let body = serde_json::to_value(settings).map_err(|e| ApiError::Internal(e.into()))?;
    call(state, user, device_id, Method::PUT, &group_path(chat), &[], Some(body)).await.map(drop)
}

pub async fn change_members(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    chat: &ChatId,
    action: MemberAction,
    given: Vec<String>,
    phones: &[PhoneNumber],
) -> ApiResult<Vec<MemberResult>> {
    let body = serde_json::json!({ "action": action, "phones": phones });
    let path = format!("{}/members", group_path(chat));
    let mut answer = call(state, user, device_id, Method::POST, &path, &[], Some(body)).await?;
    let results: Vec<mxgate_bridge::network::MemberResult> =
        serde_json::from_value(answer["results"].take()).map_err(|e| unreadable("a member change", e))?;
    // Each number as the caller wrote it (a number named twice has one result, twice).
    let result_of = |given: &str| {
        let phone = given.parse::<PhoneNumber>().ok()?;
        results.iter().find(|r| r.phone == phone).map(|r| r.error.clone())
    };
    given
        .into_iter()
        .map(|phone| match result_of(&phone) {
            Some(error) => Ok(MemberResult { phone, ok: error.is_none(), error }),
            None => Err(ApiError::Internal(anyhow::anyhow!("the bridge left {phone} out of a member change"))),
        })
        .collect()
}

pub async fn invite_link(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    chat: &ChatId,
    reset: bool,
) -> ApiResult<String> {
    let path = format!("{}/invite", group_path(chat));
    let reset = if reset { "true" } else { "false" };
    let answer = call(state, user, device_id, Method::POST, &path, &[("reset", reset)], None).await?;
    answer["invite_url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the bridge answered an invite link without one")))
}

pub async fn leave(state: &AppState, user: &OwnedUserId, device_id: &str, chat: &ChatId) -> ApiResult<()> {
    let path = format!("{}/leave", group_path(chat));
    call(state, user, device_id, Method::POST, &path, &[], None).await.map(drop)
}
