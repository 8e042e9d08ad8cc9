//! `sim`: an in-process stand-in for WhatsApp, for tests and offline demos. It issues
//! rotating QR codes, "scans" them on request, knows groups with invite codes, keeps
//! an outbox of what each device sent, and injects incoming messages. It is never the
//! default network and announces itself in the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    AccountId, ConnectionState, Contact, ContactCard, EventChannel, GroupChange, GroupInfo, GroupMember, GroupRole,
    GroupSettings, Inbox, IncomingBody, IncomingMessage, Location, LoginEvent, LoginMethod, LoginStream, Media,
    MediaKind, MemberAction, MemberResult, Network, NetworkError, NetworkEvent, NetworkMessageId, NumberCheck,
    Outgoing, OutgoingMessage, Poll, Profile, ProfileChange, Receipt, ReceiptKind, Structured, Typing,
    random_message_id,
};
use crate::ids::{ChatId, GroupInvite, PhoneNumber};

/// Numbers with this prefix are "not on WhatsApp".
const UNREGISTERED_PREFIX: &str = "000";

/// Where the simulator serves a profile picture (mxgate's own `/sim` routes).
fn picture_url(phone: &PhoneNumber) -> String {
    format!("/sim/pictures/{phone}")
}

fn is_unregistered(phone: &PhoneNumber) -> bool {
    phone.as_str().starts_with(UNREGISTERED_PREFIX)
}

/// The characters WhatsApp's pairing codes are made of.
const PAIR_CODE_ALPHABET: &[u8; 32] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";

/// How many codes a login shows before it times out, as WhatsApp does.
const QR_CODES_PER_LOGIN: usize = 6;

pub struct SimNetwork {
    qr_interval: Duration,
    /// `MXGATE_REJECT_CALLS`: a call offered to a device is turned down at once.
    reject_calls: bool,
    state: Mutex<State>,
    events: EventChannel,
    inbox: Inbox,
}

#[derive(Default)]
struct State {
    connected: HashSet<AccountId>,
    /// Pending logins, newest last; each has the sender of its events and, for a
    /// pairing-code login, the only number that may complete it.
    logins: Vec<PendingLogin>,
    next_login: u64,
    groups: HashMap<String, Group>,
    outbox: HashMap<AccountId, Vec<OutboxEntry>>,
    signals: HashMap<AccountId, Vec<Signal>>,
    /// Numbers that are WhatsApp Business accounts.
    business: HashSet<PhoneNumber>,
    /// Profiles the simulated accounts set (linked devices through the API); a number
    /// without one shows none.
    profiles: HashMap<PhoneNumber, SimProfile>,
}

#[derive(Default, Clone)]
struct SimProfile {
    push_name: Option<String>,
    about: Option<String>,
    picture: Option<Vec<u8>>,
}

struct PendingLogin {
    phone: Option<PhoneNumber>,
    events: mpsc::Sender<LoginEvent>,
    /// The QR code on show now, which a phone that read it names when it scans.
    showing: std::sync::Arc<Mutex<Option<String>>>,
}

struct Group {
    name: String,
    description: Option<String>,
    members: BTreeMap<PhoneNumber, GroupRole>,
    invite_code: String,
    announce: bool,
    locked: bool,
    picture: Option<Vec<u8>>,
}

impl Group {
    fn info(&self, jid: &str) -> GroupInfo {
        let picture = self.picture.clone().map(|data| Media::new(MediaKind::Image, data, "image/jpeg", "picture.jpg"));
        GroupInfo {
            chat: ChatId::Group(jid.to_owned()),
            name: self.name.clone(),
            topic: self.description.clone(),
            avatar: Some(picture.unwrap_or_else(|| avatar(jid))),
            members: self
                .members
                .iter()
                .map(|(phone, role)| GroupMember { phone: phone.clone(), role: *role })
                .collect(),
            announce: self.announce,
            locked: self.locked,
        }
    }

    fn role(&self, phone: &PhoneNumber) -> Option<GroupRole> {
        self.members.get(phone).copied()
    }
}

/// A small picture of one colour derived from `seed`, as a stand-in profile picture.
fn avatar(seed: &str) -> Media {
    let [r, g, b, ..] = fnv1a(seed);
    let image = image::RgbImage::from_pixel(64, 64, image::Rgb([r, g, b]));
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).expect("encoding a PNG in memory succeeds");
    Media::new(MediaKind::Image, png.into_inner(), "image/png", "avatar.png")
}

