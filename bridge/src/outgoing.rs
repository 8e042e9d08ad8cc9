//! Matrix → network: a token identity's message in a portal goes to WhatsApp, and a
//! `com.beeper.message_send_status` event reports what WhatsApp said.

use ruma::{RoomId, UserId};
use serde_json::{Value, json};

use crate::core::{BridgeError, Core};
use crate::network::{Media, OutgoingMessage};
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
    let content = &event["content"];
    let msgtype = content["msgtype"].as_str().unwrap_or_default();
    let body = content["body"].as_str().map(str::to_owned);
    let mut message = OutgoingMessage::default();
    match msgtype {
        "m.text" | "m.notice" | "m.emote" => message.text = body,
        "m.image" | "m.video" | "m.audio" | "m.file" => {
            let url = content["url"].as_str().ok_or_else(|| BridgeError::Invalid("media without url".into()))?;
            let data = core.matrix.download(sender, url).await?;
            let file_name =
                content["filename"].as_str().map(str::to_owned).or_else(|| body.clone()).unwrap_or_default();
            // With a separate `filename`, `body` is a caption (MSC2530).
            if content["filename"].is_string() && body.as_deref() != Some(file_name.as_str()) {
                message.text = body;
            }
            let mime_type = content["info"]["mimetype"].as_str().unwrap_or("application/octet-stream").to_owned();
            message.media = Some(Media { data, mime_type, file_name });
        }
        other => return Err(BridgeError::Invalid(format!("message type {other} is not bridged"))),
    }
    if let Some(replied) = content["m.relates_to"]["m.in_reply_to"]["event_id"].as_str() {
        message.reply_to = store::message_by_event(&core.db, replied).await?.map(|m| m.network_id);
    }
    let account = portal.account_id.parse()?;
    let chat = portal.chat_id.parse()?;
    Ok(core.network.send(&account, &chat, message).await?)
}
