//! `mxgate link`, `mxgate devices` and `mxgate send`: a terminal client of the HTTP API, so
//! a person can link a phone and try a send from a shell, against this machine's mxgate or
//! a remote one. The token comes from `MXGATE_TOKEN` or a prompt, never from an argument:
//! every user of the machine can read a process's arguments.

mod api;
mod devices;
mod error;
mod link;
mod multipart;
mod qr;
mod send;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use url::Url;

pub use error::CliError;

#[derive(Subcommand)]
pub enum Command {
    /// Link a WhatsApp account: scan the QR code drawn here, or type a pairing code.
    ///
    /// Draws each QR code the API streams in place of the last (or, with --phone, prints the
    /// pairing code to type on that phone), then prints the new device's id. The token
    /// comes from MXGATE_TOKEN, or is asked for without showing it.
    Link(LinkArgs),
    /// List the linked devices: id, status and error, one a line.
    ///
    /// The token comes from MXGATE_TOKEN, or is asked for without showing it.
    Devices(DevicesArgs),
    /// Send a message from a linked device.
    ///
    /// Prints each recipient's result; fails when no recipient was sent the message. The
    /// token comes from MXGATE_TOKEN, or is asked for without showing it.
    Send(SendArgs),
}

/// Where the API is. The token is deliberately not an option.
#[derive(Args)]
pub struct Connection {
    /// The mxgate API's URL (as its MXGATE_PUBLIC_URL says, when it runs elsewhere).
    #[arg(long, env = "MXGATE_URL", default_value = "http://127.0.0.1:8080")]
    url: Url,
}

#[derive(Args)]
pub struct LinkArgs {
    /// Link by pairing code instead of QR code: the account's number with its country
    /// code, e.g. 237123456789.
    #[arg(long, value_name = "NUMBER")]
    phone: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    connection: Connection,
}

#[derive(Args)]
#[command(group(ArgGroup::new("recipients").required(true).args(["to", "group_url"])))]
#[command(group(ArgGroup::new("content").required(true).multiple(true).args(["text", "file"])))]
pub struct SendArgs {
    /// The device to send from: its id (phone number) as `mxgate devices` lists it.
    #[arg(long, value_name = "ID")]
    device: String,
    /// A contact's phone number; repeat the option for several.
    #[arg(long, value_name = "PHONE")]
    to: Vec<String>,
    /// A group's https://chat.whatsapp.com/… invite link; repeat the option for several.
    #[arg(long, value_name = "URL")]
    group_url: Vec<String>,
    /// The text, or the file's caption.
    #[arg(long)]
    text: Option<String>,
    /// A file to send; its name's extension gives its type.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    #[command(flatten)]
    connection: Connection,
}

/// Runs one command; a failure is one line on stderr and a non-zero exit.
pub async fn run(command: Command) -> ExitCode {
    let outcome = match command {
        Command::Link(args) => link::run(args).await,
        Command::Devices(args) => devices::run(args).await,
        Command::Send(args) => send::run(args).await,
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("mxgate: {error}");
        ExitCode::FAILURE
    })
}
