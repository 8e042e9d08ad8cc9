//! `whatsapp`: the real network, on whatsapp-rust. One client per linked device, each
//! with its Signal and app state in mxgate's own database (`store`); whatsapp-rust keeps
//! the connection alive and reconnects with backoff, this module follows its events.

mod accounts;
pub mod convert;
mod groups;
mod http;
mod messages;
mod session;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use whatsapp_rust::Jid;
use whatsapp_rust::features::{ChatStateType, PresenceStatus};
use whatsapp_rust::http::{HttpClient, HttpRequest};
use whatsapp_rust::send::{EditOptions, RevokeType, SendOptions};
use whatsapp_rust::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;

use self::session::{Session, Started, person};
use self::store::SqlStore;
use super::{
    AccountId, ConnectionState, Contact, EventChannel, GroupInfo, GroupSettings, Inbox, LoginEvent, LoginMethod,
    LoginStream, Media, MemberAction, MemberResult, Network, NetworkError, NetworkEvent, NetworkMessageId, NumberCheck,
    Outgoing, Profile, ProfileChange, Target, Typing,
};
use crate::config::WhatsAppConfig;
use crate::db::Db;
use crate::ids::{ChatId, GroupInvite, PhoneNumber};

/// How long a pairing-code login waits for the code to be typed on the phone.
const PAIR_CODE_LIFETIME: Duration = Duration::from_secs(200);

/// Profile pictures larger than this are not bridged.
const MAX_AVATAR_BYTES: usize = 5 * 1024 * 1024;

pub struct WhatsAppNetwork {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    inbox: Inbox,
    config: WhatsAppConfig,
    /// `MXGATE_REJECT_CALLS`: turn down every call as it rings.
    reject_calls: bool,
    sessions: std::sync::Mutex<HashMap<AccountId, Arc<Session>>>,
    events: EventChannel,
    /// Where pictures are fetched from: as whatsapp-rust fetches media.
    http: http::Rerouted,
}

impl WhatsAppNetwork {
    pub fn new(db: Db, config: WhatsAppConfig, reject_calls: bool, inbox: Inbox) -> Self {
        let http = http::Rerouted::new(config.http_url.as_deref());
        let (sessions, events) = (Default::default(), EventChannel::default());
        let inner = Inner { db, inbox, config, reject_calls, sessions, events, http };
        Self { inner: Arc::new(inner) }
    }

    fn session(&self, account: &AccountId) -> Result<Arc<Session>, NetworkError> {
        let session = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(account).cloned();
        session.filter(|s| s.state() == ConnectionState::Connected).ok_or(NetworkError::Disconnected)
    }
}

fn refused(error: impl std::fmt::Display) -> NetworkError {
    NetworkError::Refused(error.to_string())
}

fn storage(error: impl std::fmt::Display) -> NetworkError {
    NetworkError::Refused(format!("the WhatsApp session store failed: {error}"))
}

