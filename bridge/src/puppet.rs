//! Puppets: one Matrix user per network user, `@<prefix><phone>`.

use ruma::OwnedUserId;

use crate::core::{BridgeError, Core};
use crate::network::Contact;
use crate::store;

/// Makes sure the puppet of `contact` exists and carries its name; a new puppet also
/// gets the contact's picture. The homeserver hears only of what changed.
pub async fn ensure_puppet(core: &Core, contact: &Contact) -> Result<OwnedUserId, BridgeError> {
    let phone = &contact.phone;
    let user_id = core.puppet_id(phone.as_str());
    let known = store::puppet_name(&core.db, phone.as_str()).await?;
    if known.is_none() {
        core.matrix.ensure_registered(user_id.localpart()).await?;
        if let Some(avatar) = &contact.avatar {
            let mxc = core.matrix.upload(&user_id, avatar.data.clone(), &avatar.mime_type, &avatar.file_name).await?;
            core.matrix.set_avatar(&user_id, &mxc).await?;
        }
    }
    let known = known.flatten();
    if let Some(name) = new_name(contact, known.as_deref()) {
        core.matrix.set_displayname(&user_id, &format!("{name} (WhatsApp)")).await?;
        store::upsert_puppet(&core.db, phone.as_str(), user_id.as_str(), Some(&name)).await?;
    }
    Ok(user_id)
}

/// The name the puppet of `contact` is to take, if not `known` already. A contact without
/// a name (a number looked up, a message without a push name) keeps the name known: else
/// the puppet's name, and each of its rooms, would change back and forth.
fn new_name(contact: &Contact, known: Option<&str>) -> Option<String> {
    let wanted = match (&contact.name, known) {
        (Some(name), _) => name.clone(),
        (None, Some(_)) => return None,
        (None, None) => format!("+{}", contact.phone),
    };
    (known != Some(wanted.as_str())).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: Option<&str>) -> Contact {
        Contact { phone: "237600000001".parse().unwrap(), name: name.map(str::to_owned), avatar: None }
    }

    #[test]
    fn a_name_is_set_when_it_changes() {
        assert_eq!(new_name(&contact(Some("Ada")), None).as_deref(), Some("Ada"));
        assert_eq!(new_name(&contact(Some("Ada")), Some("+237600000001")).as_deref(), Some("Ada"));
        assert_eq!(new_name(&contact(Some("Ada")), Some("Ada")), None);
    }

    #[test]
    fn no_name_keeps_the_known_one() {
        assert_eq!(new_name(&contact(None), Some("Ada")), None);
        assert_eq!(new_name(&contact(None), None).as_deref(), Some("+237600000001"));
        assert_eq!(new_name(&contact(None), Some("+237600000001")), None);
    }
}
