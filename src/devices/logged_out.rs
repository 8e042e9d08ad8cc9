//! `device.logged_out`: the bridge says the phone removed a device; every webhook of the
//! tokens acting as that device's identity hears of it.

use mxgate_bridge::DeviceLoggedOut;
use serde_json::json;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use super::service::WHATSAPP;
use crate::db::Db;
use crate::webhooks::catalogue::EventType;
use crate::webhooks::delivery::{self, Event};

/// Announces each device the bridge reports, waking this process's delivery worker.
pub async fn report(db: Db, wake: Arc<Notify>, mut devices: mpsc::UnboundedReceiver<DeviceLoggedOut>) {
    while let Some(device) = devices.recv().await {
        if let Err(error) = announce(&db, &wake, &device.owner, device.account.as_str(), device.at).await {
            tracing::error!(device = %device.account, error = %error, "device.logged_out not queued");
        }
    }
}

/// Queues `device.logged_out` for `owner`'s event feed and webhooks (those of tokens that
/// expired included: a retiring identity's devices are logged out because they did).
pub async fn announce(db: &Db, wake: &Notify, owner: &str, device_id: &str, at: i64) -> Result<(), sqlx::Error> {
    let payload = json!({ "type": "device.logged_out", "platform": WHATSAPP, "device_id": device_id, "timestamp": at });
    // One delivery per log-out: the id names the device and the moment.
    let event_id = format!("device.logged_out:{device_id}:{at}");
    let event = Event { identity: owner, event_id: &event_id, kind: EventType::DeviceLoggedOut, payload };
    delivery::enqueue_farewell(db, event).await?;
    wake.notify_one();
    Ok(())
}