impl Inner {
    /// Follows a new client from its first code to a linked account, then keeps it as
    /// that account's session. A login abandoned or failed leaves no store behind.
    async fn run_login(
        self: Arc<Self>,
        store_key: String,
        started: Started,
        by_code: bool,
        tx: mpsc::Sender<LoginEvent>,
    ) {
        let Started { handle, mut events } = started;
        let mut paired: Option<AccountId> = None;
        // QR logins end when their codes run out; a pairing code is valid about three minutes.
        let expiry = tokio::time::sleep(if by_code { PAIR_CODE_LIFETIME } else { Duration::MAX });
        tokio::pin!(expiry);
        let outcome = loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = tx.closed() => break None,
                () = &mut expiry, if paired.is_none() => break Some(LoginEvent::Timeout),
            };
            let Some(event) = event else { break Some(LoginEvent::Failed("the WhatsApp client stopped".into())) };
            let step = match &*event {
                // A pairing-code login still receives QR refs; its user waits for the code only.
                Event::PairingQrCode(_) if by_code => continue,
                Event::PairingQrCode(qr) => LoginEvent::Qr(qr.code.clone()),
                Event::PairingCode(code) => LoginEvent::PairCode(code.code.clone()),
                Event::PairingQrCodesExhausted(exhausted) if by_code && !exhausted.disconnected => continue,
                Event::PairingQrCodesExhausted(_) => break Some(LoginEvent::Timeout),
                Event::PairingCodeError(error) => break Some(LoginEvent::Failed(format!("{error:?}"))),
                Event::PairError(error) => break Some(LoginEvent::Failed(error.error.clone())),
                Event::ClientOutdated(_) => {
                    break Some(LoginEvent::Failed("WhatsApp says this client version is outdated".into()));
                }
                Event::LoggedOut(_) => break Some(LoginEvent::Failed("WhatsApp refused the link".into())),
                Event::PairSuccess(success) => match success.id.user.parse::<AccountId>() {
                    Ok(account) => {
                        paired = Some(account);
                        continue;
                    }
                    Err(error) => break Some(LoginEvent::Failed(format!("WhatsApp sent an unusable number: {error}"))),
                },
                // After pairing, the client reconnects and logs in; only then is the device usable.
                Event::Connected(_) => match paired.take() {
                    Some(account) => {
                        match self.adopt(&account, &store_key, handle).await {
                            Ok(session) => {
                                let _ = tx.send(LoginEvent::Success(account)).await;
                                tokio::spawn(self.clone().run_session(session, events));
                            }
                            Err(error) => {
                                let _ = tx.send(LoginEvent::Failed(error.to_string())).await;
                            }
                        }
                        return;
                    }
                    None => continue,
                },
                _ => continue,
            };
            if tx.send(step).await.is_err() {
                break None;
            }
        };
        handle.shutdown().await;
        if let Err(error) = SqlStore::new(self.db.clone(), &store_key).delete_device().await {
            tracing::warn!(error = %error, "an abandoned login's store was not deleted");
        }
        if let Some(outcome) = outcome {
            let _ = tx.send(outcome).await;
        }
    }

    /// Makes a freshly paired client the session of `account`, replacing an older one.
    async fn adopt(
        &self,
        account: &AccountId,
        store_key: &str,
        handle: whatsapp_rust::bot::BotHandle,
    ) -> Result<Arc<Session>, NetworkError> {
        let replaced = accounts::link(&self.db, account.as_str(), store_key).await.map_err(storage)?;
        let session = Arc::new(Session::new(account.clone(), store_key.to_owned(), handle, ConnectionState::Connected));
        let previous = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(account.clone(), session.clone());
        // The older companion is mxgate's own and superseded: it leaves the phone's list of
        // linked devices, so contacts stop encrypting to it.
        if let Some(previous) = previous {
            previous.close(true).await;
        }
        if let Some(old_key) = replaced {
            SqlStore::new(self.db.clone(), &old_key).delete_device().await.map_err(storage)?;
        }
        tracing::info!(device = %account, "WhatsApp device linked");
        Ok(session)
    }

    /// Acts on one linked device's events, in the order the client emitted them.
    async fn run_session(self: Arc<Self>, session: Arc<Session>, mut events: mpsc::UnboundedReceiver<Arc<Event>>) {
        while let Some(event) = events.recv().await {
            let account = &session.account;
            match &*event {
                Event::Connected(_) => {
                    tracing::info!(device = %account, "connected to WhatsApp");
                    session.set_state(ConnectionState::Connected);
                    let store = SqlStore::new(self.db.clone(), &session.store_key);
                    let (inbox, client, account) = (self.inbox.clone(), session.client.clone(), account.clone());
                    tokio::spawn(async move { messages::commit_buffered(&store, &inbox, &client, &account).await });
                }
                Event::Disconnected(_) => {
                    tracing::info!(device = %account, "disconnected from WhatsApp; reconnecting");
                    session.set_state(ConnectionState::Connecting);
                }
                Event::StreamReplaced(_) => {
                    session.set_state(ConnectionState::Error("another client took over this device's session".into()))
                }
                Event::TemporaryBan(ban) => {
                    session.set_state(ConnectionState::Error(format!("WhatsApp banned the account for now: {ban:?}")));
                }
                Event::ConnectFailure(failure) => {
                    session.set_state(ConnectionState::Error(format!("WhatsApp refused the connection: {failure:?}")));
                }
                // A store without credentials starts pairing: the phone removed this device.
                Event::LoggedOut(_) | Event::PairingQrCode(_) if !session.is_closing() => {
                    self.logged_out_by_network(&session).await;
                    return;
                }
                Event::Messages(batch) => {
                    for message in batch.iter() {
                        self.received(&session, message);
                    }
                }
                Event::Receipt(receipt) => self.receipt(&session, receipt),
                Event::IncomingCall(call) => self.called(&session, call).await,
                Event::PushNameUpdate(update) => self.renamed(&update.jid, Some(update.new_push_name.clone())),
                // The name the account's owner saved for the contact on the phone wins over push names.
                Event::ContactUpdate(update) => {
                    let action = &update.action;
                    self.renamed(&update.jid, action.full_name.clone().or_else(|| action.first_name.clone()));
                }
                Event::GroupUpdate(update) => self.group_changed(&session, update).await,
                Event::PictureUpdate(update) => self.picture_changed(&session, update).await,
                _ => {}
            }
        }
    }

    fn renamed(&self, jid: &Jid, name: Option<String>) {
        let (Some(name), Ok(phone)) = (name.filter(|n| !n.is_empty()), jid.user.parse::<PhoneNumber>()) else { return };
        if jid.is_pn() {
            let _ = self.events.send(NetworkEvent::Contact(Contact { phone, name: Some(name), avatar: None }));
        }
    }

    async fn logged_out_by_network(&self, session: &Arc<Session>) {
        let account = session.account.clone();
        tracing::warn!(device = %account, "WhatsApp logged the device out");
        session.set_state(ConnectionState::LoggedOut);
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&account);
        session.close(false).await;
        if let Err(error) = self.forget(&account, &session.store_key).await {
            tracing::error!(device = %account, error = %error, "a logged-out device's store was not deleted");
        }
        let _ = self.events.send(NetworkEvent::LoggedOut(account));
    }

    async fn forget(&self, account: &AccountId, store_key: &str) -> Result<(), NetworkError> {
        SqlStore::new(self.db.clone(), store_key).delete_device().await.map_err(storage)?;
        accounts::unlink(&self.db, account.as_str()).await.map_err(storage)
    }

    /// `jid`'s About (from a usync query) and the URL of its picture.
    async fn profile_of(&self, client: &whatsapp_rust::Client, jid: &Jid) -> Result<Profile, NetworkError> {
        let contacts = client.contacts();
        let info = contacts.get_user_info(std::slice::from_ref(jid)).await.map_err(refused)?;
        let about = info.into_values().find_map(|i| i.status).filter(|s| !s.is_empty());
        let picture = contacts.get_profile_picture(jid, false).await.map_err(refused)?;
        Ok(Profile { name: None, about, picture_url: picture.map(|p| p.url) })
    }

    /// The picture behind a WhatsApp profile or group picture, if there is one and it loads.
    async fn picture(&self, client: &whatsapp_rust::Client, jid: &Jid) -> Option<Media> {
        let picture = client.contacts().get_profile_picture(jid, false).await.ok()??;
        let response = self.http.execute(HttpRequest::get(picture.url)).await.ok()?;
        let data = Some(response.body).filter(|_| (200..300).contains(&response.status_code))?;
        let mime_type = image::guess_format(&data).map_or("image/jpeg", |f| f.to_mime_type()).to_owned();
        (data.len() <= MAX_AVATAR_BYTES).then(|| Media::picture(data, mime_type))
    }
}

