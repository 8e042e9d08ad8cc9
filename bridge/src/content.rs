//! Matrix event content for network messages, both ways. Pure: files are already in
//! the media repository (their `mxc://` URI is given) or still to be downloaded (their
//! URI is returned), so every mapping here is testable without a homeserver.

use std::time::Duration;

use serde_json::{Value, json};

use ruma::UserId;

use crate::core::BridgeError;
use crate::ids::PhoneNumber;
use crate::media;
use crate::network::{ContactCard, GroupChange, Location, Media, MediaKind, Poll, ReceiptKind, Structured};
use crate::outbox::NETWORK_ID_FIELD;

/// The event type of delivery and read reports on sent messages, which the API forwards.
pub const MESSAGE_STATUS: &str = "fi.mxgate.message_status";

/// One Matrix event to send: its type and content.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixEvent {
    pub event_type: &'static str,
    pub content: Value,
}

/// MSC3381: the event type of a poll.
pub const POLL_START: &str = "org.matrix.msc3381.poll.start";
/// What the bridge sends on to the network from a portal (with `m.room.message`, which
/// may also be a command in a management room).
pub const SENT_EVENT_TYPES: [&str; 5] = ["m.sticker", "m.reaction", "m.room.redaction", POLL_START, POLL_RESPONSE];
/// MSC3381: the event type of a vote on a poll.
pub const POLL_RESPONSE: &str = "org.matrix.msc3381.poll.response";
/// A vote's options by name, beside MSC3381's answer ids: what the network said, so a
/// reader need not fetch the poll to know what was chosen.
pub const POLL_CHOICE: &str = "fi.mxgate.poll_choice";
/// A call the account was offered: `{"video", "rejected"}` on the notice that tells it.
pub const CALL: &str = "fi.mxgate.call";

/// The bot's record of a change to a group, beside the state events that show it: who
/// made it and what it was (`group`, a [`GroupChange`]). Matrix clients need not render it.
pub const GROUP_EVENT: &str = "fi.mxgate.group";
/// MSC1767: plain text, where extensible events carry it.
const EXTENSIBLE_TEXT: &str = "org.matrix.msc1767.text";
/// MSC3488: a location's details.
const EXTENSIBLE_LOCATION: &str = "org.matrix.msc3488.location";
/// Contact cards or a poll exactly as the network had them, beside the Matrix form. A
/// location is not kept here: Matrix events cannot hold floats (canonical JSON), so its
/// coordinates live in its `geo:` URI, which keeps them exactly, and its address beside.
const STRUCTURED: &str = "fi.mxgate.structured";
/// A location's address, which `m.location` has no place for.
const ADDRESS: &str = "fi.mxgate.address";
/// An image or video the recipient may open once.
pub const VIEW_ONCE: &str = "fi.mxgate.view_once";
/// A message sent on from another chat; WhatsApp marks it "Forwarded".
const FORWARDED: &str = "fi.mxgate.forwarded";
/// The type of a file of contact cards.
pub const VCARD: &str = "text/vcard";

/// MSC3245: an audio event that is a voice message.
const VOICE: &str = "org.matrix.msc3245.voice";
/// MSC1767: extensible audio details, where voice clients read the duration.
const EXTENSIBLE_AUDIO: &str = "org.matrix.msc1767.audio";

