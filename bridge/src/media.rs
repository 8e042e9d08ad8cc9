//! Facts about files that both directions of the bridge (and the API) need.

use std::io::Cursor;

/// The Matrix `msgtype` for a file of `mime_type`.
pub fn msgtype(mime_type: &str) -> &'static str {
    match mime_type.split('/').next() {
        Some("image") => "m.image",
        Some("video") => "m.video",
        Some("audio") => "m.audio",
        _ => "m.file",
    }
}

/// Width and height of an image, when `data` is one of the formats WhatsApp sends.
pub fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(data)).with_guessed_format().ok()?.into_dimensions().ok()
}

/// The `info` object of a Matrix file event.
pub fn info(data: &[u8], mime_type: &str) -> serde_json::Value {
    let mut info = serde_json::json!({ "mimetype": mime_type, "size": data.len() });
    if let Some((w, h)) = dimensions(data) {
        info["w"] = w.into();
        info["h"] = h.into();
    }
    info
}
