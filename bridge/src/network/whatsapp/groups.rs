//! Groups on WhatsApp: metadata, administration through whatsapp-rust's `groups()`, and
//! the `w:gp2` and picture notifications members receive, committed to the inbox as
//! [`GroupChange`]s so a portal follows each change once, in order.

use whatsapp_rust::Jid;
use whatsapp_rust::features::{
    GroupCreateOptions, GroupDescription, GroupError, GroupMetadata, GroupParticipantOptions, GroupSubject,
    ParticipantType, PreviousDescription,
};
use whatsapp_rust::types::events::{GroupUpdate, PictureUpdate};
use whatsapp_rust::wacore::stanza::groups::{GroupNotificationAction as Action, GroupParticipantInfo};

use super::messages::phone_of;
use super::session::{Session, person};
use super::{Inner, group_jid, refused};
use crate::ids::{ChatId, PhoneNumber};
use crate::network::{
    GroupChange, GroupInfo, GroupMember, GroupRole, GroupSettings, IncomingBody, IncomingMessage, MemberAction,
    MemberResult, NetworkError, random_message_id,
};

/// What the server's refusal means to the caller: not an admin (403), not a member or no
/// such group (404), or another refusal.
fn group_error(chat: &ChatId, error: GroupError) -> NetworkError {
    match &error {
        GroupError::Iq(whatsapp_rust::request::IqError::ServerError { code: 403 | 401, .. }) => NetworkError::NotAdmin,
        GroupError::Iq(whatsapp_rust::request::IqError::ServerError { code: 404 | 406, .. }) => {
            NetworkError::NoSuchGroup(chat.clone())
        }
        _ => refused(error),
    }
}

fn info_of(chat: ChatId, metadata: GroupMetadata) -> GroupInfo {
    let members = metadata
        .participants
        .iter()
        .filter_map(|p| {
            let role = match p.participant_type {
                ParticipantType::SuperAdmin => GroupRole::Owner,
                ParticipantType::Admin => GroupRole::Admin,
                _ => GroupRole::Member,
            };
            Some(GroupMember { phone: phone_of(&p.jid, p.phone_number.as_ref())?, role })
        })
        .collect();
    GroupInfo {
        chat,
        name: metadata.subject,
        topic: metadata.description.filter(|d| !d.is_empty()),
        avatar: None,
        members,
        announce: metadata.is_announcement,
        locked: metadata.is_locked,
    }
}

impl Inner {
    pub(super) async fn group_info(&self, session: &Session, chat: &ChatId) -> Result<GroupInfo, NetworkError> {
        let jid = group_jid(chat)?;
        let metadata = session.client.groups().get_metadata(&jid).await.map_err(|e| group_error(chat, e))?;
        let avatar = self.picture(&session.client, &jid).await;
        Ok(GroupInfo { avatar, ..info_of(chat.clone(), metadata) })
    }

    /// A `w:gp2` change, for the inbox. Changes the portal does not show (ephemeral
    /// timers, membership requests, communities) are left out.
    pub(super) async fn group_changed(&self, session: &Session, update: &GroupUpdate) {
        let phones = |participants: &[GroupParticipantInfo]| -> Vec<PhoneNumber> {
            participants.iter().filter_map(|p| phone_of(&p.jid, p.phone_number.as_ref())).collect()
        };
        let members = |action, participants| GroupChange::Members { action, phones: phones(participants) };
        let chat = ChatId::Group(update.group_jid.to_string());
        let change = match &update.action {
            Action::Create { .. } => match session.client.groups().get_metadata(&update.group_jid).await {
                Ok(metadata) => {
                    let info = info_of(chat.clone(), metadata);
                    GroupChange::Created { subject: info.name, members: info.members }
                }
                Err(error) => {
                    tracing::warn!(device = %session.account, chat = %chat, error = %error, "a new group not read");
                    return;
                }
            },
            Action::Add { participants, .. } => members(MemberAction::Add, participants),
            Action::Remove { participants, .. } => members(MemberAction::Remove, participants),
            Action::Promote { participants } => members(MemberAction::Promote, participants),
            Action::Demote { participants } => members(MemberAction::Demote, participants),
            Action::Subject { subject, .. } => GroupChange::Subject { subject: subject.clone() },
            Action::Description { description, .. } => {
                GroupChange::Description { description: description.clone().filter(|d| !d.is_empty()) }
            }
            Action::Locked { .. } => GroupChange::Locked { locked: true },
            Action::Unlocked => GroupChange::Locked { locked: false },
            Action::Announce => GroupChange::Announce { announce: true },
            Action::NotAnnounce => GroupChange::Announce { announce: false },
            Action::RevokeInvite => GroupChange::InviteRevoked,
            _ => return,
        };
        let id = match &update.notification_id {
            Some(id) => format!("{id}.{}", update.action_index),
            None => random_message_id(),
        };
        let by = update.participant.as_ref().and_then(|p| phone_of(p, update.participant_pn.as_ref()));
        self.commit_group_change(session, chat, by, id, change).await;
    }

