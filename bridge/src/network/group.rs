//! Groups as every network shows them to the bridge: who is in one and with what
//! standing, its settings, what an admin may change, and the changes members hear of.

use serde::{Deserialize, Serialize};

use super::Media;
use crate::ids::{ChatId, PhoneNumber};

/// A group's name, topic, picture, members and settings, as a member sees them.
#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    pub chat: ChatId,
    pub name: String,
    pub topic: Option<String>,
    /// Loaded only where a portal shows it (its avatar); listings leave it out.
    #[serde(skip)]
    pub avatar: Option<Media>,
    pub members: Vec<GroupMember>,
    /// Only admins may send.
    pub announce: bool,
    /// Only admins may change the name, topic and picture.
    pub locked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupMember {
    #[schema(value_type = String, example = "237698765432")]
    pub phone: PhoneNumber,
    pub role: GroupRole,
}

/// A member's standing: WhatsApp's participant, admin and super admin (the creator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupRole {
    Member,
    Admin,
    Owner,
}

impl GroupRole {
    pub fn is_admin(self) -> bool {
        self != Self::Member
    }
}

/// What an admin changes of a group's settings; what is `None` stays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    pub subject: Option<String>,
    /// An empty description removes it.
    pub description: Option<String>,
    /// A JPEG.
    #[serde(default, with = "super::base64_bytes_opt")]
    pub picture: Option<Vec<u8>>,
    pub announce: Option<bool>,
    pub locked: Option<bool>,
}

/// What is done to some members at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberAction {
    Add,
    Remove,
    Promote,
    Demote,
}

impl MemberAction {
    /// The past tense webhooks tell it in.
    pub fn done(self) -> &'static str {
        match self {
            Self::Add => "added",
            Self::Remove => "removed",
            Self::Promote => "promoted",
            Self::Demote => "demoted",
        }
    }
}

/// How a member change went for one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberResult {
    pub phone: PhoneNumber,
    /// `None` when it was done; else why not: `already_member`, `not_member`,
    /// `not_on_whatsapp`, `refused` (the person's privacy settings, or an unknown code).
    pub error: Option<String>,
}

impl MemberResult {
    /// The network's per-participant error code (an HTTP-like status) in words.
    pub fn of_code(phone: PhoneNumber, action: MemberAction, code: Option<&str>) -> Self {
        let error = code.map(|code| {
            match (code, action) {
                ("409", _) => "already_member",
                ("404", MemberAction::Add) => "not_on_whatsapp",
                ("404", _) => "not_member",
                _ => "refused",
            }
            .to_owned()
        });
        Self { phone, error }
    }
}

/// A change a group's members hear of, made by the message's sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum GroupChange {
    /// The group was made with the account in it (an account added to a group hears of
    /// it as [`GroupChange::Members`]).
    Created {
        subject: String,
        members: Vec<GroupMember>,
    },
    Subject {
        subject: String,
    },
    Description {
        description: Option<String>,
    },
    /// A new picture (`removed` when it was taken away).
    Picture {
        removed: bool,
    },
    Announce {
        announce: bool,
    },
    Locked {
        locked: bool,
    },
    /// The invite link was reset; the old one joins no more.
    InviteRevoked,
    Members {
        action: MemberAction,
        phones: Vec<PhoneNumber>,
    },
}
