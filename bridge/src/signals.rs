//! What a portal's owner shows besides messages, sent on to WhatsApp: that it read them,
//! that it is typing. It comes from the API (provisioning) or from the owner's Matrix
//! client, as ephemeral events the homeserver pushes (`receive_ephemeral`). None of it is
//! stored or retried: a late "typing…" is worse than none, and a read receipt that did
//! not go is sent with the next.

use std::sync::Arc;

use serde_json::Value;

use crate::core::{BridgeError, Core};
use crate::ids::{ChatId, PhoneNumber};
use crate::network::{AccountId, Typing};
use crate::store;

/// Marks `messages` (network id and sender) of `chat` read on the network, then in the
/// store; how many.
pub async fn mark_read(
    core: &Core,
    account: &AccountId,
    chat: &ChatId,
    messages: Vec<(String, String)>,
) -> Result<usize, BridgeError> {
    let parsed: Vec<(String, PhoneNumber)> =
        messages.into_iter().map(|(id, sender)| sender.parse().map(|sender| (id, sender))).collect::<Result<_, _>>()?;
    if parsed.is_empty() {
        return Ok(0);
    }
    core.network.mark_read(account, chat, &parsed).await?;
    let ids: Vec<String> = parsed.into_iter().map(|(id, _)| id).collect();
    store::mark_read(&core.db, account.as_str(), &chat.to_string(), &ids).await?;
    Ok(ids.len())
}

/// The portal of `room`, with its device, when this process runs the device. Another
/// process's device is left alone: ephemeral events are not worth a hop.
async fn portal_here(core: &Core, room: &str) -> Result<Option<(store::PortalRow, AccountId, String)>, BridgeError> {
    let Some(portal) = store::portal_by_room(&core.db, room).await? else { return Ok(None) };
    let account: AccountId = portal.account_id.parse()?;
    if !core.leases.runs(&account) {
        return Ok(None);
    }
    let Some(login) = store::login(&core.db, account.as_str()).await? else { return Ok(None) };
    Ok(Some((portal, account, login.owner)))
}

/// Handles the ephemeral events of one transaction; what fails is logged and dropped.
pub async fn pushed(core: &Arc<Core>, events: &[Value]) {
    for event in events {
        let Some(room) = event["room_id"].as_str() else { continue };
        let handled = match event["type"].as_str() {
            Some("m.typing") => typing(core, room, &event["content"]).await,
            Some("m.receipt") => receipt(core, room, &event["content"]).await,
            _ => Ok(()),
        };
        if let Err(error) = handled {
            tracing::warn!(room, error = %error, "an ephemeral event was not sent on to the network");
        }
    }
}

/// `m.typing` lists who types in the room now: the owner's appearing is "composing",
/// its leaving "paused".
async fn typing(core: &Core, room: &str, content: &Value) -> Result<(), BridgeError> {
    let Some((portal, account, owner)) = portal_here(core, room).await? else { return Ok(()) };
    let typing_now = content["user_ids"].as_array().is_some_and(|ids| ids.iter().any(|id| id == owner.as_str()));
    let was_typing = {
        let mut typing = core.typing.lock().unwrap_or_else(|e| e.into_inner());
        if typing_now { !typing.insert(room.to_owned()) } else { typing.remove(room) }
    };
    let state = match (was_typing, typing_now) {
        (false, true) => Typing::Composing,
        (true, false) => Typing::Paused,
        _ => return Ok(()),
    };
    core.network.send_typing(&account, &portal.chat_id.parse()?, state).await?;
    Ok(())
}

/// `m.receipt`: the owner's public read receipt (`m.read`; a private one stays private)
/// on a bridged message reads every unread message of the chat up to it.
async fn receipt(core: &Core, room: &str, content: &Value) -> Result<(), BridgeError> {
    let Some(receipts) = content.as_object() else { return Ok(()) };
    let Some((portal, account, owner)) = portal_here(core, room).await? else { return Ok(()) };
    for (event_id, kinds) in receipts {
        if kinds["m.read"].get(&owner).is_none() {
            continue;
        }
        let Some(until) = store::message_bridged_ms(&core.db, event_id).await? else { continue };
        let unread =
            store::unread(&core.db, account.as_str(), &portal.chat_id, Some(until), crate::provisioning::READ_AT_ONCE)
                .await?;
        mark_read(core, &account, &portal.chat_id.parse()?, unread).await?;
    }
    Ok(())
}
