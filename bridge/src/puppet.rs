//! Puppets: one Matrix user per network user, `@<prefix><phone>`.

use ruma::OwnedUserId;

use crate::core::{BridgeError, Core};
use crate::ids::PhoneNumber;
use crate::store;

/// Makes sure the puppet of `phone` exists and carries `name` as its display name.
pub async fn ensure_puppet(core: &Core, phone: &PhoneNumber, name: Option<&str>) -> Result<OwnedUserId, BridgeError> {
    let user_id = core.puppet_id(phone.as_str());
    let known = store::puppet_name(&core.db, phone.as_str()).await?;
    let wanted = name.map(str::to_owned).unwrap_or_else(|| format!("+{phone}"));
    if known.is_none() {
        core.matrix.ensure_registered(user_id.localpart()).await?;
    }
    if known.flatten().as_deref() != Some(wanted.as_str()) {
        core.matrix.set_displayname(&user_id, &format!("{wanted} (WhatsApp)")).await?;
        store::upsert_puppet(&core.db, phone.as_str(), user_id.as_str(), Some(&wanted)).await?;
    }
    Ok(user_id)
}