/// A new message: `m.sticker` for a sticker, a poll event for a poll, `m.room.message`
/// otherwise. `media` is the file with its `mxc://` URI (for contact cards, their vCard
/// file, the form Matrix clients can save); `reply_to` the Matrix event it quotes.
pub fn message(
    text: Option<&str>,
    media: Option<(&Media, &str)>,
    structured: Option<&Structured>,
    reply_to: Option<&str>,
) -> MatrixEvent {
    let mut event = match (structured, media) {
        (Some(Structured::Location(location)), _) => location_event(location),
        (Some(Structured::Poll(poll)), _) => poll_event(poll),
        (_, Some((media, mxc))) => file(text, media, mxc),
        (_, None) => MatrixEvent {
            event_type: "m.room.message",
            content: json!({ "msgtype": "m.text", "body": text.unwrap_or_default() }),
        },
    };
    if let Some(structured @ (Structured::ContactCards { .. } | Structured::Poll(_))) = structured {
        event.content[STRUCTURED] = json!(structured);
    }
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
    if media.view_once {
        content[VIEW_ONCE] = json!(true);
    }
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

fn location_event(location: &Location) -> MatrixEvent {
    let uri = format!("geo:{},{}", location.latitude, location.longitude);
    let described = [location.name.as_deref(), location.address.as_deref()].into_iter().flatten();
    let described: Vec<&str> = described.filter(|d| !d.is_empty()).collect();
    let body = match described.is_empty() {
        true => format!("Location: {uri}"),
        false => format!("{} ({uri})", described.join(", ")),
    };
    let mut content = json!({
        "msgtype": "m.location",
        "body": body,
        "geo_uri": uri,
        EXTENSIBLE_LOCATION: { "uri": uri, "description": location.name },
        EXTENSIBLE_TEXT: body,
    });
    if let Some(address) = &location.address {
        content[ADDRESS] = json!(address);
    }
    MatrixEvent { event_type: "m.room.message", content }
}

fn poll_event(poll: &Poll) -> MatrixEvent {
    let listed: Vec<String> = poll.options.iter().enumerate().map(|(n, o)| format!("{}. {o}", n + 1)).collect();
    let body = format!("{}\n{}", poll.question, listed.join("\n"));
    let answers: Vec<Value> =
        poll.options.iter().enumerate().map(|(n, o)| json!({ "id": n.to_string(), EXTENSIBLE_TEXT: o })).collect();
    let max_selections = if poll.multiple { poll.options.len() } else { 1 };
    let content = json!({
        POLL_START: {
            "question": { EXTENSIBLE_TEXT: poll.question, "body": poll.question },
            "kind": "org.matrix.msc3381.poll.disclosed",
            "max_selections": max_selections,
            "answers": answers,
        },
        EXTENSIBLE_TEXT: body,
        "body": body,
    });
    MatrixEvent { event_type: POLL_START, content }
}

/// Contact cards as one vCard file, named for the first.
pub fn contact_file(cards: &[ContactCard]) -> Media {
    let data: Vec<&str> = cards.iter().map(|c| c.vcard.trim_end()).collect();
    let name = cards.first().map(|c| c.display_name.as_str()).filter(|n| !n.is_empty()).unwrap_or("contact");
    let name: String = name.chars().map(|c| if c.is_alphanumeric() || c == ' ' { c } else { '_' }).collect();
    Media::new(MediaKind::Document, (data.join("\r\n") + "\r\n").into_bytes(), VCARD, format!("{name}.vcf"))
}

/// The cards of a vCard file; `None` when it holds none.
pub fn contact_cards(vcf: &[u8]) -> Option<Vec<ContactCard>> {
    let text = String::from_utf8_lossy(vcf);
    let mut cards = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let trimmed = line.trim_end_matches('\r');
        if trimmed.eq_ignore_ascii_case("BEGIN:VCARD") {
            current = Some(vec![trimmed]);
        } else if let Some(lines) = current.as_mut() {
            lines.push(trimmed);
            if trimmed.eq_ignore_ascii_case("END:VCARD") {
                let lines = current.take().unwrap_or_default();
                let name = lines.iter().find_map(|l| {
                    let (key, value) = l.split_once(':')?;
                    key.split(';').next()?.eq_ignore_ascii_case("FN").then(|| value.trim().to_owned())
                });
                cards.push(ContactCard { display_name: name.unwrap_or_default(), vcard: lines.join("\n") });
            }
        }
    }
    (!cards.is_empty()).then_some(cards)
}

