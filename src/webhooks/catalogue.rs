//! The webhook event catalogue: every payload names its type in `event`, and a webhook
//! takes the types it wants. A webhook that names none gets [`DEFAULT`], what every
//! webhook got before types could be chosen, so existing receivers see no change.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an event is about. The payload's `event` field carries it; `type` keeps its
/// earlier meaning (the Matrix `msgtype` of a message, or the same name for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    /// A message from a contact or group member (the payload of DESIGN.md, every field kept).
    #[serde(rename = "message")]
    Message,
    /// A contact edited a message: `message`'s payload with the new text and `replaces`.
    #[serde(rename = "message.edited")]
    MessageEdited,
    /// The account wrote a message on its phone or another linked device: `message`'s
    /// payload with `from_me: true`, `from` the token's identity.
    #[serde(rename = "message.sent")]
    MessageSent,
    /// A send's outcome (`sent`, `failed`) after it answered `pending`, or a contact's
    /// receipt (`delivered`, `read`).
    #[serde(rename = "message.status")]
    MessageStatus,
    /// A contact reacted to a message (`reaction`: the emoji), or took a reaction back
    /// (`reaction`: empty).
    #[serde(rename = "message.reaction")]
    MessageReaction,
    /// A contact deleted a message for everyone (or a group admin deleted one).
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    /// A contact voted on a poll (`options`: the names now chosen; empty takes the vote
    /// back). `event_id` is the poll's id.
    #[serde(rename = "poll.vote")]
    PollVote,
    /// A contact called the device (`video`; `rejected` when `MXGATE_REJECT_CALLS` turned
    /// it down). Calls are not bridged, only told.
    #[serde(rename = "call")]
    Call,
    /// A group was made with the device in it: `subject`, `participants` with
    /// their roles, `by` who made it.
    #[serde(rename = "group.created")]
    GroupCreated,
    /// A group's `subject`, `description`, `picture`, `announce` (only admins send),
    /// `locked` (only admins edit its info) or invite link (`invite_revoked`) changed;
    /// `change` names which, `by` who changed it.
    #[serde(rename = "group.updated")]
    GroupUpdated,
    /// Members were `added`, `removed`, `promoted` or `demoted` (`action`), by `by`.
    #[serde(rename = "group.participants")]
    GroupParticipants,
    /// The device's connection changed: `connecting`, `connected`, `error` (with the
    /// reason; retried) or `logged_out`.
    #[serde(rename = "device.state")]
    DeviceState,
    /// The device was logged out of WhatsApp (also told as `device.state`; kept for the
    /// receivers that had it first).
    #[serde(rename = "device.logged_out")]
    DeviceLoggedOut,
}

/// The types a webhook gets when it names none.
pub const DEFAULT: [EventType; 4] =
    [EventType::Message, EventType::MessageEdited, EventType::MessageStatus, EventType::DeviceLoggedOut];

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::MessageEdited => "message.edited",
            Self::MessageSent => "message.sent",
            Self::MessageStatus => "message.status",
            Self::MessageReaction => "message.reaction",
            Self::MessageDeleted => "message.deleted",
            Self::PollVote => "poll.vote",
            Self::Call => "call",
            Self::GroupCreated => "group.created",
            Self::GroupUpdated => "group.updated",
            Self::GroupParticipants => "group.participants",
            Self::DeviceState => "device.state",
            Self::DeviceLoggedOut => "device.logged_out",
        }
    }
}

/// The types a webhook gets, as stored: `None` (NULL) for [`DEFAULT`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter(Option<BTreeSet<EventType>>);

impl Filter {
    pub fn chosen(types: impl IntoIterator<Item = EventType>) -> Self {
        Self(Some(types.into_iter().collect()))
    }

    pub fn accepts(&self, event: EventType) -> bool {
        match &self.0 {
            Some(types) => types.contains(&event),
            None => DEFAULT.contains(&event),
        }
    }

    /// The types, in catalogue order.
    pub fn types(&self) -> Vec<EventType> {
        match &self.0 {
            Some(types) => types.iter().copied().collect(),
            None => DEFAULT.to_vec(),
        }
    }

    /// The column's value: a JSON array, or NULL for the default.
    pub fn to_column(&self) -> Option<String> {
        self.0.as_ref().map(|types| serde_json::to_string(types).expect("a set of names serializes"))
    }

