use std::time::Duration;

use mxgate_bridge::content::{self, MatrixEvent};
use mxgate_bridge::ids::{ChatId, GroupInvite, PhoneNumber};
use mxgate_bridge::matrix::MatrixError;
use mxgate_bridge::network::{MediaKind, Structured};
use mxgate_bridge::outbox;
use mxgate_bridge::store as bridge_store;
use reqwest::Method;
use ruma::{EventId, OwnedRoomId, OwnedUserId, RoomId};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::SendStatus;
use super::attachment::{Attachment, fetch};
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

/// A send request, parsed from JSON or multipart.
#[derive(Default)]
pub struct SendRequest {
    pub contact: Option<String>,
    pub group_url: Option<String>,
    pub text: Option<String>,
    pub platform: Option<String>,
    pub reply_id: Option<String>,
    /// The file uploaded (multipart) or given inline (`media_base64`).
    pub file: Option<Attachment>,
    /// A file to fetch, through the outbound guard.
    pub media_url: Option<String>,
    /// How the file is shown, when its type alone does not say.
    pub kind: Option<MediaKind>,
    pub view_once: bool,
    /// A location, contact cards or a poll, instead of a file.
    pub structured: Option<Structured>,
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

pub enum Recipient {
    Contact(PhoneNumber),
    Group(GroupInvite),
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl SendRequest {
    /// What identifies this send for `Idempotency-Key`.
    pub fn fingerprint(&self, device_id: &str) -> String {
        let extra = [
            self.media_url.clone(),
            self.kind.map(|k| k.as_str().to_owned()),
            self.view_once.then(|| "view_once".to_owned()),
            self.structured.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default()),
        ];
        let fields = [&self.contact, &self.group_url, &self.text, &self.platform, &self.reply_id];
        let fields: Vec<Option<&str>> = fields.into_iter().chain(&extra).map(|f| f.as_deref()).collect();
        idempotency::fingerprint(device_id, &fields, self.file.as_ref().map(|f| (f.file_name.as_str(), &f.data[..])))
    }
}

/// Refuses what does not go together: one file at most, a file's details without it, a
/// location, poll or contact cards with a file or text (WhatsApp has no caption for them).
fn check_kind(request: &SendRequest, has_text: bool) -> ApiResult<()> {
    let has_file = request.file.is_some() || request.media_url.is_some();
    if request.file.is_some() && request.media_url.is_some() {
        return Err(ApiError::unprocessable("give one file: `file`, `media_url` or `media_base64`"));
    }
    if let Some(structured) = &request.structured {
        let name = match structured {
            Structured::Location(_) => "location",
            Structured::ContactCards { .. } => "contact_cards",
            Structured::Poll(_) => "poll",
        };
        if has_file || has_text || request.kind.is_some() || request.view_once {
            return Err(ApiError::unprocessable(format!(
                "`{name}` is a message of its own: no text, file, kind or view_once with it"
            )));
        }
        return check_structured(structured);
    }
    if !has_file && (request.kind.is_some() || request.view_once) {
        return Err(ApiError::unprocessable("`kind` and `view_once` describe a file; give one"));
    }
    if !has_text && !has_file {
        return Err(ApiError::unprocessable(
            "give text, a file (`file`, `media_url`, `media_base64`), or a location, poll or contact_cards",
        ));
    }
    Ok(())
}

/// Longest poll question and option, in characters, as WhatsApp's apps allow.
const MAX_POLL_QUESTION: usize = 255;
const MAX_POLL_OPTION: usize = 100;
/// Most options in a poll, and most cards in one message.
const MAX_POLL_OPTIONS: usize = 12;
const MAX_CONTACT_CARDS: usize = 20;

fn check_structured(structured: &Structured) -> ApiResult<()> {
    let refuse = |message: String| Err(ApiError::unprocessable(message));
    match structured {
        Structured::Location(location) => {
            if !(-90.0..=90.0).contains(&location.latitude) {
                return refuse("location.latitude must be between -90 and 90".into());
            }
            if !(-180.0..=180.0).contains(&location.longitude) {
                return refuse("location.longitude must be between -180 and 180".into());
            }
        }
        Structured::ContactCards { cards } => {
            if cards.is_empty() || cards.len() > MAX_CONTACT_CARDS {
                return refuse(format!("contact_cards takes 1 to {MAX_CONTACT_CARDS} cards"));
            }
        }
        Structured::Poll(poll) => {
            if poll.question.trim().is_empty() || poll.question.chars().count() > MAX_POLL_QUESTION {
                return refuse(format!("poll.question takes 1 to {MAX_POLL_QUESTION} characters"));
            }
            if poll.options.len() < 2 || poll.options.len() > MAX_POLL_OPTIONS {
                return refuse(format!("poll.options takes 2 to {MAX_POLL_OPTIONS} options"));
            }
            let mut seen = std::collections::HashSet::new();
            for option in &poll.options {
                if option.trim().is_empty() || option.chars().count() > MAX_POLL_OPTION {
                    return refuse(format!("each poll option takes 1 to {MAX_POLL_OPTION} characters"));
                }
                if !seen.insert(option.trim()) {
                    return refuse(format!("poll option `{option}` is given twice"));
                }
            }
        }
    }
    Ok(())
}

/// Sends the message to every recipient (see [`fan_out`]).
pub async fn send(
    state: &AppState,
    token: &TokenRow,
    device_id: &str,
    mut request: SendRequest,
    key: Option<&IdempotencyKey>,
) -> ApiResult<Vec<RecipientResult>> {
    if let Some(platform) = &request.platform {
        check_platform(platform)?;
    }
    let user = identity(token)?;
    linked(state, &user, device_id).await?;
    let text = request.text.take().filter(|t| !t.trim().is_empty());
    check_kind(&request, text.is_some())?;
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

    let recipients = Recipients::parse(request.contact.as_deref(), request.group_url.as_deref())?;
    state.limits.sends(&token.id, recipients.valid)?;

    let file = match (request.file, &request.media_url) {
        (Some(file), _) => Some(file),
        (None, Some(url)) => Some(fetch(state, url).await?),
        (None, None) => None,
    };
    let media = match (file, &request.structured) {
        (Some(file), _) => Some(file.into_media(request.kind, request.view_once)?),
        (None, Some(Structured::ContactCards { cards })) => Some(content::contact_file(cards)),
        (None, _) => None,
    };
    let mxc = match &media {
        Some(media) => Some(
            state
                .homeserver
                .client
                .upload(&user, media.data.clone(), &media.mime_type, &media.file_name)
                .await
                .map_err(crate::matrix::HomeserverError::from)?,
        ),
        None => None,
    };
    let file = media.as_ref().zip(mxc.as_ref().map(|mxc| mxc.as_str()));
    let reply_to = reply_to.as_ref().map(|r| r.as_str());
    let event = content::message(text.as_deref(), file, request.structured.as_ref(), reply_to);

    fan_out(state, token, &user, device_id, recipients, &event, key).await
}

/// The recipients of a send, each as given with what it parsed to.
pub struct Recipients {
    parsed: Vec<(String, Result<Recipient, String>)>,
    valid: u32,
}

impl Recipients {
    /// `group_url` wins when both lists are given, as the reference API does. Refused
    /// when none is valid; an invalid one beside valid ones fails on its own.
    pub fn parse(contact: Option<&str>, group_url: Option<&str>) -> ApiResult<Self> {
        let group_urls = group_url.map(split).unwrap_or_default();
        let groups = !group_urls.is_empty();
        let given = if groups { group_urls } else { contact.map(split).unwrap_or_default() };
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
        Ok(Self { parsed, valid: u32::try_from(valid).expect("at most MAX_RECIPIENTS") })
    }

