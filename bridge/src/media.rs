//! Facts about files that both directions of the bridge need.

use std::io::Cursor;

/// Width and height of an image, when `data` is one of the formats WhatsApp sends.
pub fn dimensions(data: &[u8]) -> Option<(u32, u32)> {
    image::ImageReader::new(Cursor::new(data)).with_guessed_format().ok()?.into_dimensions().ok()
}
