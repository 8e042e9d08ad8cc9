//! Reading what Matrix keeps of a device's chats: the chat list, each chat's history,
//! server-side search and the files messages carry. Answers come from the homeserver as
//! the token's identity sees the portals (the bridge's store only says which rooms are
//! the device's and what was read), in the shape webhooks deliver.

pub mod routes;
pub mod service;

use mxgate_bridge::ids::{ChatId, PhoneNumber};

use crate::error::{ApiError, ApiResult};

/// A chat as the API takes it: a contact's phone number or a chat JID (`chat_id` of a
/// webhook payload: `<phone>@s.whatsapp.net` or `<id>@g.us`).
pub fn parse_chat(raw: &str) -> ApiResult<ChatId> {
    if let Ok(phone) = raw.parse::<PhoneNumber>() {
        return Ok(ChatId::Direct(phone));
    }
    raw.parse().map_err(|_| ApiError::unprocessable("chat is a phone number or a chat JID (…@s.whatsapp.net, …@g.us)"))
}

/// Where the chat list goes on from: the last chat of a page (its activity and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatCursor {
    pub last_ms: i64,
    pub chat_id: String,
}

impl std::str::FromStr for ChatCursor {
    type Err = ApiError;

    fn from_str(text: &str) -> ApiResult<Self> {
        let bad = || ApiError::BadRequest("cursor is the next_cursor of an earlier page".into());
        let (last_ms, chat_id) = text.split_once(':').ok_or_else(bad)?;
        let last_ms = last_ms.parse().map_err(|_| bad())?;
        parse_chat(chat_id).map_err(|_| bad())?;
        Ok(Self { last_ms, chat_id: chat_id.to_owned() })
    }
}

impl std::fmt::Display for ChatCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.last_ms, self.chat_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_refuses_anything_else() {
        let cursor = ChatCursor { last_ms: 1_796_000_000_123, chat_id: "120363001@g.us".into() };
        assert_eq!(cursor.to_string().parse::<ChatCursor>().unwrap(), cursor);
        for bad in ["", "12", "x:237698700451@s.whatsapp.net", "12:not a chat"] {
            assert!(bad.parse::<ChatCursor>().is_err(), "{bad}");
        }
    }
}