/// Whether a file's type says it holds contact cards.
pub fn is_vcard(mime_type: &str) -> bool {
    matches!(mime_type.split(';').next().unwrap_or_default().trim(), VCARD | "text/x-vcard")
}

/// The message `content` (an event of `event_type`) to send again in another chat, marked
/// forwarded: what tied it to its chat (a reply, a thread) and to its network message is
/// left behind. Refused for
/// what is not a message: an edit, a reaction, a deleted message.
pub fn forwarded(event_type: &str, content: &Value) -> Result<MatrixEvent, BridgeError> {
    let event_type = match event_type {
        "m.room.message" => "m.room.message",
        "m.sticker" => "m.sticker",
        POLL_START => POLL_START,
        other => return Err(BridgeError::Invalid(format!("a {other} event is not a message to forward"))),
    };
    if content.as_object().is_none_or(|fields| fields.is_empty()) {
        return Err(BridgeError::Invalid("the message was deleted".into()));
    }
    if content["m.relates_to"]["rel_type"] == "m.replace" {
        return Err(BridgeError::Invalid("an edit is not a message to forward; forward the message".into()));
    }
    let mut content = content.clone();
    if let Some(fields) = content.as_object_mut() {
        // The original's network source stays with it: the copy is a new message.
        fields.remove("m.relates_to");
        fields.remove(crate::SOURCE_FIELD);
        fields.insert(FORWARDED.into(), json!(true));
    }
    Ok(MatrixEvent { event_type, content })
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

/// A vote on the poll `target` (its start event, `poll`): `options` by name, each
/// matched to the poll's answer id. A name the poll does not offer is left out.
pub fn poll_response(target: &str, poll: &Value, options: &[String]) -> MatrixEvent {
    let answers = poll_answers(poll);
    let ids: Vec<&str> = options
        .iter()
        .filter_map(|name| answers.iter().find(|(_, answer)| answer == name).map(|(id, _)| id.as_str()))
        .collect();
    MatrixEvent {
        event_type: POLL_RESPONSE,
        content: json!({
            "m.relates_to": { "rel_type": "m.reference", "event_id": target },
            POLL_RESPONSE: { "answers": ids },
            POLL_CHOICE: options,
        }),
    }
}

/// A poll start event's answers: (id, text) in the poll's order.
pub fn poll_answers(poll: &Value) -> Vec<(String, String)> {
    let answers = poll["content"][POLL_START]["answers"].as_array().map(Vec::as_slice).unwrap_or_default();
    answers
        .iter()
        .filter_map(|a| {
            let text = a[EXTENSIBLE_TEXT].as_str().or_else(|| a["body"].as_str())?;
            Some((a["id"].as_str()?.to_owned(), text.to_owned()))
        })
        .collect()
}

/// A notice that the sender called: WhatsApp calls are not bridged, only told.
pub fn call_notice(video: bool, rejected: bool) -> MatrixEvent {
    let kind = if video { "video" } else { "voice" };
    let body = match rejected {
        true => format!("Missed {kind} call (rejected by mxgate; calls are not bridged)"),
        false => format!("Incoming {kind} call; answer it on the phone (calls are not bridged)"),
    };
    MatrixEvent {
        event_type: "m.room.message",
        content: json!({ "msgtype": "m.notice", "body": body, CALL: { "video": video, "rejected": rejected } }),
    }
}

/// The record of `change`, made by `by`, with a line saying it.
pub fn group_record(change: &GroupChange, by: &PhoneNumber) -> MatrixEvent {
    let what = match change {
        GroupChange::Created { subject, .. } => format!("created the group “{subject}”"),
        GroupChange::Subject { subject } => format!("renamed the group “{subject}”"),
        GroupChange::Description { description: Some(_) } => "changed the group's description".into(),
        GroupChange::Description { description: None } => "removed the group's description".into(),
        GroupChange::Picture { removed: false } => "changed the group's picture".into(),
        GroupChange::Picture { removed: true } => "removed the group's picture".into(),
        GroupChange::Announce { announce: true } => "let only admins send messages".into(),
        GroupChange::Announce { announce: false } => "let every member send messages".into(),
        GroupChange::Locked { locked: true } => "let only admins edit the group's info".into(),
        GroupChange::Locked { locked: false } => "let every member edit the group's info".into(),
        GroupChange::InviteRevoked => "reset the group's invite link".into(),
        GroupChange::Members { action, phones } => {
            let phones: Vec<String> = phones.iter().map(|p| format!("+{p}")).collect();
            format!("{} {}", action.done(), phones.join(", "))
        }
    };
    MatrixEvent {
        event_type: GROUP_EVENT,
        content: json!({ "body": format!("+{by} {what}"), "by": by, "group": change }),
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
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixMessage {
    pub text: Option<String>,
    pub file: Option<MatrixFile>,
    pub reply_to: Option<String>,
    /// A location or a poll (contact cards are a file until it is downloaded).
    pub structured: Option<Structured>,
    /// Sent on from another chat.
    pub forwarded: bool,
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
    pub view_once: bool,
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
            view_once: self.view_once,
        }
    }
}

/// What an event of the portal owner's asks of the network, its targets still Matrix
/// event ids.
#[derive(Debug, Clone, PartialEq)]
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
    /// An MSC3381 vote on the poll `target`: the answer ids now chosen.
    PollVote {
        target: String,
        answers: Vec<String>,
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
        POLL_RESPONSE => {
            let answers = content[POLL_RESPONSE]["answers"].as_array().map(Vec::as_slice).unwrap_or_default();
            let answers = answers.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
            Ok(MatrixOutgoing::PollVote { target: target()?, answers })
        }
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
    let reply_to = content["m.relates_to"]["m.in_reply_to"]["event_id"].as_str().map(str::to_owned);
    let forwarded = content[FORWARDED] == true;
    if let Some(structured) = parse_structured(event_type, content)? {
        return Ok(MatrixMessage { text: None, file: None, reply_to, structured: Some(structured), forwarded });
    }
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
    let Some(kind) = kind else {
        return Ok(MatrixMessage { text: body, file: None, reply_to, structured: None, forwarded });
    };

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
        view_once: content[VIEW_ONCE] == true,
    };
    let text = if caption { body } else { None };
    Ok(MatrixMessage { text, file: Some(file), reply_to, structured: None, forwarded })
}

