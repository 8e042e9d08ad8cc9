//! The one interface between the bridge and a messaging network. A network is a folder
//! here implementing [`Network`]; nothing else in the bridge knows which one runs.

pub mod sim;
pub mod whatsapp;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::ids::{ChatId, GroupInvite, PhoneNumber};

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
    #[error("the network refused: {0}")]
    Refused(String),
}

/// What a QR login goes through, in order: codes as they rotate, then one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginEvent {
    Qr(String),
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

#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub chat: ChatId,
    pub name: String,
    pub topic: Option<String>,
    pub avatar: Option<Media>,
}

/// A file travelling with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub data: Vec<u8>,
    pub mime_type: String,
    pub file_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub text: Option<String>,
    pub media: Option<Media>,
    /// The network id of the message this one quotes.
    pub reply_to: Option<NetworkMessageId>,
}

#[derive(Debug, Clone)]
pub struct IncomingMessage {
    pub account: AccountId,
    pub chat: ChatId,
    pub sender: PhoneNumber,
    pub sender_name: Option<String>,
    pub id: NetworkMessageId,
    pub text: Option<String>,
    pub media: Option<Media>,
    pub reply_to: Option<NetworkMessageId>,
}

/// What the network tells the bridge on its own.
#[derive(Debug, Clone)]
pub enum NetworkEvent {
    Message(Box<IncomingMessage>),
    /// The account was logged out from the network side (e.g. removed on the phone).
    LoggedOut(AccountId),
}

/// A receiver of a login's events; dropping it abandons the login.
pub type LoginStream = mpsc::Receiver<LoginEvent>;

#[async_trait]
pub trait Network: Send + Sync + 'static {
    /// Short name for logs and `/health`: `whatsapp`, `sim`.
    fn name(&self) -> &'static str;

    /// Begins a QR login for a new device.
    async fn start_login(&self) -> Result<LoginStream, NetworkError>;

    /// Reconnects a device linked earlier (at start-up).
    async fn connect(&self, account: &AccountId) -> Result<(), NetworkError>;

    async fn logout(&self, account: &AccountId) -> Result<(), NetworkError>;

    /// Checks that `phone` can be messaged from `account`.
    async fn resolve_contact(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Contact, NetworkError>;

    /// A group's name, topic and picture, as `account` (a member) sees them.
    async fn group_info(&self, account: &AccountId, chat: &ChatId) -> Result<GroupInfo, NetworkError>;

    /// Resolves an invite and joins the group unless `account` is already a member.
    async fn join_group(&self, account: &AccountId, invite: &GroupInvite) -> Result<GroupInfo, NetworkError>;

    async fn send(
        &self,
        account: &AccountId,
        chat: &ChatId,
        message: OutgoingMessage,
    ) -> Result<NetworkMessageId, NetworkError>;

    /// The stream of events for every account; taken once by the bridge.
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NetworkEvent>>;
}
