//! Draws a login's QR codes in the terminal, each replacing the one before.

use std::io::{self, IsTerminal, Write};

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use super::CliError;

/// Dark modules on a light ground whatever the terminal's colours: phones read codes drawn
/// the other way round badly, or not at all.
const BLACK_ON_WHITE: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// The QR codes go to stderr, so `mxgate link` prints only the device id to stdout.
pub struct Screen {
    terminal: bool,
    shown: usize,
}

impl Screen {
    pub fn new() -> Self {
        Self { terminal: io::stderr().is_terminal(), shown: 0 }
    }

    /// Shows `code` in place of the code before it.
    pub fn show(&mut self, code: &str) -> Result<(), CliError> {
        let drawing = draw(code)?;
        self.shown += 1;
        let mut out = io::stderr().lock();
        // A clear screen, rather than moving up over the last code, holds whatever the
        // terminal's size: a code taller than the window, or wrapped lines, leave nothing behind.
        let clear = if self.terminal { CLEAR_SCREEN } else { "" };
        write!(
            out,
            "{clear}{drawing}\n\
             Scan it with the phone: WhatsApp → Settings → Linked devices → Link a device.\n\
             Code {}; a new one replaces it as it expires. Ctrl-C gives up.\n",
            self.shown
        )
        .and_then(|()| out.flush())
        .map_err(CliError::Terminal)
    }
}

/// Two modules a character (half blocks), with the quiet zone scanners need around them.
/// The lowest error correction keeps the code small enough for a terminal window; a screen
/// does not get scratched.
fn draw(code: &str) -> Result<String, CliError> {
    let qr = QrCode::with_error_correction_level(code, EcLevel::L)
        .map_err(|e| CliError::Unexpected(format!("the login's code does not fit a QR code: {e}")))?;
    let rows = qr.render::<Dense1x2>().quiet_zone(true).build();
    Ok(rows.lines().map(|row| format!("{BLACK_ON_WHITE}{row}{RESET}")).collect::<Vec<_>>().join("\n"))
}
