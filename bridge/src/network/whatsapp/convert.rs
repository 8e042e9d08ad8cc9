//! WhatsApp's protobuf messages ↔ the bridge's network-neutral ones. Pure: the connector
//! downloads a file (`Client::download` on [`MediaSource::downloadable`]) and uploads one
//! (`Client::upload` with [`media_type`]) around these functions.

use std::time::Duration;

use whatsapp_rust::download::{Downloadable, MediaType};
use whatsapp_rust::upload::UploadResponse;
use whatsapp_rust::wacore::poll::{PollVoteCiphertext, compute_option_hash};
use whatsapp_rust::wacore::proto_helpers::{MessageExt, build_quote_context};
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp::{self as wa, message::protocol_message::Type as ProtocolType};

use super::store::StoredPoll;
use crate::network::{
    ContactCard, IncomingBody, Location, Media, MediaKind, NetworkError, OutgoingMessage, Poll, Structured,
};

/// A WhatsApp message as the bridge shows it, its file (if any) still on WhatsApp's servers.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// A file's `Media::data` stays empty until [`Incoming::downloaded`].
    pub body: IncomingBody,
    pub download: Option<MediaSource>,
}

impl Incoming {
    /// The body with the downloaded file in place.
    pub fn downloaded(mut self, data: Vec<u8>) -> IncomingBody {
        if let IncomingBody::Message { media: Some(media), .. } = &mut self.body {
            media.data = data;
        }
        self.body
    }
}

/// The sub-message that carries a file: where it is and the keys that decrypt it.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaSource {
    Image(wa::message::ImageMessage),
    Video(wa::message::VideoMessage),
    Audio(wa::message::AudioMessage),
    Document(wa::message::DocumentMessage),
    Sticker(wa::message::StickerMessage),
}

impl MediaSource {
    /// What `Client::download` takes.
    pub fn downloadable(&self) -> &dyn Downloadable {
        match self {
            Self::Image(image) => image,
            Self::Video(video) => video,
            Self::Audio(audio) => audio,
            Self::Document(document) => document,
            Self::Sticker(sticker) => sticker,
        }
    }
}

/// What `message` says, once out of its ephemeral, view-once, device-sent or edit
/// wrappers; `None` for what the bridge does not show (key distribution, or a poll
/// vote, which opens only with its poll: [`vote_of`]).
pub fn incoming(message: &wa::Message) -> Option<Incoming> {
    let view_once = message.is_view_once();
    let message = message.get_base_message();
    if let Some(reaction) = message.reaction_message.as_option() {
        let target = reaction.key.as_option()?.id.clone()?;
        let emoji = reaction.text.clone().unwrap_or_default();
        return Some(without_file(IncomingBody::Reaction { target, emoji }));
    }
    if let Some(protocol) = message.protocol_message.as_option() {
        let target = protocol.key.as_option()?.id.clone()?;
        return match protocol.r#type? {
            ProtocolType::REVOKE => Some(without_file(IncomingBody::Delete { target })),
            ProtocolType::MESSAGE_EDIT => {
                let edited = protocol.edited_message.as_option()?;
                let text = edited.text_content().or_else(|| edited.get_caption())?.to_owned();
                Some(without_file(IncomingBody::Edit { target, text }))
            }
            _ => None,
        };
    }
    let reply_to = context_of(message).and_then(|context| context.stanza_id.clone());
    if let Some(text) = message.text_content() {
        let body = IncomingBody::Message { text: Some(text.to_owned()), media: None, reply_to, structured: None };
        return Some(without_file(body));
    }
    if let Some(structured) = structured_of(message) {
        let body = IncomingBody::Message { text: None, media: None, reply_to, structured: Some(structured) };
        return Some(without_file(body));
    }
    let (mut media, caption, source) = file_of(message)?;
    media.view_once = view_once;
    let text = caption.filter(|caption| !caption.is_empty());
    let body = IncomingBody::Message { text, media: Some(media), reply_to, structured: None };
    Some(Incoming { body, download: Some(source) })
}

/// The poll `message` creates, with the secret its votes are encrypted with, made by
/// `creator` (a non-AD JID): what a vote on it needs later.
pub fn poll_of(message: &wa::Message, creator: String) -> Option<StoredPoll> {
    let Some(Structured::Poll(poll)) = structured_of(message.get_base_message()) else { return None };
    let secret = message.message_context_info.as_option()?.message_secret.clone()?;
    Some(StoredPoll { creator, secret, options: poll.options })
}

/// A vote in `message`: the poll it is on (its message id) and the encrypted choice.
pub fn vote_of(message: &wa::Message) -> Option<(&str, PollVoteCiphertext<'_>)> {
    let update = message.get_base_message().poll_update_message.as_option()?;
    let poll_id = update.poll_creation_message_key.as_option()?.id.as_deref()?;
    let vote = update.vote.as_option()?;
    Some((poll_id, PollVoteCiphertext { enc_payload: vote.enc_payload.as_deref()?, enc_iv: vote.enc_iv.as_deref()? }))
}

/// The options of `poll` whose hashes a decrypted vote holds, in the poll's order.
pub fn chosen(poll: &StoredPoll, hashes: &[Vec<u8>]) -> Vec<String> {
    let chose = |option: &&String| hashes.iter().any(|hash| hash.as_slice() == compute_option_hash(option));
    poll.options.iter().filter(chose).cloned().collect()
}

