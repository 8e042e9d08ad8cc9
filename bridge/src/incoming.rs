//! Network → Matrix: every message a linked device receives becomes an event sent by
//! the sender's puppet in the chat's portal.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::core::{BridgeError, Core, DeviceLoggedOut};
use crate::ids::ChatId;
use crate::media;
use crate::network::{AccountId, Contact, IncomingMessage, NetworkEvent};
use crate::portal::{PortalInfo, ensure_member, ensure_portal, room_id};
use crate::puppet::ensure_puppet;
use crate::store::{self, MessageRow};

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
                NetworkEvent::Message(message) => {
                    (message.account.as_str(), message.chat.to_string()).hash(&mut hasher)
                }
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
        NetworkEvent::Message(message) => {
            let id = message.id.clone();
            if let Err(error) = bridge_message(core, *message).await {
                tracing::error!(message = %id, error = %error, "incoming message not bridged");
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
    tracing::warn!(device = %account, "device logged out from the network side");
    let _ = core.logged_out.send(DeviceLoggedOut { account, owner: login.owner, at: crate::db::now() });
    Ok(())
}

async fn bridge_message(core: &Core, message: IncomingMessage) -> Result<(), BridgeError> {
    let account = message.account.as_str();
    let chat_key = message.chat.to_string();
    if store::message_by_network_id(&core.db, account, &chat_key, &message.id).await?.is_some() {
        return Ok(());
    }
    let Some(login) = store::login(&core.db, account).await?.filter(|l| l.state == store::CONNECTED) else {
        return Err(BridgeError::Invalid(format!("no connected login for {account}")));
    };
    let owner = ruma::UserId::parse(&login.owner).map_err(|e| BridgeError::Invalid(e.to_string()))?;
    // Profiles come from the network the first time a sender or chat is seen.
    let known = store::puppet_name(&core.db, message.sender.as_str()).await?.is_some();
    let resolved =
        if known { None } else { core.network.resolve_contact(&message.account, &message.sender).await.ok() };
    let mut contact = resolved.unwrap_or(Contact { phone: message.sender.clone(), name: None, avatar: None });
    if let Some(push_name) = &message.sender_name {
        contact.name = Some(push_name.clone());
    }
    let puppet = ensure_puppet(core, &contact).await?;
    let portal = match store::portal(&core.db, account, &chat_key).await? {
        Some(portal) => portal,
        None => match &message.chat {
            ChatId::Direct(_) => ensure_portal(core, &message.account, &owner, PortalInfo::Direct(&contact)).await?,
            ChatId::Group(_) => {
                let group = core.network.group_info(&message.account, &message.chat).await?;
                ensure_portal(core, &message.account, &owner, PortalInfo::Group(&group)).await?
            }
        },
    };
    let room = room_id(&portal)?;
    if message.chat.is_group() {
        ensure_member(core, &room, &puppet).await?;
    }

    let mut content = match &message.media {
        Some(media) => {
            let mxc = core.matrix.upload(&puppet, media.data.clone(), &media.mime_type, &media.file_name).await?;
            let info = media::info(&media.data, &media.mime_type);
            let caption = message.text.clone().unwrap_or_else(|| media.file_name.clone());
            json!({
                "msgtype": media::msgtype(&media.mime_type),
                "body": caption,
                "filename": media.file_name,
                "url": mxc,
                "info": info,
            })
        }
        None => json!({ "msgtype": "m.text", "body": message.text.clone().unwrap_or_default() }),
    };
    if let Some(quoted) = &message.reply_to
        && let Some(row) = store::message_by_network_id(&core.db, account, &chat_key, quoted).await?
    {
        content["m.relates_to"] = json!({ "m.in_reply_to": { "event_id": row.event_id } });
    }
    add_source(&mut content, &message);
    let event_id = core.matrix.send_event(&puppet, &room, "m.room.message", &message.id, &content).await?;
    let row = MessageRow {
        event_id: event_id.to_string(),
        room_id: room.to_string(),
        account_id: account.to_owned(),
        chat_id: chat_key,
        network_id: message.id,
        direction: "in".into(),
    };
    store::insert_message(&core.db, &row).await?;
    Ok(())
}

/// Which account and chat an event came from, for consumers such as the API.
fn add_source(content: &mut Value, message: &IncomingMessage) {
    content["fi.mxgate.source"] = json!({
        "device_id": message.account,
        "chat": message.chat.to_string(),
        "network_message_id": message.id,
    });
}
