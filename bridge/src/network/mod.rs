//! The one interface between the bridge and a messaging network. A network is a folder
//! here implementing [`Network`]; nothing else in the bridge knows which one runs.
//!
//! Received messages are the connector's to make durable: it is given the bridge's
//! [`Inbox`] when it is built and commits every message there *before* it lets the network
//! forget it (WhatsApp's ack), so a crash between the two replays, never loses. Sends go
//! the other way under an id from [`random_message_id`], fixed when the send is queued.

mod group;
pub mod sim;
pub mod whatsapp;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ids::{ChatId, GroupInvite, PhoneNumber};
pub use crate::inbox::Inbox;
pub use group::{GroupChange, GroupInfo, GroupMember, GroupRole, GroupSettings, MemberAction, MemberResult};

/// The account a login controls; on WhatsApp, its phone number.
pub type AccountId = PhoneNumber;

/// The network's id of one message.
pub type NetworkMessageId = String;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("{0} is not on WhatsApp")]
    NotOnNetwork(PhoneNumber),
    #[error("the group invite is invalid or has been revoked")]
    InvalidInvite,
    #[error("the device is not connected to WhatsApp")]
    Disconnected,
    #[error("no login is in progress")]
    NoPendingLogin,
    #[error("the device is not in the group {0}")]
    NoSuchGroup(ChatId),
    #[error("only the group's admins may do that")]
    NotAdmin,
    #[error("the network refused: {0}")]
    Refused(String),
}

/// How a new device is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMethod {
    /// The phone scans rotating QR codes.
    Qr,
    /// The phone of this number types an 8-character code (Linked devices → Link with phone number).
    PairCode(PhoneNumber),
}

/// What a login goes through, in order: codes as they rotate (or the one pairing code),
/// then one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginEvent {
    Qr(String),
    PairCode(String),
    Success(AccountId),
    Failed(String),
    Timeout,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub avatar: Option<Media>,
}

/// What a file is to the people exchanging it; it decides how both networks show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    /// A voice note, recorded in the chat (WhatsApp's push-to-talk).
    Voice,
    Document,
    Sticker,
}

impl MediaKind {
    /// How a file of `mime_type` is shown when its sender said nothing more.
    pub fn of_mime_type(mime_type: &str) -> Self {
        match mime_type.split('/').next() {
            Some("image") => Self::Image,
            Some("video") => Self::Video,
            Some("audio") => Self::Audio,
            _ => Self::Document,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "voice",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
}

/// A file travelling with a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    pub mime_type: String,
    pub file_name: String,
    /// Pixels, for images, videos and stickers when the sender said.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Playing time of audio and video.
    pub duration: Option<Duration>,
    /// An image or video the recipient may open once.
    #[serde(default)]
    pub view_once: bool,
}

impl Media {
    /// A file whose dimensions and duration nobody gave.
    pub fn new(kind: MediaKind, data: Vec<u8>, mime_type: impl Into<String>, file_name: impl Into<String>) -> Self {
        Self {
            kind,
            data,
            mime_type: mime_type.into(),
            file_name: file_name.into(),
            width: None,
            height: None,
            duration: None,
            view_once: false,
        }
    }
}

/// A place on the map, as a message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// Degrees, -90 to 90.
    #[schema(example = 4.0511)]
    pub latitude: f64,
    /// Degrees, -180 to 180.
    #[schema(example = 9.7679)]
    pub longitude: f64,
    #[schema(example = "Douala Grand Mall")]
    pub name: Option<String>,
    #[schema(example = "Boulevard de la Liberté, Douala")]
    pub address: Option<String>,
}

/// One contact card: its vCard (3.0) and the name shown for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ContactCard {
    #[schema(example = "Ada Lovelace")]
    pub display_name: String,
    #[schema(
        example = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada Lovelace\nTEL;type=CELL;waid=237677777777:+237 677 77 77 77\nEND:VCARD"
    )]
    pub vcard: String,
}

