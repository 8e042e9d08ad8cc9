//! What the simulated server knows: accounts (each a phone plus linked
//! companions), who is online, what is queued for whom, groups and media.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use wacore_binary::{Jid, Node, Server};

use crate::phone::Phone;

/// What a connection task is told to do by the rest of the simulator.
#[derive(Debug)]
pub enum Out {
    Node(Node),
    /// Send this `<stream:error>` and end the stream: the socket is closed
    /// once the client closes it or after a short grace.
    StreamError(Node),
    /// The same, but only once the client has sent its next stanza (or after
    /// a short bound): after `pair-device-sign` the client is still handling
    /// `pair-success` — it sends its `<ib><unified_session>` and only then
    /// marks the coming 515 as expected. A 515 that overtakes that leaves the
    /// mark to fall on the client's next connection, which it then drops.
    StreamErrorOnTurn(Node),
    /// End the stream after what was sent before, the same way.
    CloseGently,
    /// Drop the socket now (a newer login of the device, shutdown).
    Close,
}

#[derive(Clone)]
pub struct ConnHandle {
    pub id: u64,
    pub tx: UnboundedSender<Out>,
}

impl ConnHandle {
    pub fn send(&self, node: Node) {
        let _ = self.tx.send(Out::Node(node));
    }
}

/// A companion device linked to an account.
pub struct Companion {
    pub noise_pub: [u8; 32],
    pub identity_pub: [u8; 32],
    pub registration_id: u32,
    pub signed_pre_key: SignedPreKey,
    pub pre_keys: BTreeMap<u32, [u8; 32]>,
    /// The companion's ADVSignedDeviceIdentity, once it has countersigned it.
    pub adv_identity: Option<Vec<u8>>,
    pub key_index: u32,
    /// What the server holds for the device, oldest first: every `<message>`
    /// until the device acks it (sent or not), and receipts and notifications
    /// until they are sent.
    pub queue: Vec<Held>,
    /// The connection that last had its offline backlog handed over; a
    /// connection gets the backlog once.
    pub flushed_on: Option<u64>,
}

/// A stanza the server holds for a device.
pub struct Held {
    pub node: Node,
    /// For a `<message>`: what the device's ack names. `None` for receipts and
    /// notifications, which the server forgets once they are sent.
    pub ack: Option<AckKey>,
    /// The connection it was last sent on, if any.
    pub sent_on: Option<u64>,
}

/// What identifies a delivered `<message>` in the device's ack: the stanza id
/// within its chat and author. The client names the author in whichever
/// addressing domain (PN or LID) and with or without the device, so the key
/// keeps accounts, not JIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckKey {
    pub id: String,
    /// The sender's account (phone number).
    pub sender: String,
    /// The group's id for a group message.
    pub group: Option<String>,
}

#[derive(Clone)]
pub struct SignedPreKey {
    pub id: u32,
    pub public: [u8; 32],
    pub signature: Vec<u8>,
}

pub struct Account {
    pub phone_number: String,
    pub lid: String,
    pub push_name: String,
    pub phone: Phone,
    pub companions: BTreeMap<u16, Companion>,
    pub next_device: u16,
    /// The "About" text, once the account set one.
    pub about: Option<String>,
    /// The profile picture: its id and where the media host serves it.
    pub picture: Option<(String, String)>,
    /// When the account was created (the key-index list's timestamp).
    pub created: u64,
    pub received: Vec<Received>,
}

impl Account {
    pub fn lid_jid(&self) -> Jid {
        Jid::lid(self.lid.as_str())
    }
}

/// One stanza delivered (or queued) for an account, as the test API reports it.
/// Payloads stay opaque: the simulator never decrypts end-to-end content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Received {
    /// The device it was addressed to (0 = the phone).
    pub device: u16,
    /// `message`, `receipt`, `notification`, …
    pub tag: String,
    pub id: String,
    pub from: String,
    pub participant: Option<String>,
    /// The stanza's `type` attribute (`text`, `media`, `read`, …).
    pub kind: Option<String>,
    /// For messages: the `type` of each `<enc>` child (`pkmsg`, `msg`, `skmsg`).
    pub enc: Vec<String>,
    pub at: u64,
}

