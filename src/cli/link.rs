//! `mxgate link`: links a WhatsApp account by QR code (drawn in the terminal as the API's
//! socket streams them) or by pairing code, and prints the new device's id.

use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use mxgate_bridge::ids::{IdError, PhoneNumber};
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::api::Api;
use super::qr::Screen;
use super::{CliError, LinkArgs, devices};

/// A pairing code lives about 3 minutes; the device connects a moment after the phone
/// confirms it.
const PAIRING_WAIT: Duration = Duration::from_secs(200);
/// How often `GET /devices` is asked whether the phone confirmed the pairing code.
const PAIRING_POLL: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
struct LinkStarted {
    qr_code_url: Option<String>,
    pair_code: Option<String>,
}

/// A frame of the QR code socket.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Frame {
    Qr {
        code: String,
    },
    Success {
        device_id: String,
    },
    Timeout {
        message: Option<String>,
    },
    Error {
        message: String,
    },
    /// A kind of frame a newer API may send; nothing this command needs.
    #[serde(other)]
    Other,
}

pub async fn run(args: LinkArgs) -> Result<ExitCode, CliError> {
    let phone = args.phone.as_deref().map(parse_phone).transpose()?;
    let api = Api::new(&args.connection)?;
    let device_id = match phone {
        Some(phone) => by_pairing_code(&api, phone).await?,
        None => by_qr_code(&api).await?,
    };
    eprintln!("Linked.");
    println!("{device_id}");
    Ok(ExitCode::SUCCESS)
}

fn parse_phone(phone: &str) -> Result<PhoneNumber, CliError> {
    phone.parse().map_err(|e: IdError| CliError::BadPhone(e.to_string()))
}

async fn by_qr_code(api: &Api) -> Result<String, CliError> {
    let started: LinkStarted = api.post_json(&["devices"], &json!({ "platform": "wa" })).await?;
    let url = started.qr_code_url.ok_or_else(|| CliError::Unexpected("POST /devices gave no qr_code_url".into()))?;
    let mut socket = api.socket(&url).await?;
    let mut screen = Screen::new();
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let frame = serde_json::from_str(&text).map_err(|e| CliError::Unexpected(format!("a socket frame: {e}")))?;
        match frame {
            Frame::Qr { code } => screen.show(&code)?,
            Frame::Success { device_id } => return Ok(device_id),
            Frame::Timeout { message } => {
                let message = message.unwrap_or_else(|| "the QR codes expired".into());
                return Err(CliError::LinkTimeout(format!("no code was scanned in time ({message})")));
            }
            Frame::Error { message } => return Err(CliError::LinkFailed(message)),
            Frame::Other => {}
        }
    }
    Err(CliError::LinkFailed("the QR code socket closed before the login finished".into()))
}

/// The API answers the pairing code at once and follows the login itself, so success shows
/// as the number listed `connected` by `GET /devices`.
async fn by_pairing_code(api: &Api, phone: PhoneNumber) -> Result<String, CliError> {
    let device_id = phone.as_str();
    if connected(api, device_id).await? {
        // It would count as linked at once, whatever the phone does with the code.
        return Err(CliError::AlreadyLinked(device_id.to_owned()));
    }
    let started: LinkStarted = api.post_json(&["devices"], &json!({ "platform": "wa", "phone": device_id })).await?;
    let code = started.pair_code.ok_or_else(|| CliError::Unexpected("POST /devices gave no pair_code".into()))?;
    eprintln!(
        "On the phone of +{device_id}: WhatsApp → Settings → Linked devices → Link a device →\n\
         Link with phone number instead, and type this code (it lives about 3 minutes):\n"
    );
    eprintln!("Pairing code: {code}\n");
    let deadline = Instant::now() + PAIRING_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(PAIRING_POLL).await;
        if connected(api, device_id).await? {
            return Ok(device_id.to_owned());
        }
    }
    Err(CliError::LinkTimeout(format!(
        "the phone did not confirm the pairing code within {} s",
        PAIRING_WAIT.as_secs()
    )))
}

async fn connected(api: &Api, device_id: &str) -> Result<bool, CliError> {
    let devices = devices::list(api).await?;
    Ok(devices.iter().any(|d| d.device_id == device_id && d.status == "connected"))
}