    /// How many will be sent to, for the rate limit.
    pub fn valid(&self) -> u32 {
        self.valid
    }
}

/// Sends `event` to every recipient's portal; one bad recipient never fails the others.
/// With `key`, each recipient's event has a transaction id derived from it, so a repeat
/// sends nothing new.
pub async fn fan_out(
    state: &AppState,
    token: &TokenRow,
    user: &OwnedUserId,
    device_id: &str,
    recipients: Recipients,
    event: &MatrixEvent,
    key: Option<&IdempotencyKey>,
) -> ApiResult<Vec<RecipientResult>> {
    let sends = recipients.parsed.into_iter().map(|(raw, recipient)| {
        let txn = key.map_or_else(|| uuid::Uuid::new_v4().to_string(), |key| key.transaction_id(&token.id, &raw));
        async move {
            match recipient {
                Ok(recipient) => send_one(state, user, device_id, &raw, recipient, event, &txn).await,
                Err(error) => Ok(RecipientResult::failed(&raw, error)),
            }
        }
    });
    let results = futures::future::join_all(sends).await;
    // With the homeserver down for every recipient nothing was sent: the whole request is
    // refused, rather than each recipient failing. No ping beforehand: it would cost the
    // homeserver a request per send to learn what the send itself tells.
    if results.iter().filter(|r| r.is_err()).count() == recipients.valid as usize {
        let (_, unreachable) = results.into_iter().find_map(Result::err).expect("at least one recipient is valid");
        return Err(crate::matrix::HomeserverError::from(unreachable).into());
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|(raw, _)| RecipientResult::failed(&raw, TRY_AGAIN))).collect())
}

