//! The file a message carries: uploaded, given inline or fetched from a URL, and checked
//! against the kind it is sent as.

use mxgate_bridge::network::{Media, MediaKind};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A file attached to a message.
pub struct Attachment {
    pub data: Vec<u8>,
    pub file_name: String,
    pub mime_type: String,
}

impl Attachment {
    /// The file as `kind` (by its type when not given), refused when the two disagree:
    /// WhatsApp shows a sticker only from WebP and plays a voice note only from OGG/Opus.
    /// Nothing is converted, so what the recipient gets is what was sent.
    pub fn into_media(self, kind: Option<MediaKind>, view_once: bool) -> ApiResult<Media> {
        let essence = self.mime_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let kind = kind.unwrap_or_else(|| MediaKind::of_mime_type(&essence));
        // What the file's type should have been, when it does not fit.
        let wanted = match kind {
            MediaKind::Image => (!essence.starts_with("image/")).then_some("an image/* type"),
            MediaKind::Video => (!essence.starts_with("video/")).then_some("a video/* type"),
            MediaKind::Audio => (!essence.starts_with("audio/")).then_some("an audio/* type"),
            MediaKind::Voice => {
                (essence != "audio/ogg").then_some("audio/ogg (OGG/Opus; other audio is not converted)")
            }
            MediaKind::Sticker => (essence != "image/webp").then_some("image/webp"),
            MediaKind::Document => None,
        };
        if let Some(wanted) = wanted {
            let kind = kind.as_str();
            return Err(ApiError::unprocessable(format!("kind `{kind}` needs {wanted}, and the file is {essence}")));
        }
        if view_once && !matches!(kind, MediaKind::Image | MediaKind::Video) {
            return Err(ApiError::unprocessable("view_once goes with an image or a video only"));
        }
        let mut media = Media::new(kind, self.data, self.mime_type, self.file_name);
        media.view_once = view_once;
        Ok(media)
    }

    /// A file given inline, as base64.
    pub fn from_base64(base64: &str, mime_type: Option<String>, file_name: Option<String>) -> ApiResult<Self> {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD
            .decode(base64.trim())
            .map_err(|e| ApiError::unprocessable(format!("media_base64 is not base64: {e}")))?;
        if data.is_empty() {
            return Err(ApiError::unprocessable("media_base64 is empty"));
        }
        let (file_name, mime_type) = named(file_name, mime_type)
            .ok_or_else(|| ApiError::unprocessable("media_base64 needs mime_type or a file_name with an extension"))?;
        Ok(Self { data, file_name, mime_type })
    }
}

/// A file's name and type, each from the other when only one is given.
fn named(file_name: Option<String>, mime_type: Option<String>) -> Option<(String, String)> {
    let file_name = file_name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let mime_type = mime_type.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty());
    let by_name = |name: &str| {
        let extension = std::path::Path::new(name).extension()?.to_str()?;
        mime_guess::from_ext(extension).first().map(|m| m.to_string())
    };
    match (file_name, mime_type) {
        (Some(name), Some(mime)) => Some((name, mime)),
        (Some(name), None) => by_name(&name).map(|mime| (name, mime)),
        (None, Some(mime)) => {
            let extension = mime_guess::get_mime_extensions_str(&mime).and_then(|e| e.first()).unwrap_or(&"bin");
            Some((format!("file.{extension}"), mime))
        }
        (None, None) => None,
    }
}

/// Fetches `url` through the outbound guard (no private or loopback address unless the
/// server allows them, no redirect), refusing more than the largest file allowed.
pub async fn fetch(state: &AppState, url: &str) -> ApiResult<Attachment> {
    let refused = |why: String| ApiError::unprocessable(format!("media_url: {why}"));
    let request = state.outbound.get(url).map_err(|e| refused(e.to_string()))?;
    let mut response = request.send().await.map_err(|e| refused(crate::outbound::describe(e)))?;
    if !response.status().is_success() {
        return Err(refused(format!("the server answered {}", response.status())));
    }
    let limit = state.config.max_file_size;
    let announced = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(refused(format!("the file is larger than {limit} bytes")));
    }
    let mime_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|m| !m.starts_with("application/octet-stream"));
    let file_name = response.url().path_segments().and_then(|mut s| s.next_back()).map(str::to_owned);
    let file_name = file_name.filter(|n| std::path::Path::new(n).extension().is_some());
    let mut data = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| refused(crate::outbound::describe(e)))? {
        if data.len() + chunk.len() > limit {
            return Err(refused(format!("the file is larger than {limit} bytes")));
        }
        data.extend_from_slice(&chunk);
    }
    if data.is_empty() {
        return Err(refused("the file is empty".into()));
    }
    let (file_name, mime_type) = named(file_name, mime_type)
        .ok_or_else(|| refused("neither the URL nor the answer says the file's type".into()))?;
    Ok(Attachment { data, file_name, mime_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mime_type: &str) -> Attachment {
        Attachment { data: vec![1], file_name: "f".into(), mime_type: mime_type.into() }
    }

    #[test]
    fn a_kind_must_fit_the_file() {
        assert_eq!(file("image/png").into_media(None, false).unwrap().kind, MediaKind::Image);
        assert_eq!(
            file("audio/ogg; codecs=opus").into_media(Some(MediaKind::Voice), false).unwrap().kind,
            MediaKind::Voice
        );
        assert_eq!(file("image/png").into_media(Some(MediaKind::Document), false).unwrap().kind, MediaKind::Document);
        assert!(file("audio/mpeg").into_media(Some(MediaKind::Voice), false).is_err());
        assert!(file("image/png").into_media(Some(MediaKind::Sticker), false).is_err());
        assert!(file("audio/ogg").into_media(Some(MediaKind::Video), false).is_err());
        assert!(file("video/mp4").into_media(None, true).unwrap().view_once);
        assert!(file("application/pdf").into_media(None, true).is_err());
    }

    #[test]
    fn a_name_or_a_type_says_the_other() {
        assert_eq!(named(Some("a.pdf".into()), None), Some(("a.pdf".into(), "application/pdf".into())));
        assert_eq!(named(None, Some("image/png".into())), Some(("file.png".into(), "image/png".into())));
        assert_eq!(named(Some("noext".into()), None), None);
        assert_eq!(named(None, None), None);
    }
}
