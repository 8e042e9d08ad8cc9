//! Network → Matrix: every message a linked device receives becomes an event sent by
//! the sender's puppet in the chat's portal; reactions, edits and deletions act on the
//! events earlier messages became, and receipts become read receipts and status events.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use ruma::{OwnedRoomId, OwnedUserId};

use crate::content::{self, MatrixEvent};
use crate::core::{BridgeError, Core, DeviceChange};
use crate::ids::ChatId;
use crate::matrix::MatrixError;
use crate::network::{
    AccountId, ConnectionState, Contact, IncomingBody, IncomingMessage, NetworkEvent, Receipt, ReceiptKind, Structured,
};
use crate::portal::{PortalInfo, as_member, ensure_member, ensure_portal, room_id};
use crate::puppet::ensure_puppet;
use crate::store::{self, MessageRow, ReactionKey};

/// Relays in parallel across chats, in order within one: events of a chat always go
/// to the same one of `RELAY_SHARDS` workers.
const RELAY_SHARDS: u64 = 8;

pub fn spawn_relay(core: Arc<Core>, mut events: mpsc::UnboundedReceiver<NetworkEvent>) {
    let shards: Vec<mpsc::UnboundedSender<NetworkEvent>> = (0..RELAY_SHARDS)
        .map(|_| {
            let (shard, mut queue) = mpsc::unbounded_channel();
            let core = core.clone();
            tokio::spawn(async move {
                while let Some(event) = queue.recv().await {
                    handle(&core, event).await;
                }
            });
            shard
        })
        .collect();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            match &event {
                NetworkEvent::Receipt(receipt) => {
                    (receipt.account.as_str(), receipt.chat.to_string()).hash(&mut hasher)
                }
                NetworkEvent::Contact(contact) => contact.phone.as_str().hash(&mut hasher),
                NetworkEvent::LoggedOut(account) => account.as_str().hash(&mut hasher),
            }
            let shard = (hasher.finish() % RELAY_SHARDS) as usize;
            if shards[shard].send(event).is_err() {
                return;
            }
        }
    });
}

async fn handle(core: &Core, event: NetworkEvent) {
    match event {
        NetworkEvent::Receipt(receipt) => {
            if let Err(error) = bridge_receipt(core, &receipt).await {
                tracing::error!(device = %receipt.account, error = %error, "receipt not bridged");
            }
        }
        NetworkEvent::Contact(contact) => {
            if let Err(error) = ensure_puppet(core, &contact).await {
                tracing::error!(contact = %contact.phone, error = %error, "puppet profile not updated");
            }
        }
        NetworkEvent::LoggedOut(account) => {
            if let Err(error) = record_logged_out(core, account).await {
                tracing::error!(error = %error, "cannot record a log-out");
            }
        }
    }
}

async fn record_logged_out(core: &Core, account: AccountId) -> Result<(), BridgeError> {
    let Some(login) = store::login(&core.db, account.as_str()).await?.filter(|l| l.state == store::CONNECTED) else {
        return Ok(());
    };
    store::set_login_state(&core.db, account.as_str(), store::LOGGED_OUT).await?;
    crate::lease::drop_device(core, &account).await?;
    tracing::warn!(device = %account, "device logged out from the network side");
    let change =
        DeviceChange { account, owner: login.owner, state: ConnectionState::LoggedOut, at_ms: crate::db::now_ms() };
    let _ = core.device_changes.send(change);
    Ok(())
}