fn group_jid(chat: &ChatId) -> Result<Jid, NetworkError> {
    match chat {
        ChatId::Group(jid) => jid.parse().map_err(|_| refused(format!("{jid} is not a group id"))),
        ChatId::Direct(_) => Err(refused(format!("{chat} is not a group"))),
    }
}

/// The key of the message a reaction is on. In a group, someone else's message names its
/// sender, which the connector knows of the messages it saw recently.
fn reaction_key(session: &Session, chat: &ChatId, to: &Jid, target: &Target) -> wa::MessageKey {
    let participant = match (matches!(chat, ChatId::Group(_)), target.from_me) {
        (true, false) => session.recalled(&target.id).map(|(sender, _)| sender.to_string()),
        _ => None,
    };
    wa::MessageKey {
        remote_jid: Some(to.to_string()),
        from_me: Some(target.from_me),
        id: Some(target.id.clone()),
        participant,
    }
}

fn chat_jid(chat: &ChatId) -> Result<Jid, NetworkError> {
    match chat {
        ChatId::Direct(phone) => Ok(person(phone)),
        ChatId::Group(_) => group_jid(chat),
    }
}

#[async_trait]
impl Network for WhatsAppNetwork {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    async fn start_login(&self, method: LoginMethod) -> Result<LoginStream, NetworkError> {
        let store_key = uuid::Uuid::new_v4().to_string();
        let pair_code = match &method {
            LoginMethod::Qr => None,
            LoginMethod::PairCode(phone) => Some(phone),
        };
        let inner = &self.inner;
        let started = session::start(&inner.db, &inner.config, &store_key, pair_code, inner.inbox.clone()).await?;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(self.inner.clone().run_login(store_key, started, pair_code.is_some(), tx));
        Ok(rx)
    }