/// A poll: its question and options; with `multiple`, a voter may pick several.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Poll {
    #[schema(example = "Lunch?")]
    pub question: String,
    /// 2 to 12 distinct options.
    #[schema(example = json!(["Ndolé", "Eru"]))]
    pub options: Vec<String>,
    /// Whether a voter may pick several options.
    #[serde(default)]
    pub multiple: bool,
}

/// What a message carries that is neither text nor a file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Structured {
    Location(Location),
    ContactCards { cards: Vec<ContactCard> },
    Poll(Poll),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutgoingMessage {
    pub text: Option<String>,
    pub media: Option<Media>,
    /// The network id of the message this one quotes.
    pub reply_to: Option<NetworkMessageId>,
    /// A location, contact cards or a poll, which `media` never goes with.
    pub structured: Option<Structured>,
    /// Sent on from another chat.
    pub forwarded: bool,
}

/// A message a device acts on: its id, and whether the device itself sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: NetworkMessageId,
    pub from_me: bool,
}

/// What a device sends into a chat: a message, or an action on one.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Message(OutgoingMessage),
    /// A reaction to `target`; an empty `emoji` takes the device's reaction back.
    Reaction {
        target: Target,
        emoji: String,
    },
    /// `target`, a message the device sent, now reads `text`.
    Edit {
        target: NetworkMessageId,
        text: String,
    },
    /// `target`, a message the device sent, is deleted for everyone.
    Delete {
        target: NetworkMessageId,
    },
    /// The device's vote on the poll `target`: the options it now chooses (none takes
    /// the vote back).
    PollVote {
        target: Target,
        options: Vec<String>,
    },
}

/// What a contact did in a chat.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IncomingBody {
    /// A new message: text, a file with an optional caption, or both, maybe quoting another;
    /// or a location, contact cards or a poll.
    Message {
        text: Option<String>,
        media: Option<Media>,
        reply_to: Option<NetworkMessageId>,
        #[serde(default)]
        structured: Option<Structured>,
    },
    /// A reaction to `target`; an empty `emoji` takes the sender's reaction back.
    Reaction { target: NetworkMessageId, emoji: String },
    /// `target`'s text (or caption) is now `text`.
    Edit { target: NetworkMessageId, text: String },
    /// `target` was deleted for everyone.
    Delete { target: NetworkMessageId },
    /// A vote on the poll `target`: the options the sender now chooses (none takes the
    /// vote back). WhatsApp sends the whole choice each time, as MSC3381 does.
    PollVote { target: NetworkMessageId, options: Vec<String> },
    /// The sender called the account; `rejected` when the connector turned it down
    /// (`reject_calls`).
    Call { video: bool, rejected: bool },
    /// A change to the group the message is in, made by its sender.
    Group(GroupChange),
}

impl IncomingBody {
    /// The message a reaction, edit or deletion acts on.
    pub fn target(&self) -> Option<&NetworkMessageId> {
        match self {
            Self::Message { .. } | Self::Call { .. } | Self::Group(_) => None,
            Self::Reaction { target, .. }
            | Self::Edit { target, .. }
            | Self::Delete { target }
            | Self::PollVote { target, .. } => Some(target),
        }
    }
}

/// A message a device received. Connectors hand these to the [`Inbox`] and let the
/// network forget them (ack) only once it has committed them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IncomingMessage {
    pub account: AccountId,
    pub chat: ChatId,
    /// The account itself when [`IncomingMessage::from_me`].
    pub sender: PhoneNumber,
    pub sender_name: Option<String>,
    pub id: NetworkMessageId,
    pub body: IncomingBody,
    /// Written by the account itself, on its phone or another linked device.
    #[serde(default)]
    pub from_me: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptKind {
    /// The reader's phone has the messages.
    Delivered,
    /// The reader opened them.
    Read,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Read => "read",
        }
    }
}

/// A chat member's phone reporting on messages `account` sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub account: AccountId,
    pub chat: ChatId,
    pub reader: PhoneNumber,
    pub message_ids: Vec<NetworkMessageId>,
    pub kind: ReceiptKind,
}

