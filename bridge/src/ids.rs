//! Identifiers of the messaging network, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A phone number in international form, digits only (`237123456789`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a phone number: use 7 to 15 digits in international form, e.g. 237123456789")]
    Phone(String),
    #[error("`{0}` is not a WhatsApp group invite: expected https://chat.whatsapp.com/<code>")]
    Invite(String),
    #[error("`{0}` is not a chat id")]
    Chat(String),
}

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PhoneNumber {
    type Err = IdError;

    /// Accepts `+`, spaces, dashes, dots and parentheses around the digits.
    fn from_str(input: &str) -> Result<Self, IdError> {
        let trimmed = input.trim();
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if !body.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c)) {
            return Err(IdError::Phone(input.to_owned()));
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if !(7..=15).contains(&digits.len()) {
            return Err(IdError::Phone(input.to_owned()));
        }
        Ok(Self(digits))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        value.parse()
    }
}

impl From<PhoneNumber> for String {
    fn from(phone: PhoneNumber) -> String {
        phone.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group invite, parsed from a `https://chat.whatsapp.com/<code>` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupInvite {
    code: String,
}

impl GroupInvite {
    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn url(&self) -> String {
        format!("https://chat.whatsapp.com/{}", self.code)
    }
}

impl FromStr for GroupInvite {
    type Err = IdError;

    fn from_str(input: &str) -> Result<Self, IdError> {
        let error = || IdError::Invite(input.to_owned());
        let url = url::Url::parse(input.trim()).map_err(|_| error())?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str() != Some("chat.whatsapp.com") {
            return Err(error());
        }
        let code = url.path().trim_matches('/');
        let valid = (8..=64).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid {
            return Err(error());
        }
        Ok(Self { code: code.to_owned() })
    }
}

/// A chat on the network: a direct chat with a phone number, or a group. Stored and
/// serialised as its JID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatId {
    Direct(PhoneNumber),
    /// The group's JID, `<id>@g.us`.
    Group(String),
}

impl ChatId {
    pub fn is_group(&self) -> bool {
        matches!(self, Self::Group(_))
    }
}

impl fmt::Display for ChatId {
    /// The JID form, which is also how portals are keyed in the store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct(phone) => write!(f, "{phone}@s.whatsapp.net"),
            Self::Group(jid) => f.write_str(jid),
        }
    }
}

impl FromStr for ChatId {
    type Err = IdError;

    fn from_str(jid: &str) -> Result<Self, IdError> {
        match jid.split_once('@') {
            Some((user, "s.whatsapp.net")) => Ok(Self::Direct(user.parse()?)),
            Some((id, "g.us")) if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => {
                Ok(Self::Group(jid.to_owned()))
            }
            _ => Err(IdError::Chat(jid.to_owned())),
        }
    }
}

impl Serialize for ChatId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChatId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_or_refused_with_a_reason() {
        assert_eq!("+237 6-98.76(54)321".parse::<PhoneNumber>().unwrap().as_str(), "2376987654321");
        for bad in ["", "123", "12345678901234567", "+237abc", "237 123 456 789 x"] {
            let error = bad.parse::<PhoneNumber>().unwrap_err().to_string();
            assert!(error.contains("not a phone number"), "{bad}: {error}");
        }
    }

    #[test]
    fn invites_come_only_from_chat_whatsapp_com() {
        let invite: GroupInvite = "https://chat.whatsapp.com/AbCdEf123456".parse().unwrap();
        assert_eq!(invite.code(), "AbCdEf123456");
        assert_eq!(invite.url(), "https://chat.whatsapp.com/AbCdEf123456");
        for bad in [
            "https://evil.com/AbCdEf123456",
            "chat.whatsapp.com/AbCdEf123456",
            "https://chat.whatsapp.com/",
            "https://chat.whatsapp.com/ab$cd",
        ] {
            assert!(bad.parse::<GroupInvite>().is_err(), "{bad}");
        }
    }

    #[test]
    fn chat_ids_round_trip_through_jids() {
        for jid in ["237123456789@s.whatsapp.net", "120363025@g.us"] {
            assert_eq!(jid.parse::<ChatId>().unwrap().to_string(), jid);
        }
        assert!("x@elsewhere".parse::<ChatId>().is_err());
    }
}