/// Bridges one message from the inbox; safe to repeat (see `inbox`).
pub(crate) async fn bridge_message(core: &Core, message: IncomingMessage) -> Result<(), BridgeError> {
    let account = message.account.as_str();
    let chat_key = message.chat.to_string();
    if store::message_by_network_id(&core.db, account, &chat_key, &message.id).await?.is_some() {
        return Ok(());
    }
    if let IncomingBody::Group(change) = &message.body {
        return crate::groups::follow(core, &message, change).await;
    }
    // Reactions, edits and deletions act on a message bridged earlier; of any other there is nothing to show.
    let target = match message.body.target() {
        Some(target) => match store::message_by_network_id(&core.db, account, &chat_key, target).await? {
            Some(row) => Some(row.event_id),
            None => {
                tracing::debug!(message = %message.id, target = %target, "acts on a message never bridged");
                return Ok(());
            }
        },
        None => None,
    };
    let (puppet, room) = sender_in_portal(core, &message).await?;
    let incoming = &message;
    let send = |mut event: MatrixEvent| {
        add_source(&mut event.content, incoming);
        let (puppet, room) = (&puppet, &room);
        async move {
            let sent = as_member(core, room, puppet, || {
                core.matrix.send_event(puppet, room, event.event_type, &incoming.id, &event.content)
            });
            sent.await
        }
    };
    let event_id = match (&message.body, target.as_deref()) {
        (IncomingBody::Message { text, media, reply_to, structured }, _) => {
            let cards = match structured {
                Some(Structured::ContactCards { cards }) => Some(content::contact_file(cards)),
                _ => None,
            };
            let (mut text, mut media) = (text.clone(), media.as_ref().or(cards.as_ref()));
            let mxc = match media {
                Some(file) => {
                    match core.matrix.upload(&puppet, file.data.clone(), &file.mime_type, &file.file_name).await {
                        Ok(mxc) => Some(mxc),
                        // A file the homeserver will never take still leaves a trace of the message.
                        Err(MatrixError::Refused { status: 413, .. }) => {
                            let notice = format!(
                                "[{} {} of {} bytes, larger than the homeserver accepts]",
                                file.kind.as_str(),
                                file.file_name,
                                file.data.len()
                            );
                            text = Some(text.map_or(notice.clone(), |caption| format!("{caption}\n{notice}")));
                            media = None;
                            None
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                None => None,
            };
            let quoted = match reply_to {
                Some(quoted) => store::message_by_network_id(&core.db, account, &chat_key, quoted).await?,
                None => None,
            };
            let file = media.zip(mxc.as_ref().map(|mxc| mxc.as_str()));
            let quoted = quoted.as_ref().map(|q| q.event_id.as_str());
            send(content::message(text.as_deref(), file, structured.as_ref(), quoted)).await?
        }
        (IncomingBody::Reaction { target: target_id, emoji }, Some(target)) => {
            let key =
                ReactionKey { account_id: account, chat_id: &chat_key, target_id, sender: message.sender.as_str() };
            // WhatsApp keeps one reaction per sender: a new one replaces the last.
            if let Some(previous) = store::reaction(&core.db, key).await? {
                let txn = format!("unreact-{}", message.id);
                as_member(core, &room, &puppet, || core.matrix.redact(&puppet, &room, &previous, &txn)).await?;
                store::delete_reaction(&core.db, key).await?;
            }
            if emoji.is_empty() {
                return Ok(());
            }
            let event_id = send(content::reaction(target, emoji)).await?;
            store::set_reaction(&core.db, key, event_id.as_str()).await?;
            event_id
        }
        (IncomingBody::Edit { text, .. }, Some(target)) => send(content::edit(target, text)).await?,
        (IncomingBody::Delete { .. }, Some(target)) => {
            let txn = format!("delete-{}", message.id);
            // A group admin deletes others' messages: the bot, which holds the room's power, redacts those.
            match core.matrix.redact(&puppet, &room, target, &txn).await {
                Err(MatrixError::Refused { status: 403, .. }) => {
                    core.matrix.redact(&core.bot, &room, target, &txn).await?
                }
                other => other?,
            }
        }
        (IncomingBody::PollVote { options, .. }, Some(target)) => {
            // The poll's answer ids are in its start event, which the homeserver keeps.
            let poll = core.matrix.event(&puppet, &room, target).await?;
            send(content::poll_response(target, &poll, options)).await?
        }
        (IncomingBody::Call { video, rejected }, _) => send(content::call_notice(*video, *rejected)).await?,
        // A reaction, edit, deletion or vote without a bridged target returned above, and a
        // group change was followed.
        (_, None) | (IncomingBody::Group(_), _) => return Ok(()),
    };
    // A reaction, edit or deletion is nothing to mark read, nor what the account wrote.
    let to_read = matches!(message.body, IncomingBody::Message { .. }) && !message.from_me;
    let row = MessageRow {
        event_id: event_id.to_string(),
        room_id: room.to_string(),
        account_id: account.to_owned(),
        chat_id: chat_key,
        network_id: message.id,
        direction: if message.from_me { "out" } else { "in" }.into(),
        sender: to_read.then(|| message.sender.to_string()),
    };
    store::insert_message(&core.db, &row).await?;
    Ok(())
}

/// Who speaks in Matrix for the message's sender, and the chat's portal (both made on
/// first use): the sender's puppet, or the portal's owner for what the account itself
/// wrote on another device (the bridge may act as the owner: double puppeting).
async fn sender_in_portal(core: &Core, message: &IncomingMessage) -> Result<(OwnedUserId, OwnedRoomId), BridgeError> {
    let owner = connected_owner(core, &message.account).await?;
    // The contact whose puppet the chat shows: the sender, or the other side of a direct
    // chat the account wrote in.
    let other = match (&message.chat, message.from_me) {
        (ChatId::Direct(phone), true) => phone,
        _ => &message.sender,
    };
    // Profiles come from the network the first time a sender or chat is seen.
    let known = store::puppet_name(&core.db, other.as_str()).await?.is_some();
    let resolved = if known { None } else { core.network.resolve_contact(&message.account, other).await.ok() };
    let mut contact = resolved.unwrap_or(Contact { phone: other.clone(), name: None, avatar: None });
    if let Some(push_name) = message.sender_name.as_ref().filter(|_| !message.from_me) {
        contact.name = Some(push_name.clone());
    }
    let puppet = ensure_puppet(core, &contact).await?;
    let room = portal_of(core, message, &owner, Some(&contact)).await?;
    if message.from_me {
        return Ok((owner, room));
    }
    if message.chat.is_group() {
        ensure_member(core, &room, &puppet).await?;
    }
    Ok((puppet, room))
}

/// The Matrix user who owns `account`, as long as the account is connected: what the
/// network says of an account that is not is not bridged.
pub(crate) async fn connected_owner(core: &Core, account: &AccountId) -> Result<OwnedUserId, BridgeError> {
    let Some(login) = store::login(&core.db, account.as_str()).await?.filter(|l| l.state == store::CONNECTED) else {
        return Err(BridgeError::Invalid(format!("no connected login for {account}")));
    };
    ruma::UserId::parse(&login.owner).map_err(|e| BridgeError::Invalid(e.to_string()))
}

/// The portal of the message's chat, made when missing: a group's from what the network
/// says of the group, a direct chat's from `contact`.
pub(crate) async fn portal_of(
    core: &Core,
    message: &IncomingMessage,
    owner: &ruma::UserId,
    contact: Option<&Contact>,
) -> Result<OwnedRoomId, BridgeError> {
    let portal = match store::portal(&core.db, message.account.as_str(), &message.chat.to_string()).await? {
        Some(portal) => portal,
        None => match (&message.chat, contact) {
            (ChatId::Direct(_), Some(contact)) => {
                ensure_portal(core, &message.account, owner, PortalInfo::Direct(contact)).await?
            }
            (ChatId::Direct(phone), None) => {
                return Err(BridgeError::Invalid(format!("no portal for the direct chat with {phone}")));
            }
            (ChatId::Group(_), _) => {
                let group = core.network.group_info(&message.account, &message.chat).await?;
                ensure_portal(core, &message.account, owner, PortalInfo::Group(&group)).await?
            }
        },
    };
    room_id(&portal)
}

/// A delivery or read receipt for messages the account sent: the reader's puppet marks
/// them read in Matrix, and a status event tells the API.
async fn bridge_receipt(core: &Core, receipt: &Receipt) -> Result<(), BridgeError> {
    // The account's own devices report what its owner read; only other people's receipts are news.
    if receipt.reader == receipt.account {
        return Ok(());
    }
    let account = receipt.account.as_str();
    let chat_key = receipt.chat.to_string();
    let Some(portal) = store::portal(&core.db, account, &chat_key).await? else { return Ok(()) };
    let mut rows = Vec::new();
    for id in &receipt.message_ids {
        rows.extend(store::message_by_network_id(&core.db, account, &chat_key, id).await?);
    }
    let Some(last) = rows.last() else { return Ok(()) };
    let room = room_id(&portal)?;
    let reader = match store::puppet_name(&core.db, receipt.reader.as_str()).await? {
        Some(_) => core.puppet_id(receipt.reader.as_str()),
        None => {
            let resolved = core.network.resolve_contact(&receipt.account, &receipt.reader).await.ok();
            ensure_puppet(
                core,
                &resolved.unwrap_or(Contact { phone: receipt.reader.clone(), name: None, avatar: None }),
            )
            .await?
        }
    };
    if receipt.chat.is_group() {
        ensure_member(core, &room, &reader).await?;
    }
    if receipt.kind == ReceiptKind::Read {
        as_member(core, &room, &reader, || core.matrix.mark_read(&reader, &room, &last.event_id)).await?;
    }
    for row in rows.iter().filter(|row| row.direction == "out") {
        let event = content::status(&row.event_id, &row.network_id, receipt.kind, &reader);
        let txn = format!("{}-{}-{}", receipt.kind.as_str(), receipt.reader, row.event_id);
        core.matrix.send_event(&core.bot, &room, event.event_type, &txn, &event.content).await?;
    }
    Ok(())
}

/// Which account and chat an event came from, for consumers such as the API.
pub(crate) fn add_source(content: &mut Value, message: &IncomingMessage) {
    content[crate::SOURCE_FIELD] = json!({
        "device_id": message.account,
        "chat": message.chat.to_string(),
        "network_message_id": message.id,
    });
}