/// FNV-1a: a stable digest, enough to pick a colour.
fn fnv1a(seed: &str) -> [u8; 4] {
    let hash = seed.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash.to_be_bytes()
}

/// One message as the network received it from a device.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub message_id: NetworkMessageId,
    /// The recipient's JID (`<phone>@s.whatsapp.net` or `<id>@g.us`).
    pub to: String,
    /// `message`, `reaction`, `edit`, `delete` or `poll_vote`.
    pub action: &'static str,
    /// The message a reaction, edit, deletion or vote acts on.
    pub target: Option<NetworkMessageId>,
    /// A reaction's emoji; empty takes it back.
    pub emoji: Option<String>,
    /// A message's text, or an edit's new text.
    pub text: Option<String>,
    pub media: Option<OutboxMedia>,
    pub reply_to: Option<NetworkMessageId>,
    pub location: Option<Location>,
    pub contact_cards: Option<Vec<ContactCard>>,
    pub poll: Option<Poll>,
    /// A vote's chosen options (none takes it back).
    pub options: Option<Vec<String>>,
    /// Sent on from another chat.
    pub forwarded: bool,
}

/// What a device showed beside its messages: typing, reading, being online.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Typing {
        /// The chat's JID.
        to: String,
        state: Typing,
    },
    Read {
        to: String,
        messages: Vec<ReadMessage>,
    },
    Presence {
        available: bool,
    },
    /// The device turned down a call (`MXGATE_REJECT_CALLS`).
    CallRejected {
        call_id: NetworkMessageId,
        caller: String,
    },
    /// The device asked which of `count` numbers are on the network, in one query.
    NumbersChecked {
        count: usize,
    },
}

