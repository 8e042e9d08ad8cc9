//! Matrix → network: a token identity's message in a portal goes to WhatsApp, and a
//! `com.beeper.message_send_status` event reports what WhatsApp said.

use ruma::{RoomId, UserId};
use serde_json::{Value, json};

use crate::content;
use crate::core::{BridgeError, Core};
use crate::network::OutgoingMessage;
use crate::store::{self, MessageRow};

/// The status event type mautrix bridges use; the API waits for it.
pub const SEND_STATUS: &str = "com.beeper.message_send_status";
/// The network's message id, added beside the standard fields.
pub const NETWORK_ID_FIELD: &str = "fi.mxgate.network_message_id";

pub async fn handle(core: &Core, event: &Value, sender: &UserId, room: &RoomId) -> Result<(), BridgeError> {
    let Some(event_id) = event["event_id"].as_str() else { return Ok(()) };
    let Some(portal) = store::portal_by_room(&core.db, room.as_str()).await? else { return Ok(()) };
    let Some(login) = store::login(&core.db, &portal.account_id).await? else { return Ok(()) };
    if login.owner != sender.as_str() {
        return Ok(());
    }
    // A replayed event (e.g. after a crash mid-transaction) was already sent.
    if store::message_by_event(&core.db, event_id).await?.is_some() {
        return Ok(());
    }
    let result = send(core, event, &portal, sender).await;
    let content = match &result {
        Ok(network_id) => {
            let row = MessageRow {
                event_id: event_id.to_owned(),
                room_id: room.to_string(),
                account_id: portal.account_id.clone(),
                chat_id: portal.chat_id.clone(),
                network_id: network_id.clone(),
                direction: "out".into(),
            };
            store::insert_message(&core.db, &row).await?;
            json!({
                "network": "whatsapp",
                "m.relates_to": { "rel_type": "m.reference", "event_id": event_id },
                "status": "SUCCESS",
                NETWORK_ID_FIELD: network_id,
            })
        }
        Err(error) => {
            tracing::warn!(event = event_id, error = %error, "message not sent to the network");
            json!({
                "network": "whatsapp",
                "m.relates_to": { "rel_type": "m.reference", "event_id": event_id },
                "status": "FAIL",
                "reason": "m_foreign_network_error",
                "message": error.to_string(),
            })
        }
    };
    // The homeserver has one transaction in flight per appservice: answering it before the
    // status is persisted lets the next message through while the status goes out.
    let (matrix, bot, room, txn) =
        (core.matrix.clone(), core.bot.clone(), room.to_owned(), format!("status-{event_id}"));
    tokio::spawn(async move {
        if let Err(error) = matrix.send_event(&bot, &room, SEND_STATUS, &txn, &content).await {
            tracing::warn!(room = %room, error = %error, "send status not delivered");
        }
    });
    Ok(())
}

async fn send(core: &Core, event: &Value, portal: &store::PortalRow, sender: &UserId) -> Result<String, BridgeError> {
    let parsed = content::parse(event["type"].as_str().unwrap_or_default(), &event["content"])?;
    let media = match parsed.file {
        Some(file) => {
            let data = core.matrix.download(sender, &file.url).await?;
            Some(file.into_media(data))
        }
        None => None,
    };
    let reply_to = match &parsed.reply_to {
        Some(replied) => store::message_by_event(&core.db, replied).await?.map(|m| m.network_id),
        None => None,
    };
    let message = OutgoingMessage { text: parsed.text, media, reply_to };
    let account = portal.account_id.parse()?;
    let chat = portal.chat_id.parse()?;
    Ok(core.network.send(&account, &chat, message).await?)
}