/// A location (`m.location`) or a poll (MSC3381) as the network sends it: mxgate's own
/// events say it exactly; a Matrix client's are read from their Matrix form.
fn parse_structured(event_type: &str, content: &Value) -> Result<Option<Structured>, BridgeError> {
    if let Some(exact) = content.get(STRUCTURED) {
        let exact = serde_json::from_value(exact.clone());
        return exact.map(Some).map_err(|e| BridgeError::Invalid(format!("unreadable {STRUCTURED}: {e}")));
    }
    if event_type == POLL_START {
        let start = &content[POLL_START];
        let text = |v: &Value| v[EXTENSIBLE_TEXT].as_str().or_else(|| v["body"].as_str()).map(str::to_owned);
        let question = text(&start["question"]).filter(|q| !q.trim().is_empty());
        let question = question.ok_or_else(|| BridgeError::Invalid("a poll without a question".into()))?;
        let answers = start["answers"].as_array().map(Vec::as_slice).unwrap_or_default();
        let options: Vec<String> = answers.iter().filter_map(text).collect();
        if options.len() < 2 {
            return Err(BridgeError::Invalid("a poll needs at least two answers".into()));
        }
        let multiple = start["max_selections"].as_u64().is_some_and(|n| n > 1);
        return Ok(Some(Structured::Poll(Poll { question, options, multiple })));
    }
    if content["msgtype"] != "m.location" {
        return Ok(None);
    }
    let uri = content["geo_uri"].as_str().or_else(|| content[EXTENSIBLE_LOCATION]["uri"].as_str());
    let uri = uri.ok_or_else(|| BridgeError::Invalid("a location without geo_uri".into()))?;
    let (latitude, longitude) = geo(uri)
        .ok_or_else(|| BridgeError::Invalid(format!("{uri} is not a geo: URI with a latitude and longitude")))?;
    let name = content[EXTENSIBLE_LOCATION]["description"].as_str().map(str::to_owned);
    let address = content[ADDRESS].as_str().map(str::to_owned);
    Ok(Some(Structured::Location(Location { latitude, longitude, name, address })))
}