/// A location (a live one as where it started), contact cards or a poll.
fn structured_of(message: &wa::Message) -> Option<Structured> {
    if let Some(location) = message.location_message.as_option() {
        return Some(Structured::Location(Location {
            latitude: location.degrees_latitude?,
            longitude: location.degrees_longitude?,
            name: location.name.clone().filter(|n| !n.is_empty()),
            address: location.address.clone().filter(|a| !a.is_empty()),
        }));
    }
    if let Some(live) = message.live_location_message.as_option() {
        let (latitude, longitude) = (live.degrees_latitude?, live.degrees_longitude?);
        let name = Some("Live location".to_owned());
        return Some(Structured::Location(Location { latitude, longitude, name, address: None }));
    }
    let card = |contact: &wa::message::ContactMessage| ContactCard {
        display_name: contact.display_name.clone().unwrap_or_default(),
        vcard: contact.vcard.clone().unwrap_or_default(),
    };
    if let Some(contact) = message.contact_message.as_option() {
        return Some(Structured::ContactCards { cards: vec![card(contact)] });
    }
    if let Some(contacts) = message.contacts_array_message.as_option() {
        return Some(Structured::ContactCards { cards: contacts.contacts.iter().map(card).collect() });
    }
    let poll = [
        &message.poll_creation_message,
        &message.poll_creation_message_v2,
        &message.poll_creation_message_v3,
        &message.poll_creation_message_v5,
        &message.poll_creation_message_v6,
    ]
    .into_iter()
    .find_map(|poll| poll.as_option())?;
    Some(Structured::Poll(Poll {
        question: poll.name.clone().unwrap_or_default(),
        options: poll.options.iter().filter_map(|o| o.option_name.clone()).collect(),
        // WhatsApp's 0 means "as many as there are".
        multiple: poll.selectable_options_count != Some(1),
    }))
}

fn without_file(body: IncomingBody) -> Incoming {
    Incoming { body, download: None }
}

/// The quote (and mentions) of a message, on whichever sub-message carries it.
fn context_of(message: &wa::Message) -> Option<&wa::ContextInfo> {
    [
        message.extended_text_message.as_option().and_then(|m| m.context_info.as_option()),
        message.image_message.as_option().and_then(|m| m.context_info.as_option()),
        message.video_message.as_option().and_then(|m| m.context_info.as_option()),
        message.ptv_message.as_option().and_then(|m| m.context_info.as_option()),
        message.audio_message.as_option().and_then(|m| m.context_info.as_option()),
        message.document_message.as_option().and_then(|m| m.context_info.as_option()),
        message.sticker_message.as_option().and_then(|m| m.context_info.as_option()),
        message.location_message.as_option().and_then(|m| m.context_info.as_option()),
        message.contact_message.as_option().and_then(|m| m.context_info.as_option()),
        message.contacts_array_message.as_option().and_then(|m| m.context_info.as_option()),
    ]
    .into_iter()
    .flatten()
    .next()
}

/// The file a message carries, described as far as its sub-message says, with its caption.
fn file_of(message: &wa::Message) -> Option<(Media, Option<String>, MediaSource)> {
    let seconds = |seconds: Option<u32>| seconds.filter(|s| *s > 0).map(|s| Duration::from_secs(s.into()));
    if let Some(image) = message.image_message.as_option() {
        let mut media = described(MediaKind::Image, image.mimetype.as_deref(), "image/jpeg", None);
        (media.width, media.height) = (image.width, image.height);
        return Some((media, image.caption.clone(), MediaSource::Image(image.clone())));
    }
    if let Some(video) = message.video_message.as_option().or_else(|| message.ptv_message.as_option()) {
        let mut media = described(MediaKind::Video, video.mimetype.as_deref(), "video/mp4", None);
        (media.width, media.height, media.duration) = (video.width, video.height, seconds(video.seconds));
        return Some((media, video.caption.clone(), MediaSource::Video(video.clone())));
    }
    if let Some(audio) = message.audio_message.as_option() {
        let kind = if audio.ptt == Some(true) { MediaKind::Voice } else { MediaKind::Audio };
        let mut media = described(kind, audio.mimetype.as_deref(), "audio/ogg; codecs=opus", None);
        media.duration = seconds(audio.seconds);
        return Some((media, None, MediaSource::Audio(audio.clone())));
    }
    if let Some(document) = message.document_message.as_option() {
        let name = document.file_name.as_deref().or(document.title.as_deref()).filter(|n| !n.is_empty());
        let media = described(MediaKind::Document, document.mimetype.as_deref(), "application/octet-stream", name);
        return Some((media, document.caption.clone(), MediaSource::Document(document.clone())));
    }
    if let Some(sticker) = message.sticker_message.as_option() {
        let mut media = described(MediaKind::Sticker, sticker.mimetype.as_deref(), "image/webp", None);
        (media.width, media.height) = (sticker.width, sticker.height);
        return Some((media, None, MediaSource::Sticker(sticker.clone())));
    }
    None
}

/// A file not yet downloaded; WhatsApp names only documents, so the others get a name
/// from their kind and type, as Matrix clients need one to save the file.
fn described(kind: MediaKind, mime_type: Option<&str>, fallback: &str, name: Option<&str>) -> Media {
    let mime_type = mime_type.filter(|m| !m.is_empty()).unwrap_or(fallback);
    let file_name = match name {
        Some(name) => name.to_owned(),
        None => format!("{}.{}", kind.as_str(), extension(mime_type)),
    };
    Media::new(kind, Vec::new(), mime_type, file_name)
}

fn extension(mime_type: &str) -> &'static str {
    match mime_type.split(';').next().unwrap_or_default().trim() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/mp4" | "audio/aac" => "m4a",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// How `Client::upload` encrypts a file of `kind` (voice notes are audio to WhatsApp's servers).
