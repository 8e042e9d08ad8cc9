//! Portals: one Matrix room per chat of a linked account. The bot creates the room,
//! the account's owner is joined to it (the bridge's registration may act for token
//! identities), and a direct chat's puppet joins it too.

use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::json;

use crate::core::{BridgeError, Core};
use crate::ids::ChatId;
use crate::matrix::MatrixError;
use crate::network::{AccountId, Contact, GroupInfo};
use crate::puppet::ensure_puppet;
use crate::store::{self, PortalRow};

/// What a portal is made from: a contact for a direct chat, or a group.
#[derive(Clone, Copy)]
pub enum PortalInfo<'a> {
    Direct(&'a Contact),
    Group(&'a GroupInfo),
}

impl PortalInfo<'_> {
    fn chat(&self) -> ChatId {
        match self {
            Self::Direct(contact) => ChatId::Direct(contact.phone.clone()),
            Self::Group(group) => group.chat.clone(),
        }
    }
}

/// The portal of the chat `info` describes, for `account`, created on first use.
pub async fn ensure_portal(
    core: &Core,
    account: &AccountId,
    owner: &UserId,
    info: PortalInfo<'_>,
) -> Result<PortalRow, BridgeError> {
    let chat = &info.chat();
    let chat_key = chat.to_string();
    if let Some(portal) = store::portal(&core.db, account.as_str(), &chat_key).await? {
        return Ok(portal);
    }
    let _guard = core.portal_creation.lock().await;
    if let Some(portal) = store::portal(&core.db, account.as_str(), &chat_key).await? {
        return Ok(portal);
    }

    let mut invite = vec![owner.to_string()];
    let puppet = match info {
        PortalInfo::Direct(contact) => {
            let puppet = ensure_puppet(core, contact).await?;
            invite.push(puppet.to_string());
            Some(puppet)
        }
        PortalInfo::Group(_) => None,
    };
    let mut body = json!({
        "preset": "private_chat",
        "visibility": "private",
        "is_direct": !chat.is_group(),
        "invite": invite,
        "initial_state": [{
            "type": "m.bridge",
            "state_key": format!("fi.mxgate.whatsapp://whatsapp/{chat_key}"),
            "content": {
                "bridgebot": core.bot,
                "protocol": { "id": "whatsapp", "displayname": "WhatsApp" },
                "channel": { "id": chat_key },
            },
        }],
        // The bot creates the room and so holds its power; the owner may moderate.
        "power_level_content_override": { "users": { owner.as_str(): 50 } },
    });
    let name = match info {
        PortalInfo::Direct(contact) => contact.name.clone(),
        PortalInfo::Group(group) => {
            body["name"] = json!(group.name);
            if let Some(topic) = &group.topic {
                body["topic"] = json!(topic);
            }
            if let Some(avatar) = &group.avatar {
                let mxc =
                    core.matrix.upload(&core.bot, avatar.data.clone(), &avatar.mime_type, &avatar.file_name).await?;
                let state = json!({ "type": "m.room.avatar", "state_key": "", "content": { "url": mxc } });
                body["initial_state"].as_array_mut().expect("initial_state is a list").push(state);
            }
            Some(group.name.clone())
        }
    };
    let room_id = core.matrix.create_room(&core.bot, body).await?;
    core.matrix.join(owner, &room_id).await?;
    if let Some(puppet) = &puppet {
        core.matrix.join(puppet, &room_id).await?;
        core.matrix.add_direct_chat(owner, puppet, &room_id).await?;
    }
    let portal = PortalRow {
        account_id: account.to_string(),
        chat_id: chat_key,
        room_id: room_id.to_string(),
        is_direct: !chat.is_group(),
        name,
    };
    store::insert_portal(&core.db, &portal).await?;
    tracing::info!(room = %room_id, chat = %portal.chat_id, "portal created");
    Ok(portal)
}

/// A device linked again under another identity: its portals are that identity's now, and
/// the one that linked it before leaves them, so it reads the chats no more.
pub async fn hand_over(core: &Core, account: &AccountId, from: &UserId, to: &UserId) -> Result<(), BridgeError> {
    for portal in store::portals_of(&core.db, account.as_str()).await? {
        let room = room_id(&portal)?;
        core.matrix.invite(&core.bot, &room, to).await?;
        core.matrix.join(to, &room).await?;
        core.matrix.leave(from, &room).await?;
    }
    tracing::info!(device = %account, from = %from, to = %to, "portals handed over to the identity that linked the device again");
    Ok(())
}

/// Brings a group member's puppet into the portal before it speaks there. Once: the join
/// is recorded, so its later messages cost the homeserver no invite and no join.
pub async fn ensure_member(core: &Core, room: &RoomId, user: &UserId) -> Result<(), BridgeError> {
    if store::is_member(&core.db, room.as_str(), user.as_str()).await? {
        return Ok(());
    }
    join_portal(core, room, user).await
}

/// Runs `call`, which acts as `user` in the portal `room`. A membership recorded by
/// [`ensure_member`] may be gone (a kick); if the homeserver says so (`M_FORBIDDEN`),
/// `user` joins again and `call` is tried once more.
pub async fn as_member<T, F, Fut>(core: &Core, room: &RoomId, user: &UserId, call: F) -> Result<T, BridgeError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, MatrixError>>,
{
    match call().await {
        Err(error) if error.errcode() == Some("M_FORBIDDEN") => {
            tracing::info!(room = %room, user = %user, error = %error, "refused in its portal; joining it again");
            join_portal(core, room, user).await?;
            Ok(call().await?)
        }
        other => Ok(other?),
    }
}

async fn join_portal(core: &Core, room: &RoomId, user: &UserId) -> Result<(), BridgeError> {
    core.matrix.invite(&core.bot, room, user).await?;
    core.matrix.join(user, room).await?;
    store::add_member(&core.db, room.as_str(), user.as_str()).await?;
    Ok(())
}

pub fn room_id(portal: &PortalRow) -> Result<OwnedRoomId, BridgeError> {
    RoomId::parse(&portal.room_id).map_err(|e| BridgeError::Invalid(e.to_string()))
}
