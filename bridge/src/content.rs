//! Matrix event content for network messages, both ways. Pure: files are already in
//! the media repository (their `mxc://` URI is given) or still to be downloaded (their
//! URI is returned), so every mapping here is testable without a homeserver.

use std::time::Duration;

use serde_json::{Value, json};

use ruma::UserId;

use crate::core::BridgeError;
use crate::media;
use crate::network::{Media, MediaKind, ReceiptKind};
use crate::outbox::NETWORK_ID_FIELD;

/// The event type of delivery and read reports on sent messages, which the API forwards.
pub const MESSAGE_STATUS: &str = "fi.mxgate.message_status";

/// One Matrix event to send: its type and content.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixEvent {
    pub event_type: &'static str,
    pub content: Value,
}

/// MSC3245: an audio event that is a voice message.
const VOICE: &str = "org.matrix.msc3245.voice";
/// MSC1767: extensible audio details, where voice clients read the duration.
const EXTENSIBLE_AUDIO: &str = "org.matrix.msc1767.audio";

/// A new message: `m.sticker` for a sticker, `m.room.message` otherwise. `media` is the
/// file with its `mxc://` URI; `reply_to` the Matrix event it quotes.
pub fn message(text: Option<&str>, media: Option<(&Media, &str)>, reply_to: Option<&str>) -> MatrixEvent {
    let mut event = match media {
        Some((media, mxc)) => file(text, media, mxc),
        None => MatrixEvent {
            event_type: "m.room.message",
            content: json!({ "msgtype": "m.text", "body": text.unwrap_or_default() }),
        },
    };
    if let Some(replied) = reply_to {
        event.content["m.relates_to"] = json!({ "m.in_reply_to": { "event_id": replied } });
    }
    event
}

fn file(caption: Option<&str>, media: &Media, mxc: &str) -> MatrixEvent {
    // Without a caption the body is the file's name; with one, `filename` keeps the name (MSC2530).
    let body = caption.unwrap_or(&media.file_name);
    let info = info(media);
    if media.kind == MediaKind::Sticker {
        return MatrixEvent { event_type: "m.sticker", content: json!({ "body": body, "url": mxc, "info": info }) };
    }
    let mut content = json!({
        "msgtype": msgtype(media.kind),
        "body": body,
        "filename": media.file_name,
        "url": mxc,
        "info": info,
    });
    if media.kind == MediaKind::Voice {
        content[VOICE] = json!({});
        if let Some(duration) = media.duration {
            content[EXTENSIBLE_AUDIO] = json!({ "duration": duration.as_millis() as u64 });
        }
    }
    MatrixEvent { event_type: "m.room.message", content }
}

fn msgtype(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image | MediaKind::Sticker => "m.image",
        MediaKind::Video => "m.video",
        MediaKind::Audio | MediaKind::Voice => "m.audio",
        MediaKind::Document => "m.file",
    }
}

/// The `info` object: type, size, and the dimensions and duration the sender gave (an
/// image's are read from the file when not).
pub fn info(media: &Media) -> Value {
    let mut info = json!({ "mimetype": media.mime_type, "size": media.data.len() });
    let measured = match (media.width, media.height) {
        (Some(w), Some(h)) => Some((w, h)),
        _ if matches!(media.kind, MediaKind::Image | MediaKind::Sticker) => media::dimensions(&media.data),
        _ => None,
    };
    if let Some((w, h)) = measured {
        info["w"] = w.into();
        info["h"] = h.into();
    }
    if let Some(duration) = media.duration {
        info["duration"] = (duration.as_millis() as u64).into();
    }
    info
}

/// A reaction (`m.annotation`) with `emoji` to the Matrix event `target`.
pub fn reaction(target: &str, emoji: &str) -> MatrixEvent {
    MatrixEvent {
        event_type: "m.reaction",
        content: json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": target, "key": emoji } }),
    }
}

/// A replacement (`m.replace`) of `target`'s text; clients without edits show the starred body.
pub fn edit(target: &str, text: &str) -> MatrixEvent {
    MatrixEvent {
        event_type: "m.room.message",
        content: json!({
            "msgtype": "m.text",
            "body": format!("* {text}"),
            "m.new_content": { "msgtype": "m.text", "body": text },
            "m.relates_to": { "rel_type": "m.replace", "event_id": target },
        }),
    }
}

/// The bot's report that `reader` received or read the sent Matrix event `event_id`
/// (WhatsApp's `network_id`).
pub fn status(event_id: &str, network_id: &str, kind: ReceiptKind, reader: &UserId) -> MatrixEvent {
    MatrixEvent {
        event_type: MESSAGE_STATUS,
        content: json!({
            "m.relates_to": { "rel_type": "m.reference", "event_id": event_id },
            "status": kind.as_str(),
            "reader": reader,
            NETWORK_ID_FIELD: network_id,
        }),
    }
}

/// A Matrix message to send on: its text, its file still in the media repository, and
/// the Matrix event it replies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixMessage {
    pub text: Option<String>,
    pub file: Option<MatrixFile>,
    pub reply_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixFile {
    /// The `mxc://` URI to download.
    pub url: String,
    pub kind: MediaKind,
    pub mime_type: String,
    pub file_name: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<Duration>,
}