/// `geo:<lat>,<lon>[,<alt>][;params]` (RFC 5870).
fn geo(uri: &str) -> Option<(f64, f64)> {
    let coordinates = uri.strip_prefix("geo:")?.split(';').next()?;
    let mut parts = coordinates.split(',').map(|p| p.trim().parse::<f64>());
    let (latitude, longitude) = (parts.next()?.ok()?, parts.next()?.ok()?);
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)).then_some((latitude, longitude))
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

    /// Canonical JSON, which homeservers require of events, has no floats.
    fn has_float(value: &Value) -> bool {
        match value {
            Value::Number(n) => n.is_f64(),
            Value::Array(items) => items.iter().any(has_float),
            Value::Object(fields) => fields.values().any(has_float),
            _ => false,
        }
    }

    #[test]
    fn a_location_keeps_its_exact_coordinates_without_a_float_in_the_event() {
        let location = Location {
            latitude: -33.856_784_3,
            longitude: 151.215_297_1,
            name: Some("Opera House".into()),
            address: Some("Bennelong Point".into()),
        };
        let event = message(None, None, Some(&Structured::Location(location.clone())), None);
        assert!(!has_float(&event.content), "{}", event.content);
        let parsed = parse(event.event_type, &event.content).unwrap();
        assert_eq!(parsed.structured, Some(Structured::Location(location)));
    }

    #[test]
    fn a_forward_is_a_new_message_without_the_originals_reply_or_source() {
        let original = json!({
            "msgtype": "m.text", "body": "hi",
            "m.relates_to": { "m.in_reply_to": { "event_id": "$q" } },
            "fi.mxgate.source": { "device_id": "237600000001", "network_message_id": "3EB0" },
        });
        let copy = forwarded("m.room.message", &original).unwrap();
        assert_eq!(copy.content, json!({ "msgtype": "m.text", "body": "hi", "fi.mxgate.forwarded": true }));
        assert!(parse(copy.event_type, &copy.content).unwrap().forwarded);
        assert!(forwarded("m.room.message", &json!({})).is_err(), "a deleted message");
        assert!(forwarded("m.reaction", &original).is_err());
    }

    #[test]
    fn a_vote_names_the_polls_answer_ids_and_a_clients_vote_reads_back() {
        let poll = Poll { question: "Day?".into(), options: vec!["Mon".into(), "Tue".into()], multiple: true };
        let start = message(None, None, Some(&Structured::Poll(poll)), None);
        let start = json!({ "type": start.event_type, "content": start.content });
        let chosen = ["Tue".to_owned(), "Sun".to_owned()];
        let vote = poll_response("$poll", &start, &chosen);
        assert_eq!(vote.event_type, POLL_RESPONSE);
        // "Sun" is not an answer of the poll: only its name is kept.
        assert_eq!(vote.content[POLL_RESPONSE], json!({ "answers": ["1"] }));
        assert_eq!(vote.content[POLL_CHOICE], json!(chosen));
        let read = parse_outgoing(POLL_RESPONSE, &vote.content).unwrap();
        assert!(matches!(read, MatrixOutgoing::PollVote { target, answers } if target == "$poll" && answers == ["1"]));
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