    async fn connect(&self, account: &AccountId) -> Result<(), NetworkError> {
        let inner = &self.inner;
        let store_key = accounts::store_key(&inner.db, account.as_str())
            .await
            .map_err(storage)?
            .ok_or_else(|| refused(format!("no WhatsApp session is stored for {account}")))?;
        let Started { handle, events } =
            session::start(&inner.db, &inner.config, &store_key, None, inner.inbox.clone()).await?;
        let session = Arc::new(Session::new(account.clone(), store_key, handle, ConnectionState::Connecting));
        inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(account.clone(), session.clone());
        tokio::spawn(inner.clone().run_session(session.clone(), events));
        let timeout = Duration::from_millis(inner.config.connect_timeout_ms);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            session.report_slow_connect(timeout);
        });
        Ok(())
    }

    fn state(&self, account: &AccountId) -> ConnectionState {
        let sessions = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(account).map_or_else(
            || ConnectionState::Error("no WhatsApp client runs for this device; see the log".into()),
            |s| s.state(),
        )
    }

    async fn logout(&self, account: &AccountId) -> Result<(), NetworkError> {
        let session = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(account);
        match session {
            Some(session) => {
                session.close(true).await;
                self.inner.forget(account, &session.store_key).await
            }
            None => match accounts::store_key(&self.inner.db, account.as_str()).await.map_err(storage)? {
                Some(store_key) => self.inner.forget(account, &store_key).await,
                None => Ok(()),
            },
        }
    }

    async fn disconnect(&self, account: &AccountId) {
        let session = self.inner.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(account);
        if let Some(session) = session {
            session.close(false).await;
        }
    }

    async fn resolve_contact(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Contact, NetworkError> {
        let session = self.session(account)?;
        let jid = person(phone);
        let found = session.client.contacts().is_on_whatsapp(std::slice::from_ref(&jid)).await.map_err(refused)?;
        if !found.iter().any(|r| r.is_registered) {
            return Err(NetworkError::NotOnNetwork(phone.clone()));
        }
        let avatar = self.inner.picture(&session.client, &jid).await;
        Ok(Contact { phone: phone.clone(), name: None, avatar })
    }

    async fn group_info(&self, account: &AccountId, chat: &ChatId) -> Result<GroupInfo, NetworkError> {
        let session = self.session(account)?;
        self.inner.group_info(&session, chat).await
    }

    async fn join_group(&self, account: &AccountId, invite: &GroupInvite) -> Result<GroupInfo, NetworkError> {
        let session = self.session(account)?;
        let groups = session.client.groups();
        let info = groups.get_invite_info(invite.code()).await.map_err(|_| NetworkError::InvalidInvite)?;
        let me = person(account);
        let member = info.participants.iter().any(|p| p.jid == me || p.phone_number.as_ref() == Some(&me));
        if !member {
            match groups.join_with_invite_code(invite.code()).await.map_err(refused)? {
                whatsapp_rust::JoinGroupResult::Joined(_) => {}
                whatsapp_rust::JoinGroupResult::PendingApproval(_) => {
                    return Err(refused("the group's admins must approve the request to join, which was sent"));
                }
            }
        }
        let chat = ChatId::Group(info.id.to_string());
        self.group_info(account, &chat).await
    }

    async fn groups(&self, account: &AccountId) -> Result<Vec<GroupInfo>, NetworkError> {
        groups::groups(&*self.session(account)?).await
    }

    async fn create_group(
        &self,
        account: &AccountId,
        subject: &str,
        members: &[PhoneNumber],
    ) -> Result<GroupInfo, NetworkError> {
        groups::create(&*self.session(account)?, subject, members).await
    }

    async fn update_group(
        &self,
        account: &AccountId,
        chat: &ChatId,
        settings: GroupSettings,
    ) -> Result<(), NetworkError> {
        groups::update(&*self.session(account)?, chat, settings).await
    }

    async fn change_members(
        &self,
        account: &AccountId,
        chat: &ChatId,
        action: MemberAction,
        phones: &[PhoneNumber],
    ) -> Result<Vec<MemberResult>, NetworkError> {
        groups::change_members(&*self.session(account)?, chat, action, phones).await
    }

    async fn invite_link(&self, account: &AccountId, chat: &ChatId, reset: bool) -> Result<String, NetworkError> {
        groups::invite_link(&*self.session(account)?, chat, reset).await
    }

    async fn leave_group(&self, account: &AccountId, chat: &ChatId) -> Result<(), NetworkError> {
        groups::leave(&*self.session(account)?, chat).await
    }

    async fn send(
        &self,
        account: &AccountId,
        chat: &ChatId,
        id: &NetworkMessageId,
        message: Outgoing,
    ) -> Result<(), NetworkError> {
        let session = self.session(account)?;
        let to = chat_jid(chat)?;
        session.pace(Duration::from_millis(self.inner.config.send_interval_ms)).await;
        let client = &session.client;
        match message {
            Outgoing::Message(message) => {
                let message = Arc::new(self.inner.outgoing(&session, chat, &message).await?);
                // Kept before the send: a vote may come back before the send returns.
                if let Some(poll) = convert::poll_of(&message, person(account).to_string()) {
                    self.inner.store(&session).remember_poll(id, &poll).await.map_err(storage)?;
                }
                let options = SendOptions::default().with_message_id(id.clone());
                client.send_message_with_options(to, message.as_ref().clone(), options).await.map_err(refused)?;
                session.remember(id, person(account), message);
            }
            // Under an id of the library's: a vote sent twice is still the voter's one choice.
            Outgoing::PollVote { target, options } => {
                let poll = self.inner.store(&session).poll(&target.id).await.map_err(storage)?;
                let poll = poll.ok_or_else(|| refused("the poll was sent before this device was linked"))?;
                let creator: Jid = poll.creator.parse().map_err(refused)?;
                client.polls().vote(to, &target.id, &creator, &poll.secret, &options).await.map_err(refused)?;
            }
            Outgoing::Reaction { target, emoji } => {
                let key = reaction_key(&session, chat, &to, &target);
                let now = chrono::Utc::now().timestamp_millis();
                let reaction = whatsapp_rust::wacore::proto_helpers::build_reaction_message(key, emoji, now);
                let options = SendOptions::default().with_message_id(id.clone());
                client.send_message_with_options(to, reaction, options).await.map_err(refused)?;
            }
            Outgoing::Edit { target, text } => {
                let text = wa::Message { conversation: Some(text), ..Default::default() };
                // Under our id, so a retry is the same edit to its recipients.
                let options = EditOptions::default().with_stanza_id(id.clone());
                client.edit_message_with_options(to, target, text, options).await.map_err(refused)?;
            }
            // A revoke goes under an id of the library's: revoking twice is still one deletion.
            Outgoing::Delete { target } => {
                client.revoke_message(to, target, RevokeType::Sender).await.map_err(refused)?;
            }
        }
        Ok(())
    }

    async fn send_typing(&self, account: &AccountId, chat: &ChatId, typing: Typing) -> Result<(), NetworkError> {
        let session = self.session(account)?;
        let state = match typing {
            Typing::Composing => ChatStateType::Composing,
            Typing::Recording => ChatStateType::Recording,
            Typing::Paused => ChatStateType::Paused,
        };
        session.client.chatstate().send(&chat_jid(chat)?, state).await.map_err(refused)
    }

    async fn mark_read(
        &self,
        account: &AccountId,
        chat: &ChatId,
        messages: &[(NetworkMessageId, PhoneNumber)],
    ) -> Result<(), NetworkError> {
        let session = self.session(account)?;
        let to = chat_jid(chat)?;
        // A direct chat's receipt goes to the chat; a group's names each message's sender.
        let mut by_sender: HashMap<Option<&PhoneNumber>, Vec<&str>> = HashMap::new();
        for (id, sender) in messages {
            by_sender.entry(chat.is_group().then_some(sender)).or_default().push(id);
        }
        for (sender, ids) in by_sender {
            let sender = sender.map(person);
            session.client.mark_as_read(&to, sender.as_ref(), &ids).await.map_err(refused)?;
        }
        Ok(())
    }

    async fn check_numbers(
        &self,
        account: &AccountId,
        phones: &[PhoneNumber],
    ) -> Result<Vec<NumberCheck>, NetworkError> {
        let session = self.session(account)?;
        let jids: Vec<Jid> = phones.iter().map(person).collect();
        let found = session.client.contacts().is_on_whatsapp(&jids).await.map_err(refused)?;
        Ok(phones
            .iter()
            .map(|phone| {
                // WhatsApp answers by number, and may answer with the LID first.
                let answer = found.iter().find(|r| {
                    [Some(&r.jid), r.pn_jid.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|j| j.is_pn() && j.user == phone.as_str())
                });
                NumberCheck::new(phone, answer.is_some_and(|r| r.is_registered), answer.is_some_and(|r| r.is_business))
            })
            .collect())
    }

    async fn contact_profile(&self, account: &AccountId, phone: &PhoneNumber) -> Result<Profile, NetworkError> {
        let session = self.session(account)?;
        self.inner.profile_of(&session.client, &person(phone)).await
    }

    async fn own_profile(&self, account: &AccountId) -> Result<Profile, NetworkError> {
        let session = self.session(account)?;
        let mut profile = self.inner.profile_of(&session.client, &person(account)).await?;
        let name = session.client.persistence_manager().get_device_snapshot().push_name.clone();
        profile.name = Some(name).filter(|n| !n.is_empty());
        Ok(profile)
    }

    async fn set_profile(&self, account: &AccountId, change: ProfileChange) -> Result<(), NetworkError> {
        let session = self.session(account)?;
        let profile = session.client.profile();
        if let Some(name) = &change.push_name {
            profile.set_push_name(name).await.map_err(refused)?;
        }
        if let Some(about) = &change.about {
            profile.set_status_text(about).await.map_err(refused)?;
        }
        if let Some(picture) = change.picture {
            profile.set_profile_picture(picture).await.map_err(refused)?;
        }
        Ok(())
    }

    async fn send_presence(&self, account: &AccountId, available: bool) -> Result<(), NetworkError> {
        let session = self.session(account)?;
        let status = if available { PresenceStatus::Available } else { PresenceStatus::Unavailable };
        session.client.presence().set(status).await.map_err(refused)
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<NetworkEvent>> {
        self.inner.events.take()
    }
}
