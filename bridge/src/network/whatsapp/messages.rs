//! Messages between a session's client and the bridge's network-neutral types.

use whatsapp_rust::Jid;
use whatsapp_rust::types::events::{InboundMessage, Receipt};
use whatsapp_rust::waproto::whatsapp as wa;

use super::session::Session;
use super::{Inner, NetworkError};
use crate::ids::{ChatId, PhoneNumber};
use crate::network::{IncomingMessage, Media, NetworkEvent, OutgoingMessage};

/// The phone number behind a JID; WhatsApp may address people by LID, with the number
/// beside it.
fn phone_of(jid: &Jid, alt: Option<&Jid>) -> Option<PhoneNumber> {
    [Some(jid), alt].into_iter().flatten().filter(|j| j.is_pn()).find_map(|j| j.user.parse().ok())
}

impl Inner {
    pub(super) async fn incoming(&self, session: &Session, inbound: &InboundMessage) {
        let info = &inbound.info;
        let source = &info.source;
        if source.is_from_me {
            return;
        }
        let Some(sender) = phone_of(&source.sender, source.sender_alt.as_ref()) else {
            tracing::debug!(device = %session.account, "message from an address without a number skipped");
            return;
        };
        let chat = if source.is_group { ChatId::Group(source.chat.to_string()) } else { ChatId::Direct(sender.clone()) };
        let text = text_of(&inbound.message);
        if text.is_none() {
            tracing::debug!(device = %session.account, message = %info.id, "message kind not bridged");
            return;
        }
        let message = IncomingMessage {
            account: session.account.clone(),
            chat,
            sender,
            sender_name: Some(info.push_name.clone()).filter(|n| !n.is_empty()),
            id: info.id.to_string(),
            text,
            media: None,
            reply_to: None,
        };
        let _ = self.events.send(NetworkEvent::Message(Box::new(message)));
    }

    pub(super) fn receipt(&self, _session: &Session, _receipt: &Receipt) {}

    pub(super) async fn outgoing(
        &self,
        _session: &Session,
        _chat: &ChatId,
        message: OutgoingMessage,
    ) -> Result<wa::Message, NetworkError> {
        if message.media.is_some() {
            return Err(NetworkError::Refused("files are not sent on WhatsApp yet".into()));
        }
        Ok(wa::Message { conversation: message.text, ..Default::default() })
    }
}

fn text_of(message: &wa::Message) -> Option<String> {
    message.conversation.clone().or_else(|| message.extended_text_message.as_option().and_then(|m| m.text.clone()))
}

impl Media {
    /// A profile or group picture.
    pub fn picture(data: Vec<u8>, mime_type: String) -> Self {
        let extension = mime_type.rsplit('/').next().unwrap_or("jpeg").to_owned();
        Self { data, mime_type, file_name: format!("picture.{extension}") }
    }
}
