//! A session's messages and receipts ↔ the bridge's network-neutral types; `convert`
//! does the protobuf work, this part adds what needs the client: downloads, uploads and
//! the quoted message of a reply.

use std::sync::Arc;

use whatsapp_rust::types::events::{InboundMessage, Receipt as WaReceipt};
use whatsapp_rust::types::message::MessageSource;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::wacore::poll::PollVoteCiphertext;
use whatsapp_rust::wacore::store::error::StoreError;
use whatsapp_rust::wacore::types::call::{CallAction, IncomingCall};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{Client, InboundDurabilityHook, Jid, Server};

use super::convert::{self, Quote, Uploaded};
use super::session::{Session, person};
use super::store::SqlStore;
use super::{Inner, NetworkError};
use crate::ids::{ChatId, PhoneNumber};
use crate::network::{
    AccountId, Inbox, IncomingBody, IncomingMessage, Media, MediaKind, NetworkEvent, OutgoingMessage, Receipt,
    ReceiptKind,
};

/// The phone number behind a JID; WhatsApp may address people by LID, with the number
/// beside it.
pub(super) fn phone_of(jid: &Jid, alt: Option<&Jid>) -> Option<PhoneNumber> {
    [Some(jid), alt].into_iter().flatten().filter(|j| j.is_pn()).find_map(|j| j.user.parse().ok())
}

fn chat_of(chat: &Jid, is_group: bool, sender: &PhoneNumber) -> ChatId {
    if is_group { ChatId::Group(chat.to_string()) } else { ChatId::Direct(sender.clone()) }
}

/// Commits every batch whatsapp-rust decrypted to the inbox before whatsapp-rust acks
/// it to WhatsApp: until the commit succeeds the server keeps the messages and
/// redelivers them on the next connect, so none is lost between the two.
pub struct CommitToInbox(pub Inbox, pub SqlStore);

#[async_trait::async_trait]
impl InboundDurabilityHook for CommitToInbox {
    async fn on_messages(&self, client: Arc<Client>, batch: &[InboundMessage]) -> anyhow::Result<()> {
        let own = client.persistence_manager().get_device_snapshot().pn.clone();
        let Some(account) = own.and_then(|jid| jid.user.parse::<AccountId>().ok()) else {
            anyhow::bail!("the client has no phone number yet; the batch stays unacked");
        };
        let mut messages = Vec::with_capacity(batch.len());
        for inbound in batch {
            messages.extend(bridged(&client, &self.1, &account, inbound).await?);
        }
        self.0.commit(&messages).await?;
        Ok(())
    }
}

/// What the bridge makes of one received message, its file downloaded; `None` for what
/// it does not show. Fails only when the store does: the batch then stays unacked.
async fn bridged(
    client: &Client,
    store: &SqlStore,
    account: &AccountId,
    inbound: &InboundMessage,
) -> Result<Option<IncomingMessage>, StoreError> {
    let info = &inbound.info;
    converted(client, store, account, &inbound.message, &info.source, &info.push_name, &info.id).await
}

async fn converted(
    client: &Client,
    store: &SqlStore,
    account: &AccountId,
    message: &wa::Message,
    source: &MessageSource,
    push_name: &str,
    id: &str,
) -> Result<Option<IncomingMessage>, StoreError> {
    let Some(sender) = phone_of(&source.sender, source.sender_alt.as_ref()) else {
        tracing::debug!(device = %account, "message from an address without a number skipped");
        return Ok(None);
    };
    // What the account wrote on its phone (or another linked device) is in the chat with
    // the recipient; the sender is the account itself.
    let chat = match (source.is_from_me, source.is_group) {
        (_, true) => ChatId::Group(source.chat.to_string()),
        (false, false) => ChatId::Direct(sender.clone()),
        (true, false) => {
            let recipient = [Some(&source.chat), source.recipient.as_ref(), source.recipient_alt.as_ref()];
            let Some(recipient) =
                recipient.into_iter().flatten().filter(|j| j.is_pn()).find_map(|j| j.user.parse().ok())
            else {
                tracing::debug!(device = %account, "own message to an address without a number skipped");
                return Ok(None);
            };
            ChatId::Direct(recipient)
        }
    };
    let author = source.sender.to_non_ad();
    if let Some(poll) = convert::poll_of(message, author.to_string()) {
        store.remember_poll(id, &poll).await?;
    }
    let body = match convert::vote_of(message) {
        Some((poll_id, ciphertext)) => match vote(client, store, poll_id, ciphertext, &author).await? {
            Some(body) => body,
            None => return Ok(None),
        },
        None => match convert::incoming(message) {
            Some(converted) => download(client, account, id, converted).await,
            None => {
                tracing::debug!(device = %account, message = %id, "message kind not bridged");
                return Ok(None);
            }
        },
    };
    Ok(Some(IncomingMessage {
        account: account.clone(),
        chat,
        sender,
        sender_name: Some(push_name.to_owned()).filter(|n| !n.is_empty() && !source.is_from_me),
        id: id.to_owned(),
        body,
        from_me: source.is_from_me,
    }))
}