/// A device waiting for a phone to scan its QR code.
pub struct PendingPairing {
    pub conn: ConnHandle,
    pub noise_pub: [u8; 32],
    pub identity_pub: [u8; 32],
    pub registration_id: u32,
    pub signed_pre_key: SignedPreKey,
}

/// A device that asked to be linked by phone number (`companion_hello`).
#[derive(Clone)]
pub struct CodePairing {
    pub conn: ConnHandle,
    pub pairing_ref: Vec<u8>,
    /// The companion's ephemeral public key, encrypted with the code it shows.
    pub wrapped_ephemeral: Vec<u8>,
}

/// What a companion sends in `companion_finish`, for the phone to open.
pub struct CompanionFinish {
    pub wrapped_key_bundle: Vec<u8>,
    pub identity_pub: [u8; 32],
}

/// A pair-success sent and not yet countersigned by the companion.
pub struct AwaitingSign {
    pub phone_number: String,
    pub device: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub subject: String,
    /// Who set the subject last (the creator at first), and when.
    pub subject_by: String,
    pub subject_at: u64,
    pub creator: String,
    pub created: u64,
    /// Members by phone number, with their admin flag.
    pub members: BTreeMap<String, bool>,
    pub invite_code: String,
    /// Codes reset since: the server answers them "gone" (410), not "unknown".
    pub revoked_invites: Vec<String>,
    pub description: Option<Description>,
    /// Only admins may change the subject, description and picture.
    pub locked: bool,
    /// Announcement mode: only admins may send (not enforced on messages).
    pub announce: bool,
    /// The group's picture: its id and where the media host serves it.
    pub picture: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Description {
    /// The id the author's client chose; the next change names it as `prev`.
    pub id: String,
    pub text: String,
    pub by: String,
    pub at: u64,
}

impl Group {
    pub fn jid(&self) -> Jid {
        Jid::new(self.id.as_str(), Server::Group)
    }
}

#[derive(Default)]
pub struct State {
    pub accounts: BTreeMap<String, Account>,
    pub lid_to_phone: HashMap<String, String>,
    pub pending_pairings: HashMap<String, PendingPairing>,
    pub awaiting_sign: HashMap<String, AwaitingSign>,
    /// Pair-code requests by the phone number they name: the server routes
    /// the phone's answer by number, so a newer request replaces an older one.
    pub code_pairings: HashMap<String, CodePairing>,
    /// `primary_hello`s sent, by pairing ref, waiting for `companion_finish`.
    pub awaiting_finish: HashMap<Vec<u8>, oneshot::Sender<CompanionFinish>>,
    pub online: HashMap<(String, u16), ConnHandle>,
    /// Logins that replaced a device's open connection: two clients running one device.
    pub takeovers: HashMap<(String, u16), usize>,
    pub groups: BTreeMap<String, Group>,
    pub next_lid: u64,
    pub next_group: u64,
    pub media: HashMap<String, Vec<u8>>,
    /// Who follows whose presence: account → the devices subscribed to it.
    pub presence_followers: HashMap<String, std::collections::BTreeSet<(String, u16)>>,
    /// The last presence each account showed (`available` or `unavailable`).
    pub presence: HashMap<String, String>,
    /// WhatsApp Business accounts, by phone number.
    pub business: std::collections::BTreeSet<String>,
    /// The "who is on WhatsApp" queries (usync with the `contact` protocol) each account's
    /// devices made: how many numbers each asked about, in order.
    pub contact_queries: HashMap<String, Vec<usize>>,
}

impl State {
    /// Resolves a PN or LID user to the account's phone number.
    pub fn phone_of(&self, jid: &Jid) -> Option<String> {
        match jid.server {
            Server::Pn => self.accounts.contains_key(jid.user.as_str()).then(|| jid.user.to_string()),
            Server::Lid => self.lid_to_phone.get(jid.user.as_str()).cloned(),
            _ => None,
        }
    }

    /// The device ids that exist for an account: the phone (0) and every
    /// companion that finished linking.
    pub fn device_ids(&self, phone: &str) -> Vec<u16> {
        let Some(acc) = self.accounts.get(phone) else {
            return Vec::new();
        };
        std::iter::once(0)
            .chain(acc.companions.iter().filter(|(_, c)| c.adv_identity.is_some()).map(|(id, _)| *id))
            .collect()
    }
}
