//! How a group's portal follows the group: each [`GroupChange`] a member hears of becomes
//! Matrix state (name, topic, avatar, members, power levels) and one record event, the
//! bot's `fi.mxgate.group`, that the API turns into a `group.*` webhook. Bridged from the
//! inbox like a message, so each change is applied once and in order; every step is
//! safe to repeat after a crash.

use ruma::RoomId;
use serde_json::{Value, json};

use crate::content;
use crate::core::{BridgeError, Core};
use crate::ids::PhoneNumber;
use crate::incoming;
use crate::network::{Contact, GroupChange, IncomingMessage, MemberAction};
use crate::portal::ensure_member;
use crate::puppet::ensure_puppet;
use crate::store::{self, MessageRow};

/// The power level of a group admin's puppet, and what an announce-only or locked
/// group asks of who sends messages or edits its name, topic and picture.
const ADMIN: i64 = 50;
const INFO_EVENTS: [&str; 3] = ["m.room.name", "m.room.topic", "m.room.avatar"];

pub(crate) async fn follow(core: &Core, message: &IncomingMessage, change: &GroupChange) -> Result<(), BridgeError> {
    let account = &message.account;
    let owner = incoming::connected_owner(core, account).await?;
    let room = incoming::portal_of(core, message, &owner, None).await?;
    match change {
        GroupChange::Created { members, .. } => {
            for member in members.iter().filter(|m| m.phone != *account) {
                let puppet = puppet(core, &member.phone).await?;
                ensure_member(core, &room, &puppet).await?;
            }
            let admins: Vec<&PhoneNumber> = members.iter().filter(|m| m.role.is_admin()).map(|m| &m.phone).collect();
            set_admins(core, &room, account, &admins, true).await?;
        }
        GroupChange::Subject { subject } => {
            core.matrix.send_state(&core.bot, &room, "m.room.name", &json!({ "name": subject })).await?;
            store::set_portal_name(&core.db, room.as_str(), subject).await?;
        }
        GroupChange::Description { description } => {
            let topic = json!({ "topic": description.as_deref().unwrap_or_default() });
            core.matrix.send_state(&core.bot, &room, "m.room.topic", &topic).await?;
        }
        GroupChange::Picture { removed } => {
            let avatar = match removed {
                true => None,
                false => core.network.group_info(account, &message.chat).await?.avatar,
            };
            let url = match avatar {
                Some(a) => Some(core.matrix.upload(&core.bot, a.data, &a.mime_type, &a.file_name).await?),
                None => None,
            };
            let content = url.map_or_else(|| json!({}), |url| json!({ "url": url }));
            core.matrix.send_state(&core.bot, &room, "m.room.avatar", &content).await?;
        }
        GroupChange::Announce { announce } => {
            let level = if *announce { ADMIN } else { 0 };
            edit_power(core, &room, |levels| levels["events_default"] = level.into()).await?;
        }
        GroupChange::Locked { locked } => {
            let level = if *locked { ADMIN } else { 0 };
            edit_power(core, &room, |levels| {
                for event in INFO_EVENTS {
                    levels["events"][event] = level.into();
                }
            })
            .await?;
        }
        GroupChange::InviteRevoked => {}
        GroupChange::Members { action, phones } => {
            // The account's own membership is its owner's: the portal stays readable.
            let others: Vec<&PhoneNumber> = phones.iter().filter(|p| *p != account).collect();
            match action {
                MemberAction::Add => {
                    for phone in others {
                        ensure_member(core, &room, &puppet(core, phone).await?).await?;
                    }
                }
                MemberAction::Remove => {
                    for phone in others {
                        let puppet = core.puppet_id(phone.as_str());
                        core.matrix.kick(&core.bot, &room, &puppet, "removed from the WhatsApp group").await?;
                        store::remove_member(&core.db, room.as_str(), puppet.as_str()).await?;
                    }
                }
                MemberAction::Promote | MemberAction::Demote => {
                    for phone in &others {
                        ensure_member(core, &room, &puppet(core, phone).await?).await?;
                    }
                    set_admins(core, &room, account, &others, *action == MemberAction::Promote).await?;
                }
            }
        }
    }
    let mut record = content::group_record(change, &message.sender);
    incoming::add_source(&mut record.content, message);
    let txn = format!("group-{account}-{}", message.id);
    let event_id = core.matrix.send_event(&core.bot, &room, record.event_type, &txn, &record.content).await?;
    let row = MessageRow {
        event_id: event_id.to_string(),
        room_id: room.to_string(),
        account_id: account.to_string(),
        chat_id: message.chat.to_string(),
        network_id: message.id.clone(),
        direction: "in".into(),
        sender: None,
    };
    store::insert_message(&core.db, &row).await?;
    Ok(())
}

/// A member's puppet; its name comes with the first message it writes.
async fn puppet(core: &Core, phone: &PhoneNumber) -> Result<ruma::OwnedUserId, BridgeError> {
    ensure_puppet(core, &Contact { phone: phone.clone(), name: None, avatar: None }).await
}

/// Gives the puppets of `phones` a group admin's power (or takes it back). The account's
/// owner keeps the power the portal gave it.
async fn set_admins(
    core: &Core,
    room: &RoomId,
    account: &PhoneNumber,
    phones: &[&PhoneNumber],
    admin: bool,
) -> Result<(), BridgeError> {
    let puppets: Vec<String> =
        phones.iter().filter(|p| **p != account).map(|p| core.puppet_id(p.as_str()).to_string()).collect();
    if puppets.is_empty() {
        return Ok(());
    }
    edit_power(core, room, |levels| {
        for puppet in &puppets {
            match admin {
                true => levels["users"][puppet] = ADMIN.into(),
                false => {
                    if let Some(users) = levels["users"].as_object_mut() {
                        users.remove(puppet);
                    }
                }
            }
        }
    })
    .await
}

/// Changes the portal's power levels as `edit` says; nothing is sent when nothing changed.
async fn edit_power(core: &Core, room: &RoomId, edit: impl FnOnce(&mut Value)) -> Result<(), BridgeError> {
    let before = core.matrix.state_event(&core.bot, room, "m.room.power_levels", "").await?;
    let mut levels = before.clone();
    edit(&mut levels);
    if levels != before {
        core.matrix.send_state(&core.bot, room, "m.room.power_levels", &levels).await?;
    }
    Ok(())
}