/// Why one recipient's message is not in the homeserver.
const TRY_AGAIN: &str = "the homeserver did not take the message; try again";

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
    // The send queue takes it now, in the database every process shares; waiting for the
    // homeserver's push to the bridge would leave the send to that push's timing (or to a
    // transaction the homeserver strands).
    let place = state.send_statuses.follow(event_id.as_str());
    let queued = json!({ "event_id": event_id, "type": kind, "content": content });
    let timeout = Duration::from_secs(state.config.send_timeout_secs);
    let outcome = match outbox::enqueue(&state.db, &queued, user, room).await {
        Ok(true) => place.next_outcome(&state.db, timeout).await,
        Ok(false) => place.outcome(&state.db, timeout).await,
        Err(error) => {
            tracing::warn!(event = %event_id, error = %error, "a send was not queued; the homeserver's push will queue it");
            place.outcome(&state.db, timeout).await
        }
    };
    match outcome {
        Some(SendStatus::Sent { network_message_id }) => {
            Outcome { status: "sent", message_id: Some(network_message_id), error: None }
        }
        Some(SendStatus::Failed { reason }) => Outcome { status: "failed", message_id: None, error: Some(reason) },
        None => {
            if let Err(error) = super::late::remember(state, user.as_str(), event_id.as_str()).await {
                tracing::warn!(event = %event_id, error = %error, "a pending send's late status will not be reported");
            }
            let error = Some("WhatsApp has not confirmed the message yet".to_owned());
            Outcome { status: "pending", message_id: None, error }
        }
    }
}

/// A recipient the homeserver could not be reached for, with the error.
type Unreachable = (String, MatrixError);

async fn send_one(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    raw: &str,
    recipient: Recipient,
    event: &MatrixEvent,
    txn: &str,
) -> Result<RecipientResult, Unreachable> {
    let room = match portal_room(state, user, device_id, &recipient).await {
        Ok(room) => room,
        Err(error) => return Ok(RecipientResult::failed(raw, error)),
    };
    let (kind, content) = (event.event_type, &event.content);
    let event_id = match state.homeserver.client.send_event(user, &room, kind, txn, content).await {
        Ok(event_id) => event_id,
        Err(error @ MatrixError::Unreachable(_)) => return Err((raw.to_owned(), error)),
        Err(error) => {
            tracing::warn!(recipient = raw, error = %error, "the homeserver did not take a message");
            return Ok(RecipientResult::failed(raw, TRY_AGAIN));
        }
    };
    let Outcome { status, message_id, error } = queue_and_wait(state, user, &room, &event_id, kind, content).await;
    Ok(RecipientResult { recipient: raw.to_owned(), status, event_id: Some(event_id.to_string()), message_id, error })
}

/// The portal room of `recipient` on `device_id`. A direct chat's portal, once made, is
/// read from the bridge's store; making one (and joining a group, which asks WhatsApp)
/// is the bridge's work, at the process that runs the device.
async fn portal_room(
    state: &AppState,
    user: &OwnedUserId,
    device_id: &str,
    recipient: &Recipient,
) -> Result<OwnedRoomId, String> {
    if let Recipient::Contact(phone) = recipient {
        let chat = ChatId::Direct(phone.clone()).to_string();
        match bridge_store::portal(&state.db, device_id, &chat).await {
            Ok(Some(portal)) => {
                return RoomId::parse(portal.room_id).map_err(|_| "the bridge stored no room".to_owned());
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = %error, "a portal read failed; the bridge is asked"),
        }
    }
    let query = [("login_id", device_id)];
    let bridge = state.bridge.for_device(&state.db, device_id).await.map_err(|e| e.client_message())?;
    let resolved = match recipient {
        Recipient::Contact(phone) => {
            let path = format!("create_dm/{}", segment(phone.as_str()));
            bridge.call(Method::POST, &path, user, &query, None).await.map(|r| r["dm_room_mxid"].clone())
        }
        Recipient::Group(invite) => {
            let body = json!({ "invite_url": invite.url() });
            bridge.call(Method::POST, "join_group", user, &query, Some(body)).await.map(|r| r["mxid"].clone())
        }
    };
    match resolved {
        Ok(room) => {
            room.as_str().and_then(|r| RoomId::parse(r).ok()).ok_or_else(|| "the bridge returned no room".into())
        }
        Err(error) => {
            tracing::warn!(error = %error, "the bridge found no room for a recipient");
            Err(error.client_message())
        }
    }
}