impl MatrixFile {
    pub fn into_media(self, data: Vec<u8>) -> Media {
        Media {
            kind: self.kind,
            data,
            mime_type: self.mime_type,
            file_name: self.file_name,
            width: self.width,
            height: self.height,
            duration: self.duration,
        }
    }
}

/// What an event of the portal owner's asks of the network, its targets still Matrix
/// event ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixOutgoing {
    Message(MatrixMessage),
    /// `m.reaction` (an `m.annotation`) on `target` with `key`.
    Reaction {
        target: String,
        key: String,
    },
    /// An `m.replace` of `target` with the new body.
    Edit {
        target: String,
        text: String,
    },
    /// `m.room.redaction` of `target`: a deletion, or a reaction taken back.
    Redaction {
        target: String,
    },
}

/// Reads an event the send queue holds (its `redacts`, for a redaction, in the content).
pub fn parse_outgoing(event_type: &str, content: &Value) -> Result<MatrixOutgoing, BridgeError> {
    let relation = &content["m.relates_to"];
    let target = || {
        let target = relation["event_id"].as_str().or_else(|| content["redacts"].as_str());
        target.map(str::to_owned).ok_or_else(|| BridgeError::Invalid(format!("{event_type} without its event")))
    };
    match event_type {
        "m.reaction" => {
            let key = relation["key"].as_str().filter(|_| relation["rel_type"] == "m.annotation");
            let key = key.ok_or_else(|| BridgeError::Invalid("a reaction without an annotation key".into()))?;
            Ok(MatrixOutgoing::Reaction { target: target()?, key: key.to_owned() })
        }
        "m.room.redaction" => Ok(MatrixOutgoing::Redaction { target: target()? }),
        _ if relation["rel_type"] == "m.replace" => {
            let text = content["m.new_content"]["body"].as_str();
            let text = text.ok_or_else(|| BridgeError::Invalid("an edit without new text".into()))?;
            Ok(MatrixOutgoing::Edit { target: target()?, text: text.to_owned() })
        }
        _ => parse(event_type, content).map(MatrixOutgoing::Message),
    }
}

/// Reads an `m.room.message` or `m.sticker` event's content; an edit is not a message.
pub fn parse(event_type: &str, content: &Value) -> Result<MatrixMessage, BridgeError> {
    if content["m.relates_to"]["rel_type"] == "m.replace" {
        return Err(BridgeError::Invalid("an edit is not a new message".into()));
    }
    let body = content["body"].as_str().map(str::to_owned);
    let kind = match (event_type, content["msgtype"].as_str().unwrap_or_default()) {
        ("m.sticker", _) => Some(MediaKind::Sticker),
        (_, "m.text" | "m.notice" | "m.emote") => None,
        (_, "m.image") => Some(MediaKind::Image),
        (_, "m.video") => Some(MediaKind::Video),
        (_, "m.audio") if content.get(VOICE).is_some() => Some(MediaKind::Voice),
        (_, "m.audio") => Some(MediaKind::Audio),
        (_, "m.file") => Some(MediaKind::Document),
        (_, other) => return Err(BridgeError::Invalid(format!("message type {other} is not bridged"))),
    };
    let reply_to = content["m.relates_to"]["m.in_reply_to"]["event_id"].as_str().map(str::to_owned);
    let Some(kind) = kind else { return Ok(MatrixMessage { text: body, file: None, reply_to }) };

    let url = content["url"].as_str().ok_or_else(|| BridgeError::Invalid("media without url".into()))?;
    let file_name = content["filename"].as_str().map(str::to_owned).or_else(|| body.clone()).unwrap_or_default();
    // With a separate `filename`, `body` is a caption (MSC2530); a sticker's body only describes it.
    let caption = kind != MediaKind::Sticker && content["filename"].is_string() && body.as_deref() != Some(&file_name);
    let info = &content["info"];
    let dimension = |key: &str| info[key].as_u64().and_then(|n| u32::try_from(n).ok());
    let file = MatrixFile {
        url: url.to_owned(),
        kind,
        mime_type: info["mimetype"].as_str().unwrap_or("application/octet-stream").to_owned(),
        file_name,
        width: dimension("w"),
        height: dimension("h"),
        duration: info["duration"]
            .as_u64()
            .or_else(|| content[EXTENSIBLE_AUDIO]["duration"].as_u64())
            .map(Duration::from_millis),
    };
    Ok(MatrixMessage { text: if caption { body } else { None }, file: Some(file), reply_to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_without_dimensions_is_measured() {
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(3, 2).write_to(&mut png, image::ImageFormat::Png).unwrap();
        let media = Media::new(MediaKind::Image, png.into_inner(), "image/png", "dot.png");
        assert_eq!(info(&media), json!({ "mimetype": "image/png", "size": media.data.len(), "w": 3, "h": 2 }));
    }

    #[test]
    fn a_receipt_becomes_a_status_event_referencing_the_sent_message() {
        let reader = UserId::parse("@whatsapp_2376987654321:mxgate.test").unwrap();
        assert_eq!(
            status("$sent", "3EB0SENT", ReceiptKind::Read, &reader),
            MatrixEvent {
                event_type: "fi.mxgate.message_status",
                content: json!({
                    "m.relates_to": { "rel_type": "m.reference", "event_id": "$sent" },
                    "status": "read",
                    "reader": "@whatsapp_2376987654321:mxgate.test",
                    "fi.mxgate.network_message_id": "3EB0SENT",
                }),
            }
        );
    }
}
