//! What can go wrong in a terminal command, each said in one line.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with an error; `message` is its envelope's.
    #[error("{message} (HTTP {status})")]
    Api { status: u16, message: String },
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("--url must be an http:// or https:// URL, not {0}")]
    BadUrl(String),
    #[error("no token: set MXGATE_TOKEN, or run this in a terminal to type it ({0})")]
    NoTerminal(io::Error),
    #[error("no token was typed")]
    EmptyToken,
    #[error("MXGATE_TOKEN is not valid UTF-8")]
    TokenNotText,
    #[error("--phone: {0}")]
    BadPhone(String),
    #[error("{0} is already linked and connected; `mxgate devices` lists it")]
    AlreadyLinked(String),
    #[error("{0}; run `mxgate link` again")]
    LinkTimeout(String),
    #[error("linking failed: {0}")]
    LinkFailed(String),
    #[error("the QR code socket failed: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("cannot read {}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("cannot write to the terminal: {0}")]
    Terminal(io::Error),
    #[error("the API answered in an unexpected way: {0}")]
    Unexpected(String),
}