pub fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio | MediaKind::Voice => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// Where `Client::upload` put a file and the keys to fetch it: its `UploadResponse`,
/// which only whatsapp-rust can build, in a form tests can build too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: Vec<u8>,
    pub file_sha256: Vec<u8>,
    pub file_enc_sha256: Vec<u8>,
    pub file_length: u64,
    pub media_key_timestamp: i64,
    pub streaming_sidecar: Option<Vec<u8>>,
}

impl From<UploadResponse> for Uploaded {
    fn from(upload: UploadResponse) -> Self {
        Self {
            url: upload.url,
            direct_path: upload.direct_path,
            media_key: upload.media_key.to_vec(),
            file_sha256: upload.file_sha256.to_vec(),
            file_enc_sha256: upload.file_enc_sha256.to_vec(),
            file_length: upload.file_length,
            media_key_timestamp: upload.media_key_timestamp,
            streaming_sidecar: upload.streaming_sidecar,
        }
    }
}

/// The message a reply quotes, as WhatsApp wants it: its id, its sender's JID and, when
/// the connector still has it, its content (WhatsApp shows it above the reply).
#[derive(Debug, Clone, Copy)]
pub struct Quote<'a> {
    pub id: &'a str,
    pub sender: &'a str,
    pub message: Option<&'a wa::Message>,
}

