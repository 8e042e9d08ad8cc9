//! Puppets: one Matrix user per network user, `@<prefix><phone>`.

use ruma::OwnedUserId;

use crate::core::{BridgeError, Core};
use crate::network::Contact;
use crate::store;

/// Makes sure the puppet of `contact` exists and carries its name; a new puppet also
/// gets the contact's picture.
pub async fn ensure_puppet(core: &Core, contact: &Contact) -> Result<OwnedUserId, BridgeError> {
    let phone = &contact.phone;
    let user_id = core.puppet_id(phone.as_str());
    let known = store::puppet_name(&core.db, phone.as_str()).await?;
    let wanted = contact.name.clone().unwrap_or_else(|| format!("+{phone}"));
    if known.is_none() {
        core.matrix.ensure_registered(user_id.localpart()).await?;
        if let Some(avatar) = &contact.avatar {
            let mxc = core.matrix.upload(&user_id, avatar.data.clone(), &avatar.mime_type, &avatar.file_name).await?;
            core.matrix.set_avatar(&user_id, &mxc).await?;
        }
    }
    if known.flatten().as_deref() != Some(wanted.as_str()) {
        core.matrix.set_displayname(&user_id, &format!("{wanted} (WhatsApp)")).await?;
        store::upsert_puppet(&core.db, phone.as_str(), user_id.as_str(), Some(&wanted)).await?;
    }
    Ok(user_id)
}
