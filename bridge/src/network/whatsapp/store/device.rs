//! The device's own record: its keys, account and settings.

use std::sync::Arc;

use async_trait::async_trait;
use whatsapp_rust::wacore::client_profile::ClientProfile;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::device::DEVICE_PROPS;
use whatsapp_rust::wacore::store::traits::DeviceStore;

use super::{Result, SqlStore, db_error, json_error};

/// A store holds one device, so the row `create` makes is always the first.
const DEVICE_ROW_ID: i32 = 1;

/// The columns of a device's row: its phone number once paired, and the record.
fn device_row(device: &Device) -> Result<(Option<String>, String)> {
    Ok((device.pn.as_ref().map(ToString::to_string), serde_json::to_string(device).map_err(json_error)?))
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn save(&self, device: &Device) -> Result<()> {
        let (pn, record) = device_row(device)?;
        self.query(
            "INSERT INTO wa_devices (device, pn, record) VALUES ($1, $2, $3)
             ON CONFLICT (device) DO UPDATE SET pn = excluded.pn, record = excluded.record",
        )
        .bind(pn)
        .bind(record)
        .execute(&self.db.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn load(&self) -> Result<Option<Device>> {
        let record: Option<(String,)> = self
            .query_as("SELECT record FROM wa_devices WHERE device = $1")
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        let Some((record,)) = record else {
            return Ok(None);
        };
        let mut device: Device = serde_json::from_str(&record).map_err(json_error)?;
        // Not serialised: the props and profile every process starts from.
        device.device_props = Arc::new(DEVICE_PROPS.clone());
        device.client_profile = ClientProfile::web();
        Ok(Some(device))
    }

    async fn exists(&self) -> Result<bool> {
        let found = self
            .query("SELECT 1 FROM wa_devices WHERE device = $1")
            .fetch_optional(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(found.is_some())
    }

    async fn create(&self) -> Result<i32> {
        let (pn, record) = device_row(&Device::new())?;
        self.query("INSERT INTO wa_devices (device, pn, record) VALUES ($1, $2, $3) ON CONFLICT (device) DO NOTHING")
            .bind(pn)
            .bind(record)
            .execute(&self.db.pool)
            .await
            .map_err(db_error)?;
        Ok(DEVICE_ROW_ID)
    }
}