    pub(super) async fn picture_changed(&self, session: &Session, update: &PictureUpdate) {
        if update.jid.server != whatsapp_rust::Server::Group {
            return;
        }
        let chat = ChatId::Group(update.jid.to_string());
        let by = update.author.as_ref().and_then(|a| phone_of(a, None));
        let id = match &update.picture_id {
            Some(picture) => format!("picture.{picture}"),
            None => random_message_id(),
        };
        self.commit_group_change(session, chat, by, id, GroupChange::Picture { removed: update.removed }).await;
    }

    async fn commit_group_change(
        &self,
        session: &Session,
        chat: ChatId,
        by: Option<PhoneNumber>,
        id: String,
        change: GroupChange,
    ) {
        // A change the server made itself (no author) is told as the account's own.
        let by = by.unwrap_or_else(|| session.account.clone());
        let told = IncomingMessage {
            account: session.account.clone(),
            chat,
            from_me: by == session.account,
            sender: by,
            sender_name: None,
            id,
            body: IncomingBody::Group(change),
        };
        // Like a call, a group notification is acked as it arrives; the portal catches up
        // with the group's state at the next change or when it is read again.
        if let Err(error) = self.inbox.commit(std::slice::from_ref(&told)).await {
            tracing::warn!(device = %session.account, error = %error, "a group change was not recorded");
        }
    }
}

pub(super) async fn groups(session: &Session) -> Result<Vec<GroupInfo>, NetworkError> {
    let groups = session.client.groups().get_participating().await.map_err(refused)?;
    let mut groups: Vec<GroupInfo> =
        groups.into_iter().map(|(jid, metadata)| info_of(ChatId::Group(jid.to_string()), metadata)).collect();
    groups.sort_by_key(|g| g.chat.to_string());
    Ok(groups)
}

pub(super) async fn create(
    session: &Session,
    subject: &str,
    members: &[PhoneNumber],
) -> Result<GroupInfo, NetworkError> {
    let subject = GroupSubject::new(subject).map_err(|e| NetworkError::Refused(e.to_string()))?;
    let mut options = GroupCreateOptions::new(subject.as_str());
    for member in members {
        options = options.with_participant(GroupParticipantOptions::new(person(member)));
    }
    let created = session.client.groups().create_group(options).await.map_err(refused)?;
    let chat = ChatId::Group(created.metadata.id.to_string());
    Ok(info_of(chat, created.metadata))
}

pub(super) async fn update(session: &Session, chat: &ChatId, settings: GroupSettings) -> Result<(), NetworkError> {
    let jid = group_jid(chat)?;
    let groups = session.client.groups();
    let failed = |e| group_error(chat, e);
    if let Some(subject) = settings.subject {
        let subject = GroupSubject::new(subject).map_err(|e| NetworkError::Refused(e.to_string()))?;
        groups.set_subject(jid.clone(), subject).await.map_err(failed)?;
    }
    if let Some(description) = settings.description {
        let description = match description.is_empty() {
            true => None,
            false => Some(GroupDescription::new(description).map_err(|e| NetworkError::Refused(e.to_string()))?),
        };
        groups.set_description(jid.clone(), description, PreviousDescription::Resolve).await.map_err(failed)?;
    }
    if let Some(picture) = settings.picture {
        groups.set_profile_picture(jid.clone(), picture).await.map_err(failed)?;
    }
    if let Some(announce) = settings.announce {
        groups.set_announce(jid.clone(), announce).await.map_err(failed)?;
    }
    if let Some(locked) = settings.locked {
        groups.set_locked(jid.clone(), locked).await.map_err(failed)?;
    }
    Ok(())
}

pub(super) async fn change_members(
    session: &Session,
    chat: &ChatId,
    action: MemberAction,
    phones: &[PhoneNumber],
) -> Result<Vec<MemberResult>, NetworkError> {
    let jid = group_jid(chat)?;
    let jids: Vec<Jid> = phones.iter().map(person).collect();
    let groups = session.client.groups();
    let answered = match action {
        MemberAction::Add => groups.add_participants(jid, &jids).await,
        MemberAction::Remove => groups.remove_participants(jid, &jids).await,
        MemberAction::Promote => groups.promote_participants(jid, &jids).await,
        MemberAction::Demote => groups.demote_participants(jid, &jids).await,
    }
    .map_err(|e| group_error(chat, e))?;
    // One result per number asked, found by the JID the server answers for.
    Ok(phones
        .iter()
        .zip(&jids)
        .map(|(phone, asked)| {
            let answer = answered.iter().find(|r| r.jid.user == asked.user);
            let code = match answer {
                Some(answer) => answer.error.as_deref(),
                None => Some("404"),
            };
            MemberResult::of_code(phone.clone(), action, code)
        })
        .collect())
}

pub(super) async fn invite_link(session: &Session, chat: &ChatId, reset: bool) -> Result<String, NetworkError> {
    let jid = group_jid(chat)?;
    session.client.groups().get_invite_link(jid, reset).await.map_err(|e| group_error(chat, e))
}

pub(super) async fn leave(session: &Session, chat: &ChatId) -> Result<(), NetworkError> {
    let jid = group_jid(chat)?;
    session.client.groups().leave(jid).await.map_err(|e| group_error(chat, e))
}
