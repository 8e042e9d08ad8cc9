//! QR codes as PNG images, for the bot's `login` command and the API's WebSocket.

use std::io::Cursor;

use image::Luma;
use qrcode::QrCode;

/// A PNG of `data` as a QR code, quiet zone included.
pub fn png(data: &str) -> Result<Vec<u8>, String> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| e.to_string())?;
    let image = code.render::<Luma<u8>>().min_dimensions(256, 256).build();
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_png() {
        let png = super::png("2@abc,def").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
