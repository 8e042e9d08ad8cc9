//! The API token: `MXGATE_TOKEN`, or typed at a prompt that does not echo it.

use std::env::{self, VarError};

use mxgate_bridge::secret::Secret;

use super::CliError;

pub fn read() -> Result<Secret, CliError> {
    match env::var("MXGATE_TOKEN") {
        Ok(token) if !token.trim().is_empty() => return Ok(Secret::new(token.trim())),
        Err(VarError::NotUnicode(_)) => return Err(CliError::TokenNotText),
        Ok(_) | Err(VarError::NotPresent) => {}
    }
    // rpassword talks to the terminal itself (/dev/tty), so the prompt works with stdout
    // and stderr redirected, and fails plainly where there is no terminal.
    let typed = rpassword::prompt_password("mxgate API token (mt_…, not shown): ").map_err(CliError::NoTerminal)?;
    match typed.trim() {
        "" => Err(CliError::EmptyToken),
        token => Ok(Secret::new(token)),
    }
}