    /// Reads the column. A value this version cannot read (a type from a newer one) keeps
    /// the types it can: the webhook still gets those.
    pub fn from_column(column: Option<&str>) -> Self {
        let Some(column) = column else { return Self(None) };
        let names: Vec<String> = serde_json::from_str(column).unwrap_or_default();
        Self::chosen(names.iter().filter_map(|name| serde_json::from_value(name.as_str().into()).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_that_names_no_types_gets_what_every_webhook_got_before() {
        let default = Filter::default();
        assert!(DEFAULT.iter().all(|&t| default.accepts(t)));
        assert_eq!(default.to_column(), None);
        assert_eq!(Filter::from_column(None), default);
    }

    #[test]
    fn chosen_types_survive_the_column_and_filter() {
        let chosen = Filter::chosen([EventType::MessageStatus]);
        let column = chosen.to_column().unwrap();
        assert_eq!(column, r#"["message.status"]"#);
        let read = Filter::from_column(Some(&column));
        assert_eq!(read, chosen);
        assert!(read.accepts(EventType::MessageStatus));
        assert!(!read.accepts(EventType::Message));
    }

    #[test]
    fn a_type_this_version_does_not_know_is_skipped() {
        let read = Filter::from_column(Some(r#"["message", "from.the.future"]"#));
        assert_eq!(read.types(), [EventType::Message]);
    }

    #[test]
    fn names_match_serde() {
        for t in [
            DEFAULT.as_slice(),
            &[
                EventType::MessageReaction,
                EventType::MessageDeleted,
                EventType::PollVote,
                EventType::Call,
                EventType::GroupCreated,
                EventType::GroupUpdated,
                EventType::GroupParticipants,
                EventType::DeviceState,
            ],
        ]
        .concat()
        {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}

/// The payloads of the catalogue, as webhooks and the event feed carry them. They exist
/// for the OpenAPI document (`components.schemas`): the payloads are built where each
/// event happens, field for field as here.
pub mod payloads {
    #![allow(dead_code)]

    use mxgate_bridge::network::{ContactCard, Location, Poll};
    use utoipa::ToSchema;

    use super::EventType;

    /// `message`, `message.edited` and `message.sent`: a contact, a group member or the
    /// account itself (on its phone) wrote.
    #[derive(ToSchema)]
    pub struct MessagePayload {
        /// The message's Matrix event id: what actions, replies and forwards take.
        #[schema(example = "$Xh3…")]
        id: String,
        event: EventType,
        /// The Matrix `msgtype` (`m.text`, `m.image`, `m.video`, `m.audio`, `m.file`,
        /// `m.location`), `m.sticker`, or `org.matrix.msc3381.poll.start`.
        #[schema(example = "m.text")]
        r#type: String,
        /// The sender's puppet, `@whatsapp_<phone>:<server>`.
        #[schema(example = "@whatsapp_237698765432:mxgate.local")]
        from: String,
        /// The token's Matrix identity.
        to: String,
        /// The text, or a file's caption (empty without one).
        message: String,
        device_id: String,
        /// The chat's JID: `<phone>@s.whatsapp.net` or `<id>@g.us`.
        chat_id: String,
        is_contact: bool,
        media: MediaPayload,
        /// The Matrix event this one replies to.
        reply_to: Option<String>,
        /// WhatsApp's id of the message.
        message_id: Option<String>,
        /// Milliseconds since the epoch, the homeserver's.
        timestamp: i64,
        /// For `message.edited`, the event whose text this replaces.
        replaces: Option<String>,
        /// For a location.
        location: Option<Location>,
        /// For contact cards (the `.vcf` is in `media` too).
        contact_cards: Option<Vec<ContactCard>>,
        /// For a poll.
        poll: Option<Poll>,
        /// `true` for an image or video the contact sent to be opened once.
        view_once: Option<bool>,
        /// `true` for `message.sent`: the account wrote it on its phone or another device.
        from_me: Option<bool>,
    }

    #[derive(ToSchema)]
    pub struct MediaPayload {
        /// The file, base64; `null` for a text, in history and search, and with
        /// `MXGATE_WEBHOOK_MEDIA=url`.
        content: Option<String>,
        /// Where the API serves the file (with the token): `/api/v1/devices/{id}/media/{event_id}`.
        /// Absent for a text.
        url: Option<String>,
        info: MediaInfo,
    }

    #[derive(ToSchema)]
    pub struct MediaInfo {
        size: u64,
        mime_type: String,
        width: u32,
        height: u32,
        blur_hash: String,
    }

    /// `message.status`: a contact's phone got (`delivered`) or opened (`read`) a message
    /// the device sent; or a send that answered `pending` ended (`sent`, `failed`).
    #[derive(ToSchema)]
    pub struct StatusPayload {
        /// The receipt's event id, or `send-status:<event id>` for a send's outcome.
        id: String,
        event: EventType,
        r#type: String,
        #[schema(example = "read")]
        status: String,
        /// The message the status is about.
        event_id: String,
        message_id: Option<String>,
        /// Who received or read it.
        from: Option<String>,
        to: String,
        device_id: String,
        chat_id: String,
        is_contact: bool,
        timestamp: i64,
        /// Why a send failed.
        error: Option<String>,
    }

    /// `message.reaction` (`reaction` empty when taken back), `message.deleted` and
    /// `poll.vote`.
    #[derive(ToSchema)]
    pub struct ActionPayload {
        id: String,
        event: EventType,
        r#type: String,
        /// The emoji, for `message.reaction`.
        #[schema(example = "👍")]
        reaction: Option<String>,
        /// For `poll.vote`: the options the voter now chooses, by name (none: the vote
        /// taken back). Each vote replaces the voter's last.
        options: Option<Vec<String>>,
        /// The message reacted to, deleted, or voted on.
        event_id: String,
        message_id: Option<String>,
        from: String,
        to: String,
        device_id: String,
        chat_id: String,
        is_contact: bool,
        timestamp: i64,
    }

    /// `call`: a contact called the device. Calls are not bridged; the chat shows a notice.
    #[derive(ToSchema)]
    pub struct CallPayload {
        /// The notice's Matrix event id.
        id: String,
        event: EventType,
        r#type: String,
        /// WhatsApp's id of the call.
        call_id: String,
        video: bool,
        /// Turned down by mxgate (`MXGATE_REJECT_CALLS`).
        rejected: bool,
        /// The caller's puppet.
        from: String,
        to: String,
        device_id: String,
        chat_id: String,
        is_contact: bool,
        timestamp: i64,
    }

    /// `group.created`, `group.updated` and `group.participants`: a change to a group the
    /// device is in, as its members heard of it (the device's own changes too).
    #[derive(ToSchema)]
    pub struct GroupPayload {
        /// The Matrix event id of the bridge's record of the change in the portal.
        id: String,
        event: EventType,
        r#type: String,
        /// The group's JID.
        #[schema(example = "120363012345678901@g.us")]
        chat_id: String,
        device_id: String,
        /// Who made the change (a phone number; the device's own for its changes).
        #[schema(example = "237698765432")]
        by: String,
        /// `group.updated`: `subject`, `description`, `picture`, `announce`, `locked` or
        /// `invite_revoked`.
        change: Option<String>,
        /// `group.created` and a new subject.
        subject: Option<String>,
        /// A new description; `null` when it was removed.
        description: Option<String>,
        /// The picture was removed (else changed; download it from the chat's avatar).
        picture_removed: Option<bool>,
        announce: Option<bool>,
        locked: Option<bool>,
        /// `group.participants`: `added`, `removed`, `promoted` or `demoted`.
        action: Option<String>,
        /// `group.participants`: the phone numbers acted on; `group.created`: every member
        /// with `phone` and `role` (`member`, `admin`, `owner`).
        #[schema(value_type = Vec<Object>)]
        participants: Option<Vec<serde_json::Value>>,
        to: String,
        timestamp: i64,
    }

    /// `device.state` (and `device.logged_out`, which has no `state` nor `error`).
    #[derive(ToSchema)]
    pub struct DevicePayload {
        event: EventType,
        r#type: String,
        #[schema(example = "wa")]
        platform: String,
        device_id: String,
        /// `connecting`, `connected`, `error` or `logged_out`.
        state: Option<String>,
        error: Option<String>,
        timestamp: i64,
    }
}