/// What the network tells the bridge on its own, besides messages (which go through
/// the durable [`Inbox`]). These are state, not content: one lost in a crash is
/// superseded by the next.
#[derive(Debug, Clone)]
pub enum NetworkEvent {
    Receipt(Receipt),
    /// A contact's name (or push name) changed; their puppet follows.
    Contact(Contact),
    /// The account was logged out from the network side (e.g. removed on the phone).
    LoggedOut(AccountId),
}

/// A message id in WhatsApp's own shape (`3EB0` and 18 hex digits), random: what a
/// device sends under.
pub fn random_message_id() -> NetworkMessageId {
    format!("3EB0{}", hex::encode_upper(rand::random::<[u8; 9]>()))
}

/// Files travel base64-encoded where messages are stored as JSON.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        STANDARD.decode(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

mod base64_bytes_opt {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(data) => serializer.serialize_some(&STANDARD.encode(data)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom)).transpose()
    }
}

/// Where a linked device's connection to the network stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connecting,
    Connected,
    LoggedOut,
    /// Not connected for a reason worth showing; the connector keeps retrying.
    Error(String),
}

impl ConnectionState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::LoggedOut => "logged_out",
            Self::Error(_) => "error",
        }
    }
}

/// The channel of a network's own events: the network sends, the bridge takes the
/// receiving end once (events sent before then wait in it).
pub struct EventChannel {
    sender: mpsc::UnboundedSender<NetworkEvent>,
    receiver: std::sync::Mutex<Option<mpsc::UnboundedReceiver<NetworkEvent>>>,
}

impl Default for EventChannel {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self { sender, receiver: std::sync::Mutex::new(Some(receiver)) }
    }
}

impl EventChannel {
    /// Fails only once the bridge has dropped the receiving end, i.e. while shutting down.
    pub fn send(&self, event: NetworkEvent) -> Result<(), NetworkError> {
        self.sender.send(event).map_err(|_| NetworkError::Disconnected)
    }

