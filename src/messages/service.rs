use std::time::Duration;

use mxgate_bridge::ids::{GroupInvite, PhoneNumber};
use mxgate_bridge::{media, store as bridge_store};
use reqwest::Method;
use ruma::{EventId, OwnedUserId, RoomId};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::SendStatus;
use super::idempotency::{self, IdempotencyKey};
use crate::bridge_client::segment;
use crate::devices::service::{check_platform, identity};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tokens::store::TokenRow;

/// Longest text accepted, in characters (WhatsApp's own limit is 65,536).
pub const MAX_TEXT: usize = 65_536;
/// Recipients one request may name.
const MAX_RECIPIENTS: usize = 50;

/// A file attached to a message.
pub struct Attachment {
    pub data: Vec<u8>,
    pub file_name: String,
    pub mime_type: String,
}

/// A send request, parsed from JSON or multipart.
#[derive(Default)]
pub struct SendRequest {
    pub contact: Option<String>,
    pub group_url: Option<String>,
    pub text: Option<String>,
    pub platform: Option<String>,
    pub reply_id: Option<String>,
    pub file: Option<Attachment>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientResult {
    /// The recipient as given: a phone number or an invite URL.
    #[schema(example = "237698765432")]
    pub recipient: String,
    /// `sent` (WhatsApp accepted it), `failed`, or `pending` (no answer from WhatsApp in time).
    #[schema(example = "sent")]
    pub status: &'static str,
    /// The Matrix event of the message, usable as a later `reply_id`.
    #[schema(example = "$Xh3…")]
    pub event_id: Option<String>,
    /// WhatsApp's id of the message.
    #[schema(example = "3EB0C4F1A2B3C4D5")]
    pub message_id: Option<String>,
    /// Why it failed.
    #[schema(example = "237000111222 is not on WhatsApp")]
    pub error: Option<String>,
}

impl RecipientResult {
    fn failed(recipient: &str, error: impl Into<String>) -> Self {
        Self {
            recipient: recipient.to_owned(),
            status: "failed",
            event_id: None,
            message_id: None,
            error: Some(error.into()),
        }
    }
}

enum Recipient {
    Contact(PhoneNumber),
    Group(GroupInvite),
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl SendRequest {
    /// What identifies this send for `Idempotency-Key`.
    pub fn fingerprint(&self, device_id: &str) -> String {
        let fields = [&self.contact, &self.group_url, &self.text, &self.platform, &self.reply_id].map(|f| f.as_deref());
        idempotency::fingerprint(device_id, &fields, self.file.as_ref().map(|f| (f.file_name.as_str(), &f.data[..])))
    }
}

/// Sends to every recipient; one bad recipient never fails the others. With `key`, each
/// recipient's event has a transaction id derived from it, so a repeat sends nothing new.
pub async fn send(
    state: &AppState,
    token: &TokenRow,
    device_id: &str,
    request: SendRequest,
    key: Option<&IdempotencyKey>,
) -> ApiResult<Vec<RecipientResult>> {
    if let Some(platform) = &request.platform {
        check_platform(platform)?;
    }
    let user = identity(token)?;
    linked(state, &user, device_id).await?;
    let text = request.text.filter(|t| !t.trim().is_empty());
    if text.is_none() && request.file.is_none() {
        return Err(ApiError::unprocessable("give text, a file, or both"));
    }
    if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
        return Err(ApiError::unprocessable(format!("text is longer than {MAX_TEXT} characters")));
    }
    let reply_to = match request.reply_id.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(id) => Some(
            EventId::parse(id)
                .map_err(|_| ApiError::unprocessable("reply_id must be a Matrix event id such as $abc"))?,
        ),
        None => None,
    };

    // `group_url` wins when both lists are given, as the reference API does.
    let group_urls = request.group_url.as_deref().map(split).unwrap_or_default();
    let groups = !group_urls.is_empty();
    let given = if groups { group_urls } else { request.contact.as_deref().map(split).unwrap_or_default() };
    if given.is_empty() {
        return Err(ApiError::unprocessable("give `contact` or `group_url` (comma-separated lists)"));
    }
    if given.len() > MAX_RECIPIENTS {
        return Err(ApiError::unprocessable(format!("at most {MAX_RECIPIENTS} recipients per request")));
    }
    let parsed: Vec<(String, Result<Recipient, String>)> = given
        .into_iter()
        .map(|raw| {
            let parsed = if groups {
                raw.parse().map(Recipient::Group).map_err(|e: mxgate_bridge::ids::IdError| e.to_string())
            } else {
                raw.parse().map(Recipient::Contact).map_err(|e: mxgate_bridge::ids::IdError| e.to_string())
            };
            (raw, parsed)
        })
        .collect();
    if parsed.iter().all(|(_, p)| p.is_err()) {
        let reasons: Vec<String> = parsed.into_iter().filter_map(|(_, p)| p.err()).collect();
        return Err(ApiError::unprocessable(format!("no valid recipient: {}", reasons.join("; "))));
    }
    let valid = parsed.iter().filter(|(_, p)| p.is_ok()).count();
    state.limits.sends(&token.id, u32::try_from(valid).expect("at most MAX_RECIPIENTS"))?;