/// `message` as WhatsApp carries it; `upload` is where its file went. WhatsApp has no
/// caption on audio or stickers, so text sent with those is not part of the result.
pub fn outgoing(
    message: &OutgoingMessage,
    upload: Option<&Uploaded>,
    quote: Option<Quote<'_>>,
) -> Result<wa::Message, NetworkError> {
    let mut context = quote.map(|quote| {
        // Without the quoted content WhatsApp still links the reply; the preview is empty.
        let unknown = wa::Message { conversation: Some(String::new()), ..Default::default() };
        build_quote_context(quote.id, quote.sender, quote.message.unwrap_or(&unknown))
    });
    if message.forwarded {
        let forwarded = context.get_or_insert_with(wa::ContextInfo::default);
        (forwarded.is_forwarded, forwarded.forwarding_score) = (Some(true), Some(1));
    }
    if let Some(structured) = &message.structured {
        return Ok(structured_message(structured, context));
    }
    let Some(media) = &message.media else {
        let text = message.text.clone().unwrap_or_default();
        return Ok(match context {
            None => wa::Message { conversation: Some(text), ..Default::default() },
            Some(context) => wa::Message {
                extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                    text: Some(text),
                    context_info: MessageField::some(context),
                    ..Default::default()
                }),
                ..Default::default()
            },
        });
    };
    let upload = upload.ok_or_else(|| NetworkError::Refused("the file was not uploaded".into()))?;
    let context_info = context.map(MessageField::some).unwrap_or_default();
    let caption = message.text.clone();
    let seconds = media.duration.and_then(|d| u32::try_from(d.as_secs()).ok());
    let (url, direct_path) = (Some(upload.url.clone()), Some(upload.direct_path.clone()));
    let media_key = Some(upload.media_key.clone());
    let (file_sha256, file_enc_sha256) = (Some(upload.file_sha256.clone()), Some(upload.file_enc_sha256.clone()));
    let (file_length, media_key_timestamp) = (Some(upload.file_length), Some(upload.media_key_timestamp));
    let mimetype = Some(media.mime_type.clone());
    Ok(match media.kind {
        MediaKind::Image => wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                url,
                direct_path,
                media_key,
                file_sha256,
                file_enc_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                caption,
                width: media.width,
                height: media.height,
                view_once: media.view_once.then_some(true),
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Video => wa::Message {
            video_message: MessageField::some(wa::message::VideoMessage {
                url,
                direct_path,
                media_key,
                file_sha256,
                file_enc_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                caption,
                width: media.width,
                height: media.height,
                seconds,
                streaming_sidecar: upload.streaming_sidecar.clone(),
                view_once: media.view_once.then_some(true),
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Audio | MediaKind::Voice => wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                url,
                direct_path,
                media_key,
                file_sha256,
                file_enc_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                seconds,
                ptt: Some(media.kind == MediaKind::Voice),
                streaming_sidecar: upload.streaming_sidecar.clone(),
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Document => wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                url,
                direct_path,
                media_key,
                file_sha256,
                file_enc_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                caption,
                file_name: Some(media.file_name.clone()),
                title: Some(media.file_name.clone()),
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                url,
                direct_path,
                media_key,
                file_sha256,
                file_enc_sha256,
                file_length,
                media_key_timestamp,
                mimetype,
                width: media.width,
                height: media.height,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
    })
}

/// A location, contact cards or a poll as WhatsApp carries them. A poll carries the
/// secret its voters encrypt their votes with.
fn structured_message(structured: &Structured, context: Option<wa::ContextInfo>) -> wa::Message {
    let context_info = context.map(MessageField::some).unwrap_or_default();
    let contact = |card: &ContactCard, context_info| wa::message::ContactMessage {
        display_name: Some(card.display_name.clone()),
        vcard: Some(card.vcard.clone()),
        context_info,
        ..Default::default()
    };
    match structured {
        Structured::Location(location) => wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(location.latitude),
                degrees_longitude: Some(location.longitude),
                name: location.name.clone(),
                address: location.address.clone(),
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        Structured::ContactCards { cards } if cards.len() == 1 => {
            wa::Message { contact_message: MessageField::some(contact(&cards[0], context_info)), ..Default::default() }
        }
        Structured::ContactCards { cards } => wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some(format!("{} contacts", cards.len())),
                contacts: cards.iter().map(|card| contact(card, MessageField::none())).collect(),
                context_info,
            }),
            ..Default::default()
        },
        Structured::Poll(poll) => {
            let creation = wa::message::PollCreationMessage {
                name: Some(poll.question.clone()),
                options: poll
                    .options
                    .iter()
                    .map(|option| wa::message::poll_creation_message::Option {
                        option_name: Some(option.clone()),
                        ..Default::default()
                    })
                    .collect(),
                selectable_options_count: Some(if poll.multiple { 0 } else { 1 }),
                context_info,
                ..Default::default()
            };
            let secret = Some(rand::random::<[u8; 32]>().to_vec());
            let context = wa::MessageContextInfo { message_secret: secret, ..Default::default() };
            // As WhatsApp Web: v3 for a single choice, the first form for several.
            let mut message = wa::Message { message_context_info: MessageField::some(context), ..Default::default() };
            match poll.multiple {
                true => message.poll_creation_message = MessageField::some(creation),
                false => message.poll_creation_message_v3 = MessageField::some(creation),
            }
            message
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use whatsapp_rust::waproto::whatsapp::message::{
        AudioMessage, DeviceSentMessage, DocumentMessage, ExtendedTextMessage, FutureProofMessage, ImageMessage,
        ProtocolMessage, ReactionMessage, StickerMessage, VideoMessage,
    };

    use super::*;
    use crate::content::{self, MatrixEvent};

    const MXC: &str = "mxc://mxgate.test/AbCdEf";
    const CONTACT_JID: &str = "2376987654321@s.whatsapp.net";

    /// The fields every media sub-message carries as WhatsApp sends them.
    struct Keys {
        url: String,
        direct_path: String,
        media_key: Vec<u8>,
        file_sha256: Vec<u8>,
        file_enc_sha256: Vec<u8>,
    }

    fn keys(name: &str) -> Keys {
        Keys {
            url: format!("https://mmg.whatsapp.net/v/t62.7118-24/{name}.enc"),
            direct_path: format!("/v/t62.7118-24/{name}.enc?ccb=11-4"),
            media_key: vec![7; 32],
            file_sha256: vec![1; 32],
            file_enc_sha256: vec![2; 32],
        }
    }

    fn uploaded() -> Uploaded {
        let keys = keys("uploaded");
        Uploaded {
            url: keys.url,
            direct_path: keys.direct_path,
            media_key: keys.media_key,
            file_sha256: keys.file_sha256,
            file_enc_sha256: keys.file_enc_sha256,
            file_length: 4,
            media_key_timestamp: 1_795_240_000,
            streaming_sidecar: Some(vec![9; 10]),
        }
    }

    fn wrapped(message: wa::Message) -> MessageField<FutureProofMessage> {
        MessageField::some(FutureProofMessage { message: MessageField::some(message) })
    }

    fn key(id: &str) -> MessageField<wa::MessageKey> {
        MessageField::some(wa::MessageKey {
            remote_jid: Some(CONTACT_JID.into()),
            from_me: Some(true),
            id: Some(id.into()),
            participant: None,
        })
    }

    /// WhatsApp → neutral, with the file downloaded as `data`.
    fn received(message: &wa::Message, data: &[u8]) -> IncomingBody {
        let incoming = incoming(message).expect("the message is shown");
        match incoming.download {
            Some(_) => incoming.downloaded(data.to_vec()),
            None => incoming.body,
        }
    }

    /// Neutral → the Matrix event the bridge sends for a new message.
    fn matrix(body: &IncomingBody, reply_event: Option<&str>) -> MatrixEvent {
        let IncomingBody::Message { text, media, structured, .. } = body else { panic!("not a new message: {body:?}") };
        content::message(text.as_deref(), media.as_ref().map(|m| (m, MXC)), structured.as_ref(), reply_event)
    }

    /// Matrix → neutral (the file downloaded as `data`, the reply mapped to `reply_to`) → WhatsApp.
    fn sent(
        event_type: &str,
        content: Value,
        data: &[u8],
        reply_to: Option<&str>,
        quote: Option<Quote>,
    ) -> wa::Message {
        let parsed = content::parse(event_type, &content).expect("the content is bridged");
        let message = OutgoingMessage {
            text: parsed.text,
            media: parsed.file.map(|file| file.into_media(data.to_vec())),
            reply_to: reply_to.map(str::to_owned),
            structured: parsed.structured,
            forwarded: parsed.forwarded,
        };
        let upload = message.media.as_ref().map(|_| uploaded());
        outgoing(&message, upload.as_ref(), quote).expect("the message converts")
    }

    #[test]
    fn a_conversation_is_a_text_message_both_ways() {
        let wa = wa::Message { conversation: Some("Good morning".into()), ..Default::default() };
        let body = received(&wa, b"");
        assert_eq!(
            body,
            IncomingBody::Message { text: Some("Good morning".into()), media: None, reply_to: None, structured: None }
        );
        assert_eq!(
            matrix(&body, None),
            MatrixEvent {
                event_type: "m.room.message",
                content: json!({ "msgtype": "m.text", "body": "Good morning" })
            }
        );

        let back = sent("m.room.message", json!({ "msgtype": "m.text", "body": "Good morning" }), b"", None, None);
        assert_eq!(back, wa);
    }

    #[test]
    fn a_quoted_reply_becomes_an_in_reply_to_relation_and_back() {
        let quoted = wa::Message { conversation: Some("Are you coming?".into()), ..Default::default() };
        let wa = wa::Message {
            extended_text_message: MessageField::some(ExtendedTextMessage {
                text: Some("Yes".into()),
                context_info: MessageField::some(wa::ContextInfo {
                    stanza_id: Some("3EB0QUOTED".into()),
                    participant: Some(CONTACT_JID.into()),
                    quoted_message: MessageField::some(quoted.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&wa, b"");
        assert_eq!(
            body,
            IncomingBody::Message {
                text: Some("Yes".into()),
                media: None,
                reply_to: Some("3EB0QUOTED".into()),
                structured: None,
            }
        );
        assert_eq!(
            matrix(&body, Some("$quoted")).content,
            json!({ "msgtype": "m.text", "body": "Yes", "m.relates_to": { "m.in_reply_to": { "event_id": "$quoted" } } })
        );

        let content = json!({
            "msgtype": "m.text", "body": "Yes",
            "m.relates_to": { "m.in_reply_to": { "event_id": "$quoted" } },
        });
        assert_eq!(content::parse("m.room.message", &content).unwrap().reply_to.as_deref(), Some("$quoted"));
        let quote = Quote { id: "3EB0QUOTED", sender: CONTACT_JID, message: Some(&quoted) };
        assert_eq!(sent("m.room.message", content.clone(), b"", Some("3EB0QUOTED"), Some(quote)), wa);

        let unknown = Quote { id: "3EB0QUOTED", sender: CONTACT_JID, message: None };
        let back = sent("m.room.message", content, b"", Some("3EB0QUOTED"), Some(unknown));
        let context = back.extended_text_message.as_option().unwrap().context_info.as_option().unwrap();
        assert_eq!(context.stanza_id.as_deref(), Some("3EB0QUOTED"));
        assert_eq!(context.participant.as_deref(), Some(CONTACT_JID));
        assert_eq!(context.quoted_message.as_option().unwrap().conversation.as_deref(), Some(""));
    }

    #[test]
    fn an_ephemeral_image_with_a_caption_becomes_m_image_and_back() {
        let keys = keys("image");
        let image = ImageMessage {
            url: Some(keys.url.clone()),
            mimetype: Some("image/jpeg".into()),
            caption: Some("Our photo".into()),
            file_sha256: Some(keys.file_sha256.clone()),
            file_length: Some(4),
            height: Some(480),
            width: Some(640),
            media_key: Some(keys.media_key.clone()),
            file_enc_sha256: Some(keys.file_enc_sha256.clone()),
            direct_path: Some(keys.direct_path.clone()),
            media_key_timestamp: Some(1_795_240_000),
            jpeg_thumbnail: Some(vec![0xff, 0xd8]),
            ..Default::default()
        };
        let wa = wa::Message {
            ephemeral_message: wrapped(wa::Message {
                image_message: MessageField::some(image.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let converted = incoming(&wa).unwrap();
        assert_eq!(converted.download, Some(MediaSource::Image(image.clone())));
        let download = converted.download.as_ref().unwrap().downloadable();
        assert_eq!(download.direct_path(), Some(keys.direct_path.as_str()));
        assert_eq!(download.media_key(), Some(keys.media_key.as_slice()));
        assert_eq!(download.app_info(), MediaType::Image);

        let body = converted.downloaded(b"JPEG".to_vec());
        assert_eq!(
            matrix(&body, None),
            MatrixEvent {
                event_type: "m.room.message",
                content: json!({
                    "msgtype": "m.image",
                    "body": "Our photo",
                    "filename": "image.jpg",
                    "url": MXC,
                    "info": { "mimetype": "image/jpeg", "size": 4, "w": 640, "h": 480 },
                }),
            }
        );

        let content = json!({
            "msgtype": "m.image", "body": "Our photo", "filename": "photo.jpg", "url": MXC,
            "info": { "mimetype": "image/jpeg", "size": 4, "w": 640, "h": 480 },
        });
        let back = sent("m.room.message", content, b"JPEG", None, None);
        let upload = uploaded();
        let expected = ImageMessage {
            url: Some(upload.url.clone()),
            direct_path: Some(upload.direct_path.clone()),
            media_key: Some(upload.media_key.clone()),
            file_sha256: Some(upload.file_sha256.clone()),
            file_enc_sha256: Some(upload.file_enc_sha256.clone()),
            file_length: Some(4),
            media_key_timestamp: Some(1_795_240_000),
            mimetype: Some("image/jpeg".into()),
            caption: Some("Our photo".into()),
            width: Some(640),
            height: Some(480),
            ..Default::default()
        };
        assert_eq!(back, wa::Message { image_message: MessageField::some(expected), ..Default::default() });
    }

    #[test]
    fn a_view_once_video_becomes_m_video_with_its_duration_and_back() {
        let keys = keys("video");
        let video = VideoMessage {
            url: Some(keys.url),
            mimetype: Some("video/mp4".into()),
            file_sha256: Some(keys.file_sha256),
            file_length: Some(6),
            seconds: Some(12),
            media_key: Some(keys.media_key),
            height: Some(720),
            width: Some(1280),
            file_enc_sha256: Some(keys.file_enc_sha256),
            direct_path: Some(keys.direct_path),
            view_once: Some(true),
            ..Default::default()
        };
        let wa = wa::Message {
            view_once_message_v2: wrapped(wa::Message {
                video_message: MessageField::some(video.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(incoming(&wa).unwrap().download, Some(MediaSource::Video(video)));
        let body = received(&wa, b"MP4MP4");
        assert_eq!(
            matrix(&body, None).content,
            json!({
                "msgtype": "m.video",
                "body": "video.mp4",
                "filename": "video.mp4",
                "url": MXC,
                "info": { "mimetype": "video/mp4", "size": 6, "w": 1280, "h": 720, "duration": 12000 },
                "fi.mxgate.view_once": true,
            })
        );

        let content = json!({
            "msgtype": "m.video", "body": "clip.mp4", "filename": "clip.mp4", "url": MXC,
            "info": { "mimetype": "video/mp4", "size": 6, "w": 1280, "h": 720, "duration": 12400 },
            "fi.mxgate.view_once": true,
        });
        let back = sent("m.room.message", content, b"MP4MP4", None, None);
        let video = back.video_message.as_option().expect("a video message");
        assert_eq!(video.mimetype.as_deref(), Some("video/mp4"));
        assert_eq!((video.width, video.height, video.seconds), (Some(1280), Some(720), Some(12)));
        assert_eq!(video.caption, None);
        assert_eq!(video.direct_path.as_deref(), Some(uploaded().direct_path.as_str()));
        assert_eq!(video.streaming_sidecar, uploaded().streaming_sidecar);
        assert_eq!(video.view_once, Some(true));
    }

    #[test]
    fn a_vote_opens_with_its_polls_secret_and_names_the_options_chosen() {
        use whatsapp_rust::wacore::poll::encrypt_poll_vote_with_secret;
        let poll =
            Poll { question: "Day?".into(), options: vec!["Mon".into(), "Tue".into(), "Wed".into()], multiple: true };
        let creation = structured_message(&Structured::Poll(poll), None);
        let stored = poll_of(&creation, "237600000001@s.whatsapp.net".into()).expect("a poll with its secret");
        assert_eq!(stored.options, ["Mon", "Tue", "Wed"]);
        let (voter, poll_id) = ("237698700001@s.whatsapp.net", "3EB0POLL");
        let hashes = ["Wed", "Mon"].map(|o| compute_option_hash(o).to_vec());
        let (enc_payload, iv) =
            encrypt_poll_vote_with_secret(&hashes, &stored.secret, poll_id, &stored.creator, voter).unwrap();
        let vote = wa::Message {
            poll_update_message: MessageField::some(wa::message::PollUpdateMessage {
                poll_creation_message_key: MessageField::some(wa::MessageKey {
                    id: Some(poll_id.into()),
                    ..Default::default()
                }),
                vote: MessageField::some(wa::message::PollEncValue {
                    enc_payload: Some(enc_payload),
                    enc_iv: Some(iv.to_vec()),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(incoming(&vote), None, "a vote opens only with its poll");
        let (id, ciphertext) = vote_of(&vote).expect("a vote");
        assert_eq!(id, poll_id);
        let opened = whatsapp_rust::wacore::poll::decrypt_poll_vote_with_secret(
            ciphertext,
            &stored.secret,
            poll_id,
            &stored.creator,
            voter,
        )
        .unwrap();
        assert_eq!(chosen(&stored, &opened), ["Mon", "Wed"], "in the poll's order");
    }

    #[test]
    fn a_location_contact_cards_and_a_poll_cross_both_ways() {
        let location = wa::Message {
            location_message: MessageField::some(wa::message::LocationMessage {
                degrees_latitude: Some(4.0511),
                degrees_longitude: Some(9.7679),
                name: Some("Douala Grand Mall".into()),
                address: Some("Boulevard de la Liberté".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&location, b"");
        let event = matrix(&body, None);
        assert_eq!(event.content["msgtype"], "m.location");
        assert_eq!(event.content["geo_uri"], "geo:4.0511,9.7679");
        assert_eq!(sent(event.event_type, event.content, b"", None, None), location);

        let card = "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nTEL;waid=237677777777:+237677777777\nEND:VCARD";
        let cards = wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some("2 contacts".into()),
                contacts: ["Ada", "Bob"]
                    .map(|name| wa::message::ContactMessage {
                        display_name: Some(name.into()),
                        vcard: Some(card.replace("Ada", name)),
                        ..Default::default()
                    })
                    .to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&cards, b"");
        let IncomingBody::Message { structured: Some(Structured::ContactCards { cards: got }), .. } = &body else {
            panic!("not contact cards: {body:?}")
        };
        let file = content::contact_file(got);
        assert_eq!(content::contact_cards(&file.data).as_ref(), Some(got), "the vCard file holds the cards");
        let event =
            content::message(None, Some((&file, MXC)), Some(&Structured::ContactCards { cards: got.clone() }), None);
        assert_eq!(event.content["msgtype"], "m.file");
        assert_eq!(event.content["info"]["mimetype"], "text/vcard");
        assert_eq!(sent(event.event_type, event.content, b"", None, None), cards);

        let poll = wa::Message {
            poll_creation_message_v3: MessageField::some(wa::message::PollCreationMessage {
                name: Some("Lunch?".into()),
                options: ["Ndolé", "Eru"]
                    .map(|o| wa::message::poll_creation_message::Option {
                        option_name: Some(o.into()),
                        ..Default::default()
                    })
                    .to_vec(),
                selectable_options_count: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&poll, b"");
        let event = matrix(&body, None);
        assert_eq!(event.event_type, content::POLL_START);
        assert_eq!(event.content[content::POLL_START]["max_selections"], 1);
        let back = sent(event.event_type, event.content, b"", None, None);
        assert_eq!(back.poll_creation_message_v3, poll.poll_creation_message_v3);
        let secret = back.message_context_info.as_option().and_then(|c| c.message_secret.clone());
        assert_eq!(secret.map(|s| s.len()), Some(32), "voters need the poll's secret");
    }

    #[test]
    fn a_matrix_clients_poll_and_location_are_read_from_their_matrix_form() {
        let poll = json!({
            "org.matrix.msc3381.poll.start": {
                "question": { "org.matrix.msc1767.text": "Where?" },
                "kind": "org.matrix.msc3381.poll.disclosed",
                "max_selections": 2,
                "answers": [{ "id": "a", "org.matrix.msc1767.text": "Here" }, { "id": "b", "org.matrix.msc1767.text": "There" }],
            },
        });
        let back = sent(content::POLL_START, poll, b"", None, None);
        let creation = back.poll_creation_message.as_option().expect("a multiple-choice poll");
        assert_eq!(creation.selectable_options_count, Some(0));
        assert_eq!(
            creation.options.iter().map(|o| o.option_name.clone().unwrap()).collect::<Vec<_>>(),
            ["Here", "There"]
        );

        let location = json!({ "msgtype": "m.location", "body": "Here", "geo_uri": "geo:48.8584,2.2945;u=35" });
        let back = sent("m.room.message", location, b"", None, None);
        let location = back.location_message.as_option().expect("a location");
        assert_eq!((location.degrees_latitude, location.degrees_longitude), (Some(48.8584), Some(2.2945)));
        let out_of_range = json!({ "msgtype": "m.location", "body": "?", "geo_uri": "geo:91,0" });
        assert!(content::parse("m.room.message", &out_of_range).is_err());
    }

    #[test]
    fn a_voice_note_from_another_device_becomes_an_msc3245_voice_message_and_back() {
        let keys = keys("voice");
        let voice = AudioMessage {
            url: Some(keys.url),
            mimetype: Some("audio/ogg; codecs=opus".into()),
            file_sha256: Some(keys.file_sha256),
            file_length: Some(5),
            seconds: Some(7),
            ptt: Some(true),
            media_key: Some(keys.media_key),
            file_enc_sha256: Some(keys.file_enc_sha256),
            direct_path: Some(keys.direct_path),
            waveform: Some(vec![0, 10, 20]),
            ..Default::default()
        };
        let wa = wa::Message {
            device_sent_message: MessageField::some(DeviceSentMessage {
                destination_jid: Some(CONTACT_JID.into()),
                message: MessageField::some(wa::Message {
                    audio_message: MessageField::some(voice.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let converted = incoming(&wa).unwrap();
        assert_eq!(converted.download.as_ref().unwrap().downloadable().app_info(), MediaType::Audio);
        let body = converted.downloaded(b"OggS!".to_vec());
        assert_eq!(
            matrix(&body, None).content,
            json!({
                "msgtype": "m.audio",
                "body": "voice.ogg",
                "filename": "voice.ogg",
                "url": MXC,
                "info": { "mimetype": "audio/ogg; codecs=opus", "size": 5, "duration": 7000 },
                "org.matrix.msc3245.voice": {},
                "org.matrix.msc1767.audio": { "duration": 7000 },
            })
        );

        let content = json!({
            "msgtype": "m.audio", "body": "Voice message", "url": MXC,
            "info": { "mimetype": "audio/ogg; codecs=opus", "size": 5 },
            "org.matrix.msc3245.voice": {},
            "org.matrix.msc1767.audio": { "duration": 7000 },
        });
        let back = sent("m.room.message", content, b"OggS!", None, None);
        let audio = back.audio_message.as_option().expect("an audio message");
        assert_eq!(audio.ptt, Some(true));
        assert_eq!(audio.seconds, Some(7));
        assert_eq!(audio.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(audio.media_key.as_deref(), Some(uploaded().media_key.as_slice()));
    }

    #[test]
    fn an_audio_file_becomes_m_audio_and_back() {
        let keys = keys("audio");
        let wa = wa::Message {
            audio_message: MessageField::some(AudioMessage {
                url: Some(keys.url),
                mimetype: Some("audio/mpeg".into()),
                file_length: Some(3),
                seconds: Some(185),
                ptt: Some(false),
                media_key: Some(keys.media_key),
                direct_path: Some(keys.direct_path),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&wa, b"ID3");
        assert_eq!(
            matrix(&body, None).content,
            json!({
                "msgtype": "m.audio",
                "body": "audio.mp3",
                "filename": "audio.mp3",
                "url": MXC,
                "info": { "mimetype": "audio/mpeg", "size": 3, "duration": 185_000 },
            })
        );

        let content = json!({
            "msgtype": "m.audio", "body": "song.mp3", "filename": "song.mp3", "url": MXC,
            "info": { "mimetype": "audio/mpeg", "size": 3, "duration": 185_000 },
        });
        let back = sent("m.room.message", content, b"ID3", None, None);
        let audio = back.audio_message.as_option().expect("an audio message");
        assert_eq!((audio.ptt, audio.seconds), (Some(false), Some(185)));
    }

    #[test]
    fn a_document_with_a_caption_becomes_m_file_and_back() {
        let keys = keys("document");
        let wa = wa::Message {
            document_with_caption_message: wrapped(wa::Message {
                document_message: MessageField::some(DocumentMessage {
                    url: Some(keys.url),
                    mimetype: Some("application/pdf".into()),
                    title: Some("report".into()),
                    file_length: Some(8),
                    page_count: Some(3),
                    media_key: Some(keys.media_key),
                    file_name: Some("report.pdf".into()),
                    direct_path: Some(keys.direct_path),
                    caption: Some("Q3 figures".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&wa, b"%PDF-1.7");
        assert_eq!(
            matrix(&body, None).content,
            json!({
                "msgtype": "m.file",
                "body": "Q3 figures",
                "filename": "report.pdf",
                "url": MXC,
                "info": { "mimetype": "application/pdf", "size": 8 },
            })
        );

        let content = json!({
            "msgtype": "m.file", "body": "report.pdf", "filename": "report.pdf", "url": MXC,
            "info": { "mimetype": "application/pdf", "size": 8 },
        });
        let back = sent("m.room.message", content, b"%PDF-1.7", None, None);
        let document = back.document_message.as_option().expect("a document message");
        assert_eq!(document.file_name.as_deref(), Some("report.pdf"));
        assert_eq!(document.title.as_deref(), Some("report.pdf"));
        assert_eq!(document.caption, None);
        assert_eq!(document.mimetype.as_deref(), Some("application/pdf"));
        assert_eq!(document.file_length, Some(4), "the length WhatsApp's upload reported");
    }

    #[test]
    fn a_sticker_becomes_an_m_sticker_event_and_back() {
        let keys = keys("sticker");
        let wa = wa::Message {
            sticker_message: MessageField::some(StickerMessage {
                url: Some(keys.url),
                file_sha256: Some(keys.file_sha256),
                file_enc_sha256: Some(keys.file_enc_sha256),
                media_key: Some(keys.media_key),
                mimetype: Some("image/webp".into()),
                height: Some(512),
                width: Some(512),
                direct_path: Some(keys.direct_path),
                file_length: Some(4),
                is_animated: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&wa, b"RIFF");
        assert_eq!(
            matrix(&body, None),
            MatrixEvent {
                event_type: "m.sticker",
                content: json!({
                    "body": "sticker.webp",
                    "url": MXC,
                    "info": { "mimetype": "image/webp", "size": 4, "w": 512, "h": 512 },
                }),
            }
        );

        let content = json!({
            "body": "A cat", "url": MXC, "info": { "mimetype": "image/webp", "size": 4, "w": 256, "h": 256 },
        });
        let back = sent("m.sticker", content, b"RIFF", None, None);
        let sticker = back.sticker_message.as_option().expect("a sticker message");
        assert_eq!((sticker.width, sticker.height), (Some(256), Some(256)));
        assert_eq!(sticker.mimetype.as_deref(), Some("image/webp"));
        assert_eq!(sticker.url.as_deref(), Some(uploaded().url.as_str()));
    }

    #[test]
    fn a_reaction_becomes_an_annotation_and_an_empty_one_takes_it_back() {
        let reaction = |emoji: &str| wa::Message {
            reaction_message: MessageField::some(ReactionMessage {
                key: key("3EB0TARGET"),
                text: Some(emoji.into()),
                sender_timestamp_ms: Some(1_795_240_000_000),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = received(&reaction("👍"), b"");
        assert_eq!(body, IncomingBody::Reaction { target: "3EB0TARGET".into(), emoji: "👍".into() });
        assert_eq!(
            content::reaction("$target", "👍"),
            MatrixEvent {
                event_type: "m.reaction",
                content: json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": "$target", "key": "👍" } }),
            }
        );
        assert_eq!(
            received(&reaction(""), b""),
            IncomingBody::Reaction { target: "3EB0TARGET".into(), emoji: String::new() }
        );
    }

    #[test]
    fn an_edit_becomes_an_m_replace_with_new_content() {
        let edit = |edited: wa::Message| wa::Message {
            edited_message: wrapped(wa::Message {
                protocol_message: MessageField::some(ProtocolMessage {
                    key: key("3EB0TARGET"),
                    r#type: Some(ProtocolType::MESSAGE_EDIT),
                    edited_message: MessageField::some(edited),
                    timestamp_ms: Some(1_795_240_000_000),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = wa::Message { conversation: Some("See you at 8".into()), ..Default::default() };
        let body = received(&edit(text), b"");
        assert_eq!(body, IncomingBody::Edit { target: "3EB0TARGET".into(), text: "See you at 8".into() });
        assert_eq!(
            content::edit("$target", "See you at 8"),
            MatrixEvent {
                event_type: "m.room.message",
                content: json!({
                    "msgtype": "m.text",
                    "body": "* See you at 8",
                    "m.new_content": { "msgtype": "m.text", "body": "See you at 8" },
                    "m.relates_to": { "rel_type": "m.replace", "event_id": "$target" },
                }),
            }
        );

        let caption = wa::Message {
            image_message: MessageField::some(ImageMessage {
                caption: Some("Better caption".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            received(&edit(caption), b""),
            IncomingBody::Edit { target: "3EB0TARGET".into(), text: "Better caption".into() }
        );
    }

    #[test]
    fn a_revoke_deletes_its_target() {
        let wa = wa::Message {
            protocol_message: MessageField::some(ProtocolMessage {
                key: key("3EB0TARGET"),
                r#type: Some(ProtocolType::REVOKE),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(received(&wa, b""), IncomingBody::Delete { target: "3EB0TARGET".into() });
    }

    #[test]
    fn protocol_chatter_and_unsupported_messages_are_not_shown() {
        let setting = wa::Message {
            protocol_message: MessageField::some(ProtocolMessage {
                key: key("3EB0TARGET"),
                r#type: Some(ProtocolType::EPHEMERAL_SETTING),
                ephemeral_expiration: Some(86_400),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(incoming(&setting), None);
        assert_eq!(incoming(&wa::Message::default()), None);
    }

    #[test]
    fn matrix_edits_are_refused_and_files_need_an_upload() {
        let edit = json!({
            "msgtype": "m.text", "body": "* fixed",
            "m.new_content": { "msgtype": "m.text", "body": "fixed" },
            "m.relates_to": { "rel_type": "m.replace", "event_id": "$target" },
        });
        assert!(content::parse("m.room.message", &edit).is_err());
        assert!(content::parse("m.room.message", &json!({ "msgtype": "m.location", "body": "here" })).is_err());

        let message = OutgoingMessage {
            media: Some(Media::new(MediaKind::Image, b"JPEG".to_vec(), "image/jpeg", "a.jpg")),
            ..Default::default()
        };
        assert!(outgoing(&message, None, None).is_err());
    }

    #[test]
    fn voice_notes_upload_as_audio() {
        assert_eq!(media_type(MediaKind::Voice), MediaType::Audio);
        assert_eq!(media_type(MediaKind::Sticker), MediaType::Sticker);
        assert_eq!(media_type(MediaKind::Document), MediaType::Document);
    }
}