/// `voter`'s vote on the poll `poll_id`, opened with the poll's secret; `None` for a
/// poll the device never saw (sent before it was linked) or a vote that does not open.
async fn vote(
    client: &Client,
    store: &SqlStore,
    poll_id: &str,
    ciphertext: PollVoteCiphertext<'_>,
    voter: &Jid,
) -> Result<Option<IncomingBody>, StoreError> {
    let Some(poll) = store.poll(poll_id).await? else {
        tracing::debug!(poll = poll_id, "a vote on a poll this device never saw");
        return Ok(None);
    };
    let Ok(creator) = poll.creator.parse::<Jid>() else { return Ok(None) };
    match client.polls().decrypt_vote(ciphertext, &poll.secret, poll_id, &creator, voter).await {
        Ok(hashes) => {
            Ok(Some(IncomingBody::PollVote { target: poll_id.to_owned(), options: convert::chosen(&poll, &hashes) }))
        }
        Err(error) => {
            tracing::warn!(poll = poll_id, error = %error, "a vote that does not open with its poll's secret");
            Ok(None)
        }
    }
}

/// `converted`'s body, its file downloaded; a file WhatsApp no longer has leaves a note.
async fn download(client: &Client, account: &AccountId, id: &str, converted: convert::Incoming) -> IncomingBody {
    match &converted.download {
        None => converted.body,
        Some(file) => match client.download(file.downloadable()).await {
            Ok(data) => converted.downloaded(data),
            Err(error) => {
                tracing::warn!(device = %account, message = %id, error = %error, "media download failed");
                IncomingBody::Message {
                    text: Some("[a file that could not be downloaded from WhatsApp]".into()),
                    media: None,
                    reply_to: None,
                    structured: None,
                }
            }
        },
    }
}

