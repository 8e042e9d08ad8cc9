//! Bot commands in the management room (the person's direct room with the bot):
//! `help`, `login`, `logout <phone>`, `list`, `pm <phone>`, `join <invite url>`.

use std::sync::Arc;

use ruma::{RoomId, UserId};
use serde_json::{Value, json};

use crate::core::{BridgeError, Core};
use crate::ids::{GroupInvite, PhoneNumber};
use crate::login::{self, Step};
use crate::network::{AccountId, LoginMethod};
use crate::portal::{PortalInfo, ensure_portal};
use crate::{qr, store};

const HELP: &str = "Commands:\n\
• help: this list\n\
• login: link a WhatsApp account by scanning a QR code\n\
• login <phone>: link it by typing a pairing code on that phone instead\n\
• logout <phone>: unlink an account\n\
• list: your linked accounts\n\
• pm <phone>: open a direct chat with a phone number\n\
• join <https://chat.whatsapp.com/…>: join a group by its invite link";

/// The bot accepts invites; a direct invite makes the room the inviter's management room.
pub async fn accept_invite(core: &Core, inviter: &UserId, room: &RoomId) -> Result<(), BridgeError> {
    core.matrix.join(&core.bot, room).await?;
    if store::management_room(&core.db, inviter.as_str()).await?.is_none() {
        store::set_management_room(&core.db, inviter.as_str(), room.as_str()).await?;
        notice(core, room, HELP).await?;
    }
    Ok(())
}

async fn notice(core: &Core, room: &RoomId, text: &str) -> Result<(), BridgeError> {
    let content = json!({ "msgtype": "m.notice", "body": text });
    core.matrix.send_event(&core.bot, room, "m.room.message", &uuid::Uuid::new_v4().to_string(), &content).await?;
    Ok(())
}

pub async fn handle(core: &Arc<Core>, sender: &UserId, room: &RoomId, event: &Value) -> Result<(), BridgeError> {
    let body = event["content"]["body"].as_str().unwrap_or_default().trim();
    let mut words = body.split_whitespace();
    let command = words.next().unwrap_or_default().to_lowercase();
    let argument = words.next();
    let reply = match (command.as_str(), argument) {
        ("help", _) => HELP.to_owned(),
        ("login", phone) => {
            let method = match phone.map(str::parse::<PhoneNumber>).transpose() {
                Ok(Some(phone)) => LoginMethod::PairCode(phone),
                Ok(None) => LoginMethod::Qr,
                Err(error) => return notice(core, room, &error.to_string()).await,
            };
            // A login waits minutes for a scan; the homeserver's transaction must not.
            let (core, sender, room) = (core.clone(), sender.to_owned(), room.to_owned());
            tokio::spawn(async move {
                if let Err(error) = start_login(&core, &sender, &room, method).await {
                    tracing::error!(error = %error, "bot login failed");
                }
            });
            return Ok(());
        }
        ("list", _) => {
            let logins = store::logins_of(&core.db, sender.as_str()).await?;
            if logins.is_empty() {
                "No linked accounts. Send `login` to link one.".to_owned()
            } else {
                let lines: Vec<String> = logins.iter().map(|l| format!("• +{}", l.account_id)).collect();
                format!("Linked accounts:\n{}", lines.join("\n"))
            }
        }
        ("logout", Some(phone)) => match phone.parse::<AccountId>() {
            Ok(account) if login::logout(core, sender, &account).await? => format!("Logged out +{account}"),
            Ok(account) => format!("+{account} is not one of your linked accounts"),
            Err(error) => error.to_string(),
        },
        ("pm", Some(phone)) => match phone.parse::<PhoneNumber>() {
            Ok(phone) => open_direct_chat(core, sender, phone).await,
            Err(error) => error.to_string(),
        },
        ("join", Some(url)) => match url.parse::<GroupInvite>() {
            Ok(invite) => join_group(core, sender, invite).await,
            Err(error) => error.to_string(),
        },
        ("logout" | "pm" | "join", None) => format!("`{command}` needs an argument. {HELP}"),
        _ => format!("Unknown command `{command}`. {HELP}"),
    };
    notice(core, room, &reply).await
}

/// The account a command acts through: the sender's first linked one.
async fn first_account(core: &Core, sender: &UserId) -> Result<Option<AccountId>, BridgeError> {
    let logins = store::logins_of(&core.db, sender.as_str()).await?;
    Ok(logins.first().and_then(|l| l.account_id.parse().ok()))
}

async fn open_direct_chat(core: &Core, sender: &UserId, phone: PhoneNumber) -> String {
    let result = async {
        let Some(account) = first_account(core, sender).await? else {
            return Ok("No linked account. Send `login` first.".to_owned());
        };
        let contact = core.network.resolve_contact(&account, &phone).await?;
        let portal = ensure_portal(core, &account, sender, PortalInfo::Direct(&contact)).await?;
        Ok::<_, BridgeError>(format!("Direct chat with +{} is {}", contact.phone, portal.room_id))
    };
    result.await.unwrap_or_else(|error| error.to_string())
}

async fn join_group(core: &Core, sender: &UserId, invite: GroupInvite) -> String {
    let result = async {
        let Some(account) = first_account(core, sender).await? else {
            return Ok("No linked account. Send `login` first.".to_owned());
        };
        let group = core.network.join_group(&account, &invite).await?;
        let portal = ensure_portal(core, &account, sender, PortalInfo::Group(&group)).await?;
        Ok::<_, BridgeError>(format!("Joined {} ({})", group.name, portal.room_id))
    };
    result.await.unwrap_or_else(|error| error.to_string())
}

/// Shows each QR code as an image with its text (or the pairing code), then the outcome.
async fn start_login(core: &Arc<Core>, sender: &UserId, room: &RoomId, method: LoginMethod) -> Result<(), BridgeError> {
    let (process, mut step) = login::start(core, sender, method).await?;
    loop {
        match step {
            Step::Qr(code) => send_qr(core, room, &code).await?,
            Step::PairCode(code) => {
                let text = format!("On your phone: Linked devices → Link with phone number instead, then type {code}");
                return notice(core, room, &text).await;
            }
            Step::Complete(account) => return notice(core, room, &format!("Linked +{account}")).await,
            Step::TimedOut => return notice(core, room, "Login timed out: no QR code was scanned").await,
            Step::Failed(reason) => return notice(core, room, &format!("Login failed: {reason}")).await,
        }
        step = match login::next(core, &process, sender).await? {
            Some(step) => step,
            None => return notice(core, room, "Login cancelled").await,
        };
    }
}

async fn send_qr(core: &Core, room: &RoomId, code: &str) -> Result<(), BridgeError> {
    let png = qr::png(code).map_err(BridgeError::Invalid)?;
    let size = png.len();
    let mxc = core.matrix.upload(&core.bot, png, "image/png", "qr.png").await?;
    let content = json!({
        "msgtype": "m.image",
        "body": code,
        "filename": "qr.png",
        "url": mxc,
        "info": { "mimetype": "image/png", "size": size },
    });
    core.matrix.send_event(&core.bot, room, "m.room.message", &uuid::Uuid::new_v4().to_string(), &content).await?;
    notice(core, room, &format!("Scan this QR code with WhatsApp (Linked devices). As text: {code}")).await
}