/// A message marked read, and its sender.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReadMessage {
    pub message_id: NetworkMessageId,
    pub sender: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutboxMedia {
    /// `image`, `video`, `audio`, `voice`, `document` or `sticker`.
    pub kind: &'static str,
    pub mime_type: String,
    pub file_name: String,
    pub size: usize,
    pub base64: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub view_once: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedGroup {
    pub jid: String,
    pub invite_url: String,
}

/// A message (or reaction, edit, deletion) to inject as if a contact sent it.
#[derive(Debug, Clone)]
pub struct Injected {
    /// Written by the account on its phone, in the chat with `from`.
    pub from_me: bool,
    pub device: AccountId,
    pub from: PhoneNumber,
    pub group: Option<String>,
    pub body: IncomingBody,
}

impl SimNetwork {
    pub fn new(qr_interval: Duration, reject_calls: bool, inbox: Inbox) -> Self {
        tracing::warn!("using the SIMULATED WhatsApp network (sim); no real account is reachable");
        let (state, events) = (Mutex::new(State::default()), EventChannel::default());
        Self { qr_interval, reject_calls, state, events, inbox }
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The phone scans the newest pending QR code (or enters the pairing code shown for
    /// its number), or the login showing `code` (read off a screen), so that login
    /// succeeds as `phone`.
    pub async fn scan(&self, phone: PhoneNumber, code: Option<&str>) -> Result<(), NetworkError> {
        let sender = {
            let mut state = self.locked();
            state.logins.retain(|login| !login.events.is_closed());
            let shows = |login: &PendingLogin| {
                code.is_none_or(|code| login.showing.lock().unwrap_or_else(|e| e.into_inner()).as_deref() == Some(code))
            };
            let newest = state
                .logins
                .iter()
                .rposition(|login| login.phone.as_ref().is_none_or(|p| *p == phone) && shows(login))
                .ok_or(NetworkError::NoPendingLogin)?;
            let login = state.logins.remove(newest);
            state.connected.insert(phone.clone());
            login.events
        };
        sender.send(LoginEvent::Success(phone)).await.map_err(|_| NetworkError::NoPendingLogin)
    }

    /// The profile picture `phone` set, as `/sim/pictures/{phone}` serves it.
    pub fn picture(&self, phone: &PhoneNumber) -> Option<Vec<u8>> {
        self.locked().profiles.get(phone).and_then(|p| p.picture.clone())
    }

    /// `phone` is a WhatsApp Business account from now on.
    pub fn make_business(&self, phone: PhoneNumber) {
        self.locked().business.insert(phone);
    }

    /// The phone removes the linked device (Settings → Linked devices → Log out).
    pub fn remove_device(&self, phone: &PhoneNumber) -> Result<(), NetworkError> {
        if !self.locked().connected.remove(phone) {
            return Err(NetworkError::Disconnected);
        }
        self.events.send(NetworkEvent::LoggedOut(phone.clone()))
    }

    /// `by`, a member, renames a group; every linked member hears of it.
    pub async fn rename_group(&self, jid: &str, by: Option<PhoneNumber>, name: String) -> Result<(), NetworkError> {
        let told = {
            let mut state = self.locked();
            let group =
                state.groups.get_mut(jid).ok_or_else(|| NetworkError::NoSuchGroup(ChatId::Group(jid.into())))?;
            let by = match by {
                Some(by) if group.members.contains_key(&by) => by,
                Some(by) => return Err(NetworkError::Refused(format!("{by} is not a member of {jid}"))),
                None => group.members.keys().next().cloned().ok_or(NetworkError::NotAdmin)?,
            };
            group.name = name.clone();
            Self::news(&state, jid, &by, GroupChange::Subject { subject: name }, &[])
        };
        self.tell(told).await
    }

    /// A group made outside the linked devices (by contacts), with everyone a plain member.
    pub fn new_group(&self, name: String, members: Vec<PhoneNumber>) -> CreatedGroup {
        let jid = format!("1203630{}@g.us", rand::random_range(10_000_000u64..99_999_999));
        let invite_code = hex::encode(rand::random::<[u8; 11]>());
        let invite_url = format!("https://chat.whatsapp.com/{invite_code}");
        let group = Group {
            name,
            description: Some(format!("{} members", members.len())),
            members: members.into_iter().map(|m| (m, GroupRole::Member)).collect(),
            invite_code,
            announce: false,
            locked: false,
            picture: None,
        };
        self.locked().groups.insert(jid.clone(), group);
        CreatedGroup { jid, invite_url }
    }

    /// What each connected member of `jid` (and `also`, members who just left) hears of
    /// `change` by `by`: one message each, for the inbox.
    fn news(
        state: &State,
        jid: &str,
        by: &PhoneNumber,
        change: GroupChange,
        also: &[PhoneNumber],
    ) -> Vec<IncomingMessage> {
        let Some(group) = state.groups.get(jid) else { return Vec::new() };
        let id = random_message_id();
        group
            .members
            .keys()
            .chain(also)
            .filter(|member| state.connected.contains(*member))
            .map(|member| IncomingMessage {
                account: member.clone(),
                chat: ChatId::Group(jid.to_owned()),
                sender: by.clone(),
                sender_name: None,
                id: id.clone(),
                body: IncomingBody::Group(change.clone()),
                from_me: member == by,
            })
            .collect()
    }

    async fn tell(&self, told: Vec<IncomingMessage>) -> Result<(), NetworkError> {
        self.inbox.commit(&told).await.map_err(|e| NetworkError::Refused(e.to_string()))
    }

    /// `account`'s group `chat`, checked: connected, a member, and an admin when `admin`.
    fn group_of<'s>(
        state: &'s mut State,
        account: &AccountId,
        chat: &ChatId,
        admin: bool,
    ) -> Result<&'s mut Group, NetworkError> {
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        let ChatId::Group(jid) = chat else { return Err(NetworkError::NoSuchGroup(chat.clone())) };
        let group = state
            .groups
            .get_mut(jid)
            .filter(|g| g.members.contains_key(account))
            .ok_or_else(|| NetworkError::NoSuchGroup(chat.clone()))?;
        if admin && !group.role(account).is_some_and(GroupRole::is_admin) {
            return Err(NetworkError::NotAdmin);
        }
        Ok(group)
    }

    /// Delivers a message to `device` as if `from` sent it; returns its network id once
    /// the device has committed it, as WhatsApp forgets a message only once it is acked.
    pub async fn inject(&self, message: Injected) -> Result<NetworkMessageId, NetworkError> {
        let chat = self.chat_of(&message.device, &message.from, message.group)?;
        let id = random_message_id();
        let mut body = message.body;
        // The device turns the call down as it rings, as the whatsapp connector does.
        if let IncomingBody::Call { rejected, .. } = &mut body
            && self.reject_calls
        {
            *rejected = true;
            let signal = Signal::CallRejected { call_id: id.clone(), caller: message.from.to_string() };
            self.signal(&message.device, signal)?;
        }
        // What the account wrote on its phone comes from the account, in the chat with `from`.
        let (sender, sender_name) = match message.from_me {
            true => (message.device.clone(), None),
            false => (message.from.clone(), Some(format!("Contact {}", message.from))),
        };
        let incoming = IncomingMessage {
            account: message.device,
            chat,
            sender_name,
            sender,
            id: id.clone(),
            body,
            from_me: message.from_me,
        };
        self.inbox.commit(std::slice::from_ref(&incoming)).await.map_err(|e| NetworkError::Refused(e.to_string()))?;
        Ok(id)
    }

    /// `reader`'s phone reports that messages `device` sent were delivered or read.
    pub fn receipt(
        &self,
        device: AccountId,
        reader: PhoneNumber,
        group: Option<String>,
        message_ids: Vec<NetworkMessageId>,
        kind: ReceiptKind,
    ) -> Result<(), NetworkError> {
        let chat = self.chat_of(&device, &reader, group)?;
        let receipt = Receipt { account: device, chat, reader, message_ids, kind };
        self.events.send(NetworkEvent::Receipt(receipt))
    }

    /// The chat in which `contact` talks to connected `device`: their direct chat, or a group both are in.
    fn chat_of(
        &self,
        device: &AccountId,
        contact: &PhoneNumber,
        group: Option<String>,
    ) -> Result<ChatId, NetworkError> {
        let state = self.locked();
        let chat = match group {
            Some(jid) => {
                let group = state.groups.get(&jid).ok_or_else(|| NetworkError::Refused(format!("no group {jid}")))?;
                if !group.members.contains_key(device) {
                    return Err(NetworkError::Refused(format!("{device} is not a member of {jid}")));
                }
                ChatId::Group(jid)
            }
            None => ChatId::Direct(contact.clone()),
        };
        if !state.connected.contains(device) {
            return Err(NetworkError::Disconnected);
        }
        Ok(chat)
    }

    /// What `device` showed beside its messages, oldest first.
    pub fn signals(&self, device: &AccountId) -> Vec<Signal> {
        self.locked().signals.get(device).cloned().unwrap_or_default()
    }

    fn signal(&self, account: &AccountId, signal: Signal) -> Result<(), NetworkError> {
        let mut state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        state.signals.entry(account.clone()).or_default().push(signal);
        Ok(())
    }

    /// What the network received from `device`, oldest first.
    pub fn outbox(&self, device: &AccountId) -> Vec<OutboxEntry> {
        self.locked().outbox.get(device).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl Network for SimNetwork {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn start_login(&self, method: LoginMethod) -> Result<LoginStream, NetworkError> {
        let (tx, rx) = mpsc::channel(8);
        let phone = match method {
            LoginMethod::Qr => None,
            LoginMethod::PairCode(phone) => Some(phone),
        };
        let pair_code = phone.is_some();
        let showing = std::sync::Arc::new(Mutex::new(None));
        let id = {
            let mut state = self.locked();
            state.next_login += 1;
            state.logins.push(PendingLogin { phone, events: tx.clone(), showing: showing.clone() });
            state.next_login
        };
        let interval = self.qr_interval;
        tokio::spawn(async move {
            if pair_code {
                let code: String = (0..8).map(|_| PAIR_CODE_ALPHABET[rand::random_range(0..32)] as char).collect();
                if tx.send(LoginEvent::PairCode(code)).await.is_ok() {
                    tokio::time::sleep(interval * QR_CODES_PER_LOGIN as u32).await;
                    let _ = tx.send(LoginEvent::Timeout).await;
                }
                return;
            }
            for n in 0..QR_CODES_PER_LOGIN {
                let code = format!("2@sim{id}-{n},{}", hex::encode(rand::random::<[u8; 16]>()));
                *showing.lock().unwrap_or_else(|e| e.into_inner()) = Some(code.clone());
                if tx.send(LoginEvent::Qr(code)).await.is_err() {
                    return;
                }
                tokio::time::sleep(interval).await;
                if tx.is_closed() {
                    return;
                }
            }
            let _ = tx.send(LoginEvent::Timeout).await;
        });
        Ok(rx)
    }

    async fn connect(&self, account: &AccountId) -> Result<(), NetworkError> {
        self.locked().connected.insert(account.clone());
        Ok(())
    }

    async fn logout(&self, account: &AccountId) -> Result<(), NetworkError> {
        self.locked().connected.remove(account);
        Ok(())
    }

    async fn disconnect(&self, account: &AccountId) {
        self.locked().connected.remove(account);
    }

    fn state(&self, account: &AccountId) -> ConnectionState {
        if self.locked().connected.contains(account) { ConnectionState::Connected } else { ConnectionState::LoggedOut }
    }

    async fn resolve_contact(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Contact, NetworkError> {
        if !self.locked().connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        if is_unregistered(phone) {
            return Err(NetworkError::NotOnNetwork(phone.clone()));
        }
        Ok(Contact {
            phone: phone.clone(),
            name: Some(format!("Contact {phone}")),
            avatar: Some(avatar(phone.as_str())),
        })
    }

    async fn join_group(&self, account: &AccountId, invite: &GroupInvite) -> Result<GroupInfo, NetworkError> {
        let (info, told) = {
            let mut state = self.locked();
            if !state.connected.contains(account) {
                return Err(NetworkError::Disconnected);
            }
            let (jid, group) = state
                .groups
                .iter_mut()
                .find(|(_, g)| g.invite_code == invite.code())
                .ok_or(NetworkError::InvalidInvite)?;
            let jid = jid.clone();
            let joined = group.members.insert(account.clone(), GroupRole::Member).is_none();
            let info = group.info(&jid);
            let change = GroupChange::Members { action: MemberAction::Add, phones: vec![account.clone()] };
            (info, if joined { Self::news(&state, &jid, account, change, &[]) } else { Vec::new() })
        };
        self.tell(told).await?;
        Ok(info)
    }

    async fn group_info(&self, account: &AccountId, chat: &ChatId) -> Result<GroupInfo, NetworkError> {
        let mut state = self.locked();
        Ok(Self::group_of(&mut state, account, chat, false)?.info(&chat.to_string()))
    }

    async fn groups(&self, account: &AccountId) -> Result<Vec<GroupInfo>, NetworkError> {
        let state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        let mine = state.groups.iter().filter(|(_, g)| g.members.contains_key(account));
        let mut groups: Vec<GroupInfo> = mine.map(|(jid, g)| GroupInfo { avatar: None, ..g.info(jid) }).collect();
        groups.sort_by_key(|g| g.chat.to_string());
        Ok(groups)
    }

    async fn create_group(
        &self,
        account: &AccountId,
        subject: &str,
        members: &[PhoneNumber],
    ) -> Result<GroupInfo, NetworkError> {
        if let Some(phone) = members.iter().find(|m| is_unregistered(m)) {
            return Err(NetworkError::NotOnNetwork(phone.clone()));
        }
        let created = self.new_group(subject.to_owned(), members.to_vec());
        let (info, told) = {
            let mut state = self.locked();
            if !state.connected.contains(account) {
                return Err(NetworkError::Disconnected);
            }
            let group = state.groups.get_mut(&created.jid).expect("made above");
            group.description = None;
            group.members.insert(account.clone(), GroupRole::Owner);
            let info = group.info(&created.jid);
            let change = GroupChange::Created { subject: info.name.clone(), members: info.members.clone() };
            (info, Self::news(&state, &created.jid, account, change, &[]))
        };
        self.tell(told).await?;
        Ok(info)
    }

    async fn update_group(
        &self,
        account: &AccountId,
        chat: &ChatId,
        settings: GroupSettings,
    ) -> Result<(), NetworkError> {
        let told = {
            let mut state = self.locked();
            let group = Self::group_of(&mut state, account, chat, false)?;
            let admin = group.role(account).is_some_and(GroupRole::is_admin);
            let edits_info = settings.subject.is_some() || settings.description.is_some() || settings.picture.is_some();
            let edits_settings = settings.announce.is_some() || settings.locked.is_some();
            if !admin && (edits_settings || (edits_info && group.locked)) {
                return Err(NetworkError::NotAdmin);
            }
            let mut changes = Vec::new();
            if let Some(subject) = settings.subject {
                group.name = subject.clone();
                changes.push(GroupChange::Subject { subject });
            }
            if let Some(description) = settings.description {
                group.description = Some(description).filter(|d| !d.is_empty());
                changes.push(GroupChange::Description { description: group.description.clone() });
            }
            if let Some(picture) = settings.picture {
                group.picture = Some(picture);
                changes.push(GroupChange::Picture { removed: false });
            }
            if let Some(announce) = settings.announce {
                group.announce = announce;
                changes.push(GroupChange::Announce { announce });
            }
            if let Some(locked) = settings.locked {
                group.locked = locked;
                changes.push(GroupChange::Locked { locked });
            }
            let jid = chat.to_string();
            changes.into_iter().flat_map(|change| Self::news(&state, &jid, account, change, &[])).collect()
        };
        self.tell(told).await
    }

    async fn change_members(
        &self,
        account: &AccountId,
        chat: &ChatId,
        action: MemberAction,
        phones: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, NetworkError> {
        let (results, told) = {
            let mut state = self.locked();
            let group = Self::group_of(&mut state, account, chat, true)?;
            let mut results = Vec::with_capacity(phones.len());
            for phone in phones {
                let code = match (action, group.role(phone)) {
                    (MemberAction::Add, Some(_)) => Some("409"),
                    (MemberAction::Add, None) if is_unregistered(phone) => Some("404"),
                    (MemberAction::Add, None) => {
                        group.members.insert(phone.clone(), GroupRole::Member);
                        None
                    }
                    (_, None) => Some("404"),
                    (MemberAction::Remove, Some(_)) => {
                        group.members.remove(phone);
                        None
                    }
                    (MemberAction::Promote, Some(role)) => {
                        group
                            .members
                            .insert(phone.clone(), if role == GroupRole::Owner { role } else { GroupRole::Admin });
                        None
                    }
                    (MemberAction::Demote, Some(_)) => {
                        group.members.insert(phone.clone(), GroupRole::Member);
                        None
                    }
                };
                results.push(MemberResult::of_code(phone.clone(), action, code));
            }
            let done: Vec<PhoneNumber> =
                results.iter().filter(|r| r.error.is_none()).map(|r| r.phone.clone()).collect();
            let told = if done.is_empty() {
                Vec::new()
            } else {
                // Those removed hear of it too.
                let gone = if action == MemberAction::Remove { done.clone() } else { Vec::new() };
                let change = GroupChange::Members { action, phones: done };
                Self::news(&state, &chat.to_string(), account, change, &gone)
            };
            (results, told)
        };
        self.tell(told).await?;
        Ok(results)
    }

    async fn invite_link(&self, account: &AccountId, chat: &ChatId, reset: bool) -> Result<String, NetworkError> {
        let (code, told) = {
            let mut state = self.locked();
            let group = Self::group_of(&mut state, account, chat, reset)?;
            if reset {
                group.invite_code = hex::encode(rand::random::<[u8; 11]>());
            }
            let code = group.invite_code.clone();
            let told = match reset {
                true => Self::news(&state, &chat.to_string(), account, GroupChange::InviteRevoked, &[]),
                false => Vec::new(),
            };
            (code, told)
        };
        self.tell(told).await?;
        Ok(format!("https://chat.whatsapp.com/{code}"))
    }

    async fn leave_group(&self, account: &AccountId, chat: &ChatId) -> Result<(), NetworkError> {
        let told = {
            let mut state = self.locked();
            Self::group_of(&mut state, account, chat, false)?.members.remove(account);
            let change = GroupChange::Members { action: MemberAction::Remove, phones: vec![account.clone()] };
            Self::news(&state, &chat.to_string(), account, change, std::slice::from_ref(account))
        };
        self.tell(told).await
    }

    async fn send(
        &self,
        account: &AccountId,
        chat: &ChatId,
        id: &NetworkMessageId,
        message: Outgoing,
    ) -> Result<(), NetworkError> {
        let mut state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        if let ChatId::Group(jid) = chat
            && !state.groups.get(jid).is_some_and(|g| g.members.contains_key(account))
        {
            return Err(NetworkError::NoSuchGroup(chat.clone()));
        }
        let outbox = state.outbox.entry(account.clone()).or_default();
        // The network keeps one message per id, as WhatsApp's recipients do.
        if outbox.iter().any(|sent| sent.message_id == *id) {
            return Ok(());
        }
        use base64::Engine;
        let mut options = None;
        let (action, target, emoji, mut message) = match message {
            Outgoing::Message(message) => ("message", None, None, message),
            Outgoing::PollVote { target, options: chosen } => {
                options = Some(chosen);
                ("poll_vote", Some(target.id), None, OutgoingMessage::default())
            }
            Outgoing::Reaction { target, emoji } => {
                ("reaction", Some(target.id), Some(emoji), OutgoingMessage::default())
            }
            Outgoing::Edit { target, text } => {
                ("edit", Some(target), None, OutgoingMessage { text: Some(text), ..OutgoingMessage::default() })
            }
            Outgoing::Delete { target } => ("delete", Some(target), None, OutgoingMessage::default()),
        };
        let (location, contact_cards, poll) = match message.structured.take() {
            None => (None, None, None),
            Some(Structured::Location(location)) => (Some(location), None, None),
            Some(Structured::ContactCards { cards }) => (None, Some(cards), None),
            Some(Structured::Poll(poll)) => (None, None, Some(poll)),
        };
        let entry = OutboxEntry {
            message_id: id.clone(),
            to: chat.to_string(),
            action,
            target,
            emoji,
            text: message.text,
            media: message.media.map(|m| OutboxMedia {
                kind: m.kind.as_str(),
                size: m.data.len(),
                base64: base64::engine::general_purpose::STANDARD.encode(&m.data),
                mime_type: m.mime_type,
                file_name: m.file_name,
                width: m.width,
                height: m.height,
                duration_ms: m.duration.map(|d| d.as_millis() as u64),
                view_once: m.view_once,
            }),
            reply_to: message.reply_to,
            location,
            contact_cards,
            poll,
            options,
            forwarded: message.forwarded,
        };
        outbox.push(entry);
        Ok(())
    }

    async fn send_typing(&self, account: &AccountId, chat: &ChatId, typing: Typing) -> Result<(), NetworkError> {
        self.signal(account, Signal::Typing { to: chat.to_string(), state: typing })
    }

    async fn contact_profile(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Profile, NetworkError> {
        let state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        if is_unregistered(phone) {
            return Err(NetworkError::NotOnNetwork(phone.clone()));
        }
        let profile = state.profiles.get(phone).cloned().unwrap_or_default();
        Ok(Profile { name: None, about: profile.about, picture_url: profile.picture.map(|_| picture_url(phone)) })
    }

    async fn own_profile(&self, account: &AccountId) -> Result<Profile, NetworkError> {
        let state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        let profile = state.profiles.get(account).cloned().unwrap_or_default();
        let picture_url = profile.picture.map(|_| picture_url(account));
        Ok(Profile { name: profile.push_name, about: profile.about, picture_url })
    }

    async fn set_profile(&self, account: &AccountId, change: ProfileChange) -> Result<(), NetworkError> {
        let mut state = self.locked();
        if !state.connected.contains(account) {
            return Err(NetworkError::Disconnected);
        }
        let profile = state.profiles.entry(account.clone()).or_default();
        profile.push_name = change.push_name.or(profile.push_name.take());
        profile.about = change.about.or(profile.about.take());
        profile.picture = change.picture.or(profile.picture.take());
        Ok(())
    }

    async fn check_numbers(
        &self,
        account: &AccountId,
        phones: &[PhoneNumber],
    ) -> Result<Vec<NumberCheck>, NetworkError> {
        self.signal(account, Signal::NumbersChecked { count: phones.len() })?;
        let business = self.locked().business.clone();
        Ok(phones
            .iter()
            .map(|phone| NumberCheck::new(phone, !is_unregistered(phone), business.contains(phone)))
            .collect())
    }

    async fn mark_read(
        &self,
        account: &AccountId,
        chat: &ChatId,
        messages: &[(NetworkMessageId, PhoneNumber)],
    ) -> Result<(), NetworkError> {
        let messages = messages
            .iter()
            .map(|(id, sender)| ReadMessage { message_id: id.clone(), sender: sender.to_string() })
            .collect();
        self.signal(account, Signal::Read { to: chat.to_string(), messages })
    }

    async fn send_presence(&self, account: &AccountId, available: bool) -> Result<(), NetworkError> {
        self.signal(account, Signal::Presence { available })
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NetworkEvent>> {
        self.events.take()
    }
}