    // With the homeserver down nothing is sent at all, rather than some recipients failing.
    state.homeserver.ping().await?;
    let mut content = match &request.file {
        Some(file) => {
            let mxc = state
                .homeserver
                .client
                .upload(&user, file.data.clone(), &file.mime_type, &file.file_name)
                .await
                .map_err(crate::matrix::HomeserverError::from)?;
            json!({
                "msgtype": media::msgtype(&file.mime_type),
                "body": text.clone().unwrap_or_else(|| file.file_name.clone()),
                "filename": file.file_name,
                "url": mxc,
                "info": media::info(&file.data, &file.mime_type),
            })
        }
        None => json!({ "msgtype": "m.text", "body": text }),
    };
    if let Some(reply_to) = &reply_to {
        content["m.relates_to"] = json!({ "m.in_reply_to": { "event_id": reply_to } });
    }

    let sends = parsed.into_iter().map(|(raw, recipient)| {
        let (user, content) = (&user, &content);
        let txn = key.map_or_else(|| uuid::Uuid::new_v4().to_string(), |key| key.transaction_id(&token.id, &raw));
        async move {
            match recipient {
                Ok(recipient) => send_one(state, user, device_id, &raw, recipient, content, &txn).await,
                Err(error) => RecipientResult::failed(&raw, error),
            }
        }
    });
    Ok(futures::future::join_all(sends).await)
}

/// Refuses a device that `user` did not link, or that is logged out.
pub async fn linked(state: &AppState, user: &OwnedUserId, device_id: &str) -> ApiResult<()> {
    let login = bridge_store::login(&state.db, device_id).await?.filter(|l| l.owner == user.as_str());
    match login.map(|l| l.state) {
        Some(state) if state == bridge_store::CONNECTED => Ok(()),
        Some(state) if state == bridge_store::LOGGED_OUT => {
            Err(ApiError::Conflict("the phone logged this device out; link it again".into()))
        }
        _ => Err(ApiError::NotFound("device")),
    }
}

/// What became of an event the identity sent in a portal.
pub struct Outcome {
    pub status: &'static str,
    pub message_id: Option<String>,
    pub error: Option<String>,
}

/// Hands `event` (just sent by `user` in `room`) to the bridge's send queue and waits for
/// the network's answer, up to the send timeout.
pub async fn queue_and_wait(
    state: &AppState,
    user: &OwnedUserId,
    room: &RoomId,
    event_id: &EventId,
    kind: &str,
    content: &Value,
) -> Outcome {
    // The send queue takes it now; waiting for the homeserver's push to the bridge would
    // leave the send to that push's timing (or to a transaction the homeserver strands).
    let queued = json!({ "room_id": room, "event_id": event_id, "type": kind, "content": content });
    if let Err(error) = state.bridge.call(Method::POST, "send", user, &[], Some(queued)).await {
        tracing::warn!(event = %event_id, error = %error, "the bridge did not queue a send; its push will");
    }
    let timeout = Duration::from_secs(state.config.send_timeout_secs);
    match state.send_statuses.wait(&state.db, event_id.as_str(), timeout).await {
        Some(SendStatus::Sent { network_message_id }) => {
            Outcome { status: "sent", message_id: Some(network_message_id), error: None }
        }
        Some(SendStatus::Failed { reason }) => Outcome { status: "failed", message_id: None, error: Some(reason) },
        None => {
            if let Err(error) = super::late::remember(&state.db, user.as_str(), event_id.as_str()).await {
                tracing::warn!(event = %event_id, error = %error, "a pending send's late status will not be reported");
            }
            let error = Some("WhatsApp has not confirmed the message yet".to_owned());
            Outcome { status: "pending", message_id: None, error }
        }
    }
}

async fn send_one(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    raw: &str,
    recipient: Recipient,
    content: &Value,
    txn: &str,
) -> RecipientResult {
    let query = [("login_id", device_id)];
    let bridge = match state.bridge.for_device(&state.db, device_id).await {
        Ok(bridge) => bridge,
        Err(error) => return RecipientResult::failed(raw, error.client_message()),
    };
    let resolved = match &recipient {
        Recipient::Contact(phone) => {
            let path = format!("create_dm/{}", segment(phone.as_str()));
            bridge.call(Method::POST, &path, user, &query, None).await.map(|r| r["dm_room_mxid"].clone())
        }
        Recipient::Group(invite) => {
            let body = json!({ "invite_url": invite.url() });
            bridge.call(Method::POST, "join_group", user, &query, Some(body)).await.map(|r| r["mxid"].clone())
        }
    };
    let room = match resolved {
        Ok(room) => match room.as_str().and_then(|r| RoomId::parse(r).ok()) {
            Some(room) => room,
            None => return RecipientResult::failed(raw, "the bridge returned no room"),
        },
        Err(error) => {
            tracing::warn!(recipient = raw, error = %error, "the bridge found no room for a recipient");
            return RecipientResult::failed(raw, error.client_message());
        }
    };
    let event_id = match state.homeserver.client.send_event(user, &room, "m.room.message", txn, content).await {
        Ok(event_id) => event_id,
        Err(error) => {
            tracing::warn!(recipient = raw, error = %error, "the homeserver did not take a message");
            return RecipientResult::failed(raw, "the homeserver did not take the message; try again");
        }
    };
    let Outcome { status, message_id, error } =
        queue_and_wait(state, user, &room, &event_id, "m.room.message", content).await;
    RecipientResult { recipient: raw.to_owned(), status, event_id: Some(event_id.to_string()), message_id, error }
}
