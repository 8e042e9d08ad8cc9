//! WhatsApp's protobuf messages ↔ the bridge's network-neutral ones. Pure: the connector
//! downloads a file (`Client::download` on [`MediaSource::downloadable`]) and uploads one
//! (`Client::upload` with [`media_type`]) around these functions.

use std::time::Duration;

use whatsapp_rust::download::{Downloadable, MediaType};
use whatsapp_rust::upload::UploadResponse;
use whatsapp_rust::wacore::proto_helpers::{MessageExt, build_quote_context};
use whatsapp_rust::waproto::buffa::MessageField;
use whatsapp_rust::waproto::whatsapp::{self as wa, message::protocol_message::Type as ProtocolType};

use crate::network::{IncomingBody, Media, MediaKind, NetworkError, OutgoingMessage};

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
/// wrappers; `None` for what the bridge does not show (key distribution, polls, calls…).
pub fn incoming(message: &wa::Message) -> Option<Incoming> {
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
        return Some(without_file(IncomingBody::Message { text: Some(text.to_owned()), media: None, reply_to }));
    }
    let (media, caption, source) = file_of(message)?;
    let text = caption.filter(|caption| !caption.is_empty());
    Some(Incoming { body: IncomingBody::Message { text, media: Some(media), reply_to }, download: Some(source) })
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
    upload: Option<&UploadResponse>,
    quote: Option<Quote<'_>>,
) -> Result<wa::Message, NetworkError> {
    let context = quote.map(|quote| {
        // Without the quoted content WhatsApp still links the reply; the preview is empty.
        let unknown = wa::Message { conversation: Some(String::new()), ..Default::default() };
        build_quote_context(quote.id, quote.sender, quote.message.unwrap_or(&unknown))
    });
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
    let media_key = Some(upload.media_key.to_vec());
    let (file_sha256, file_enc_sha256) = (Some(upload.file_sha256.to_vec()), Some(upload.file_enc_sha256.to_vec()));
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
