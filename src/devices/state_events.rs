//! A device's state, told to the webhooks of the tokens acting as its identity:
//! `device.state` at each change the process running it sees (connecting, connected,
//! error, logged_out), and `device.logged_out` once more when the phone removed it, as
//! receivers had it before the state events.

use std::sync::Arc;

use mxgate_bridge::DeviceChange;
use mxgate_bridge::network::ConnectionState;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use super::service::WHATSAPP;
use crate::db::Db;
use crate::webhooks::catalogue::EventType;
use crate::webhooks::delivery::{self, Event};

/// Announces each change the bridge reports, waking this process's delivery worker.
pub async fn report(db: Db, wake: Arc<Notify>, mut changes: mpsc::UnboundedReceiver<DeviceChange>) {
    while let Some(change) = changes.recv().await {
        let (owner, device) = (change.owner.as_str(), change.account.as_str());
        let told = match change.state {
            ConnectionState::LoggedOut => announce_logged_out(&db, &wake, owner, device, change.at_ms).await,
            state => announce(&db, &wake, owner, device, &state, change.at_ms).await,
        };
        if let Err(error) = told {
            tracing::error!(device, error = %error, "device state not queued for webhooks");
        }
    }
}

/// Queues `device.state` for `owner`'s event feed and webhooks.
async fn announce(
    db: &Db,
    wake: &Notify,
    owner: &str,
    device_id: &str,
    state: &ConnectionState,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    let error = match state {
        ConnectionState::Error(error) => Some(error.as_str()),
        _ => None,
    };
    let payload = json!({
        "type": "device.state", "platform": WHATSAPP, "device_id": device_id, "state": state.as_str(),
        "error": error, "timestamp": at_ms,
    });
    // One event per change: the id names the device, the state and the moment.
    let event_id = format!("device.state:{device_id}:{}:{at_ms}", state.as_str());
    let event = Event { identity: owner, event_id: &event_id, kind: EventType::DeviceState, payload };
    delivery::enqueue_farewell(db, event).await?;
    wake.notify_one();
    Ok(())
}

/// Queues `device.state` (`logged_out`) and `device.logged_out` for `owner`'s event feed
/// and webhooks (those of tokens that expired included: a retiring identity's devices are
/// logged out because they did).
pub async fn announce_logged_out(
    db: &Db,
    wake: &Notify,
    owner: &str,
    device_id: &str,
    at_ms: i64,
) -> Result<(), sqlx::Error> {
    announce(db, wake, owner, device_id, &ConnectionState::LoggedOut, at_ms).await?;
    let at = at_ms / 1000;
    let payload = json!({ "type": "device.logged_out", "platform": WHATSAPP, "device_id": device_id, "timestamp": at });
    // One delivery per log-out: the id names the device and the moment.
    let event_id = format!("device.logged_out:{device_id}:{at}");
    let event = Event { identity: owner, event_id: &event_id, kind: EventType::DeviceLoggedOut, payload };
    delivery::enqueue_farewell(db, event).await?;
    wake.notify_one();
    Ok(())
}
