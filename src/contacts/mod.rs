//! The people a device can reach: which numbers are on WhatsApp, their profiles and
//! the account's own.

pub mod routes;

use crate::error::{ApiError, ApiResult};

/// The largest side of a profile picture, as WhatsApp's apps send them.
const PICTURE_SIDE: u32 = 640;

/// A picture as WhatsApp takes it: a JPEG within 640×640.
pub fn picture(base64: &str) -> ApiResult<Vec<u8>> {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|e| ApiError::unprocessable(format!("picture_base64: {e}")))?;
    let picture = image::load_from_memory(&data)
        .map_err(|e| ApiError::unprocessable(format!("picture_base64 is not a picture mxgate reads: {e}")))?;
    let picture = picture.thumbnail(PICTURE_SIDE, PICTURE_SIDE).into_rgb8();
    let mut jpeg = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut jpeg, image::ImageFormat::Jpeg).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(jpeg.into_inner())
}