    pub fn take(&self) -> Option<mpsc::UnboundedReceiver<NetworkEvent>> {
        self.receiver.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A receiver of a login's events; dropping it abandons the login.
pub type LoginStream = mpsc::Receiver<LoginEvent>;

#[async_trait]
pub trait Network: Send + Sync + 'static {
    /// Short name for logs and `/health`: `whatsapp`, `sim`.
    fn name(&self) -> &'static str;

    /// Begins linking a new device.
    async fn start_login(&self, method: LoginMethod) -> Result<LoginStream, NetworkError>;

    /// Reconnects a device linked earlier (at start-up). Returns once the attempt is under
    /// way; a connector that cannot connect yet keeps retrying and says so in [`Network::state`].
    async fn connect(&self, account: &AccountId) -> Result<(), NetworkError>;

    /// Where a device linked earlier stands now.
    fn state(&self, account: &AccountId) -> ConnectionState;

    async fn logout(&self, account: &AccountId) -> Result<(), NetworkError>;

    /// Stops running `account`'s client in this process without logging it out: its
    /// session stays stored for the process that runs the device next.
    async fn disconnect(&self, account: &AccountId);

    /// Checks that `phone` can be messaged from `account`.
    async fn resolve_contact(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Contact, NetworkError>;

    /// A group's name, topic, picture, members and settings, as `account` (a member) sees them.
    async fn group_info(&self, account: &AccountId, chat: &ChatId) -> Result<GroupInfo, NetworkError>;

    /// The groups `account` is in, without their pictures.
    async fn groups(&self, account: &AccountId) -> Result<Vec<GroupInfo>, NetworkError>;

    /// Makes a group with `account` as its owner and `members` in it.
    async fn create_group(
        &self,
        account: &AccountId,
        subject: &str,
        members: &[PhoneNumber],
    ) -> Result<GroupInfo, NetworkError>;

    /// Changes what `settings` names; the members hear of each change as a [`GroupChange`].
    async fn update_group(
        &self,
        account: &AccountId,
        chat: &ChatId,
        settings: GroupSettings,
    ) -> Result<(), NetworkError>;

    /// Adds, removes, promotes or demotes `phones`; one result each, in order.
    async fn change_members(
        &self,
        account: &AccountId,
        chat: &ChatId,
        action: MemberAction,
        phones: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, NetworkError>;

    /// The group's invite link; `reset` revokes the current one and makes another.
    async fn invite_link(&self, account: &AccountId, chat: &ChatId, reset: bool) -> Result<String, NetworkError>;

    async fn leave_group(&self, account: &AccountId, chat: &ChatId) -> Result<(), NetworkError>;

    /// Resolves an invite and joins the group unless `account` is already a member.
    async fn join_group(&self, account: &AccountId, invite: &GroupInvite) -> Result<GroupInfo, NetworkError>;

    /// Sends `message` (or an action) under `id` (from [`random_message_id`], stored with
    /// the queued send before the first attempt).
    /// Sending the same id again after a failure or a crash is how a retry is made;
    /// recipients keep one.
    async fn send(
        &self,
        account: &AccountId,
        chat: &ChatId,
        id: &NetworkMessageId,
        message: Outgoing,
    ) -> Result<(), NetworkError>;

    /// Shows `chat` that the device is typing, recording a voice note, or stopped. Not
    /// queued: a late "typing" is worse than none.
    async fn send_typing(&self, account: &AccountId, chat: &ChatId, typing: Typing) -> Result<(), NetworkError>;

    /// Tells the senders of `messages` (network id and sender) in `chat` that the device
    /// read them.
    async fn mark_read(
        &self,
        account: &AccountId,
        chat: &ChatId,
        messages: &[(NetworkMessageId, PhoneNumber)],
    ) -> Result<(), NetworkError>;

    /// Shows the account online (`available`) or not to the contacts that follow it.
    async fn send_presence(&self, account: &AccountId, available: bool) -> Result<(), NetworkError>;

    /// Which of `phones` are on the network, in one query for the batch.
    async fn check_numbers(
        &self,
        account: &AccountId,
        phones: &[PhoneNumber],
    ) -> Result<Vec<NumberCheck>, NetworkError>;

    /// `phone`'s profile as the network shows it to `account` (its About and picture).
    async fn contact_profile(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Profile, NetworkError>;

    /// The account's own profile.
    async fn own_profile(&self, account: &AccountId) -> Result<Profile, NetworkError>;

    /// Changes the account's own profile; what `change` leaves `None` stays.
    async fn set_profile(&self, account: &AccountId, change: ProfileChange) -> Result<(), NetworkError>;

    /// The stream of events for every account; taken once by the bridge.
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NetworkEvent>>;
}

/// A profile as the network shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// The push name, where the network tells it (the account's own).
    pub name: Option<String>,
    /// The "About" text.
    pub about: Option<String>,
    /// Where the network serves the profile picture.
    pub picture_url: Option<String>,
}

/// A change of the account's own profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProfileChange {
    pub push_name: Option<String>,
    pub about: Option<String>,
    /// A JPEG.
    #[serde(default, with = "base64_bytes_opt")]
    pub picture: Option<Vec<u8>>,
}

/// What the network says of a phone number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NumberCheck {
    pub phone: PhoneNumber,
    pub on_whatsapp: bool,
    /// Its chat JID, for a number on the network.
    pub jid: Option<String>,
    /// A WhatsApp Business account.
    pub business: bool,
}

impl NumberCheck {
    pub fn new(phone: &PhoneNumber, on_whatsapp: bool, business: bool) -> Self {
        Self {
            phone: phone.clone(),
            on_whatsapp,
            jid: on_whatsapp.then(|| ChatId::Direct(phone.clone()).to_string()),
            business: on_whatsapp && business,
        }
    }
}

/// What a chat is shown the device is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Typing {
    /// Writing a message.
    Composing,
    /// Recording a voice note.
    Recording,
    /// Stopped.
    Paused,
}