/// Commits what whatsapp-rust buffered for the inbox but never saw committed: a process
/// that died while the hook ran leaves the message in `wa_pending_inbound`, and at the next
/// login whatsapp-rust 0.7 may ack its redelivery without running the hook again. Run at
/// each login; the inbox keeps one copy of whatever is committed twice.
pub(super) async fn commit_buffered(store: &SqlStore, inbox: &Inbox, client: &Client, account: &AccountId) {
    let rows = match store.buffered_inbound().await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(device = %account, error = %error, "cannot read buffered messages");
            return;
        }
    };
    let mut messages = Vec::new();
    for row in &rows {
        let (Ok(chat), Ok(sender), Ok(message)) = (
            row.chat.parse::<Jid>(),
            row.sender.parse::<Jid>(),
            whatsapp_rust::waproto::codec::message_decode(&row.message),
        ) else {
            tracing::warn!(device = %account, message = %row.id, "a buffered message cannot be read; skipped");
            continue;
        };
        let is_from_me = sender.is_pn() && sender.user.as_str() == account.as_str();
        let source =
            MessageSource { is_group: chat.server == Server::Group, chat, sender, is_from_me, ..Default::default() };
        match converted(client, store, account, &message, &source, "", &row.id).await {
            Ok(message) => messages.extend(message),
            Err(error) => {
                tracing::warn!(device = %account, error = %error, "buffered messages not read; next login retries");
                return;
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    match inbox.commit(&messages).await {
        Ok(()) => {
            tracing::info!(device = %account, count = messages.len(), "buffered messages committed to the inbox");
            if let Err(error) = store.forget_buffered_inbound(&rows).await {
                tracing::warn!(device = %account, error = %error, "committed buffered messages not cleared");
            }
        }
        Err(error) => tracing::warn!(device = %account, error = %error, "buffered messages not committed yet"),
    }
}

impl Inner {
    pub(super) fn store(&self, session: &Session) -> SqlStore {
        SqlStore::new(self.db.clone(), &session.store_key)
    }

    /// A call offered to the device: turned down as it rings when `reject_calls`, and
    /// told in its chat through the inbox, as a message would be. Group calls and the
    /// rest of a call's signalling are not bridged.
    pub(super) async fn called(&self, session: &Session, call: &IncomingCall) {
        let CallAction::Offer { call_id, is_video, caller_pn, group_jid: None, .. } = &call.action else { return };
        let Some(caller) = phone_of(&call.from, caller_pn.as_ref()) else { return };
        let rejected = self.reject_calls
            && match session.client.voip().reject(call).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(device = %session.account, error = %error, "a call could not be turned down");
                    false
                }
            };
        let told = IncomingMessage {
            account: session.account.clone(),
            chat: ChatId::Direct(caller.clone()),
            sender: caller,
            sender_name: call.notify.clone(),
            id: call_id.clone(),
            body: IncomingBody::Call { video: *is_video, rejected },
            from_me: false,
        };
        // Not acked to WhatsApp after the commit, as messages are: a call is an event
        // of the moment, and one lost in a crash is not replayed by the server either.
        if let Err(error) = self.inbox.commit(std::slice::from_ref(&told)).await {
            tracing::warn!(device = %session.account, error = %error, "a call was not recorded");
        }
    }

    /// Keeps a received message for quoting; the inbox has it already (see [`CommitToInbox`]).
    pub(super) fn received(&self, session: &Session, inbound: &InboundMessage) {
        // A quote names the person, not the device they wrote from.
        session.remember(&inbound.info.id, inbound.info.source.sender.to_non_ad(), inbound.message.clone());
    }

    pub(super) fn receipt(&self, session: &Session, receipt: &WaReceipt) {
        tracing::debug!(device = %session.account, kind = ?receipt.r#type, source = ?receipt.source, "receipt");
        let kind = match receipt.r#type {
            // A phone that is not in the foreground acknowledges delivery as `inactive`.
            ReceiptType::Delivered | ReceiptType::Inactive => ReceiptKind::Delivered,
            ReceiptType::Read | ReceiptType::Played => ReceiptKind::Read,
            _ => return,
        };
        let source = &receipt.source;
        if source.is_from_me {
            return;
        }
        let Some(reader) = phone_of(&source.sender, source.sender_alt.as_ref()) else { return };
        let chat = chat_of(&source.chat, source.is_group, &reader);
        let message_ids = receipt.message_ids.iter().map(ToString::to_string).collect();
        let receipt = Receipt { account: session.account.clone(), chat, reader, message_ids, kind };
        let _ = self.events.send(NetworkEvent::Receipt(receipt));
    }

    /// `message` as WhatsApp carries it, its file uploaded and its quote filled in.
    pub(super) async fn outgoing(
        &self,
        session: &Session,
        chat: &ChatId,
        message: &OutgoingMessage,
    ) -> Result<wa::Message, NetworkError> {
        let uploaded = match &message.media {
            Some(media) => Some(upload(session, media).await?),
            None => None,
        };
        let recalled = message.reply_to.as_ref().map(|id| (id, session.recalled(id)));
        let quoted = recalled.as_ref().map(|(id, known)| match known {
            Some((sender, message)) => (id.as_str(), sender.to_string(), Some(message.as_ref())),
            // A message from before this process started: in a direct chat it was most
            // likely the contact's.
            None => (id.as_str(), quote_fallback_sender(chat), None),
        });
        let quote = quoted.as_ref().map(|(id, sender, message)| Quote { id, sender, message: *message });
        convert::outgoing(message, uploaded.as_ref(), quote)
    }
}

fn quote_fallback_sender(chat: &ChatId) -> String {
    match chat {
        ChatId::Direct(phone) => person(phone).to_string(),
        ChatId::Group(jid) => jid.clone(),
    }
}

async fn upload(session: &Session, media: &Media) -> Result<Uploaded, NetworkError> {
    let response = session
        .client
        .upload(media.data.clone(), convert::media_type(media.kind), UploadOptions::default())
        .await
        .map_err(|e| NetworkError::Refused(format!("WhatsApp did not take the file: {e}")))?;
    Ok(Uploaded::from(response))
}

impl Media {
    /// A profile or group picture.
    pub fn picture(data: Vec<u8>, mime_type: String) -> Self {
        let extension = mime_type.rsplit('/').next().unwrap_or("jpeg").to_owned();
        Self::new(MediaKind::Image, data, mime_type, format!("picture.{extension}"))
    }
}

/// The messages a session saw lately, so that a reply can quote one with its sender.
#[derive(Default)]
pub struct Recent {
    order: std::collections::VecDeque<String>,
    messages: std::collections::HashMap<String, (Jid, Arc<wa::Message>)>,
}

/// Enough for replies to recent messages; older quotes fall back to the chat as sender.
const RECENT_MESSAGES: usize = 1_000;

impl Recent {
    pub fn remember(&mut self, id: &str, sender: Jid, message: Arc<wa::Message>) {
        if self.messages.insert(id.to_owned(), (sender, message)).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > RECENT_MESSAGES {
            if let Some(oldest) = self.order.pop_front() {
                self.messages.remove(&oldest);
            }
        }
    }

    pub fn recall(&self, id: &str) -> Option<(Jid, Arc<wa::Message>)> {
        self.messages.get(id).cloned()
    }
}
