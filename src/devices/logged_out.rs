//! `device.logged_out`: the bridge says the phone removed a device; every webhook of the
//! tokens acting as that device's identity hears of it.

use mxgate_bridge::DeviceLoggedOut;
use serde_json::json;
use tokio::sync::mpsc;

use super::service::WHATSAPP;
use crate::state::AppState;
use crate::webhooks::delivery;

pub async fn report(state: AppState, mut devices: mpsc::UnboundedReceiver<DeviceLoggedOut>) {
    while let Some(device) = devices.recv().await {
        let payload = json!({
            "type": "device.logged_out",
            "platform": WHATSAPP,
            "device_id": device.account.as_str(),
            "timestamp": device.at,
        });
        // One delivery per log-out: the id names the device and the moment.
        let event_id = format!("device.logged_out:{}:{}", device.account, device.at);
        match delivery::enqueue(&state.db, &device.owner, &event_id, &payload.to_string()).await {
            Ok(_) => state.deliveries.notify_one(),
            Err(error) => tracing::error!(device = %device.account, error = %error, "device.logged_out not queued"),
        }
    }
}
