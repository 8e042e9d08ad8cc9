//! `mxgate devices`: the linked devices, one a line.

use std::process::ExitCode;

use serde::Deserialize;

use super::api::Api;
use super::{CliError, DevicesArgs};

/// A device as `GET /devices` lists it.
#[derive(Deserialize)]
pub struct Device {
    pub device_id: String,
    pub status: String,
    pub error: Option<String>,
}

pub async fn list(api: &Api) -> Result<Vec<Device>, CliError> {
    api.get(&["devices"]).await
}

pub async fn run(args: DevicesArgs) -> Result<ExitCode, CliError> {
    let api = Api::new(&args.connection)?;
    let devices = list(&api).await?;
    if devices.is_empty() {
        eprintln!("No device is linked yet: `mxgate link` links one.");
    }
    for device in devices {
        println!("{}", line(&device));
    }
    Ok(ExitCode::SUCCESS)
}

/// Columns a person can read and `awk` can split: the id and status are single words.
fn line(device: &Device) -> String {
    let error = device.error.as_deref().unwrap_or_default();
    format!("{:<15}  {:<10}  {error}", device.device_id, device.status).trim_end().to_owned()
}
