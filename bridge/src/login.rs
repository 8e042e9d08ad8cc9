//! Logins in progress: a network login stream per process, read one step at a time
//! by whoever drives it (the provisioning API or the bot's `login` command).

use std::collections::HashMap;
use std::sync::Arc;

use ruma::{OwnedUserId, UserId};
use tokio::sync::Mutex;

use crate::core::{BridgeError, Core};
use crate::network::{AccountId, LoginEvent, LoginMethod, LoginStream};
use crate::store;

/// What a login shows next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Qr(String),
    /// The code to type on the phone; the bridge itself waits for the outcome.
    PairCode(String),
    Complete(AccountId),
    TimedOut,
    Failed(String),
}

struct Process {
    owner: OwnedUserId,
    stream: Mutex<LoginStream>,
}

#[derive(Default)]
pub struct LoginProcesses {
    processes: std::sync::Mutex<HashMap<String, Arc<Process>>>,
}

impl LoginProcesses {
    fn get(&self, id: &str, owner: &UserId) -> Option<Arc<Process>> {
        let processes = self.processes.lock().unwrap_or_else(|e| e.into_inner());
        processes.get(id).filter(|p| p.owner == owner).cloned()
    }

    fn in_progress(&self, owner: &UserId) -> usize {
        owned_by(&self.processes.lock().unwrap_or_else(|e| e.into_inner()), owner)
    }

    fn remove(&self, id: &str) {
        self.processes.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// How many of `processes` are `owner`'s.
fn owned_by(processes: &HashMap<String, Arc<Process>>, owner: &UserId) -> usize {
    processes.values().filter(|p| p.owner == owner).count()
}

/// Starts a login for `owner`; returns the process id and its first step. A pairing-code
/// login has nobody polling its steps, so the bridge follows it to its outcome itself.
pub async fn start(core: &Arc<Core>, owner: &UserId, method: LoginMethod) -> Result<(String, Step), BridgeError> {
    let most = core.config.max_logins_per_identity;
    if core.logins.in_progress(owner) >= most {
        return Err(BridgeError::TooManyLogins(most));
    }
    let stream = core.network.start_login(method).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let process = Arc::new(Process { owner: owner.to_owned(), stream: Mutex::new(stream) });
    {
        // Counted again with the insert: two starts may have passed the check together.
        let mut processes = core.logins.processes.lock().unwrap_or_else(|e| e.into_inner());
        if owned_by(&processes, owner) >= most {
            return Err(BridgeError::TooManyLogins(most));
        }
        processes.insert(id.clone(), process);
    }
    let step = next(core, &id, owner).await?.ok_or_else(|| BridgeError::Invalid("login vanished".into()))?;
    if matches!(step, Step::PairCode(_)) {
        let (core, id, owner) = (core.clone(), id.clone(), owner.to_owned());
        tokio::spawn(async move {
            match next(&core, &id, &owner).await {
                Ok(Some(Step::Complete(_)) | None) => {}
                Ok(Some(step)) => tracing::info!(login = %id, outcome = ?step, "pairing-code login ended"),
                Err(error) => tracing::error!(login = %id, error = %error, "pairing-code login failed"),
            }
        });
    }
    Ok((id, step))
}

/// Waits for the next step of a login; `None` when no such login is in progress.
pub async fn next(core: &Core, id: &str, owner: &UserId) -> Result<Option<Step>, BridgeError> {
    let Some(process) = core.logins.get(id, owner) else { return Ok(None) };
    let event = process.stream.lock().await.recv().await;
    let step = match event {
        Some(LoginEvent::Qr(code)) => return Ok(Some(Step::Qr(code))),
        Some(LoginEvent::PairCode(code)) => return Ok(Some(Step::PairCode(code))),
        Some(LoginEvent::Success(account)) => {
            let before = store::login(&core.db, account.as_str()).await?;
            store::upsert_login(&core.db, account.as_str(), owner.as_str()).await?;
            crate::lease::adopt(core, &account).await?;
            tracing::info!(device = %account, owner = %owner, "device linked");
            let previous = before.and_then(|login| UserId::parse(login.owner).ok()).filter(|was| was != owner);
            if let Some(previous) = previous {
                // The link stands whatever happens here; a portal left behind is logged.
                if let Err(error) = crate::portal::hand_over(core, &account, &previous, owner).await {
                    tracing::error!(device = %account, error = %error, "portals not handed over");
                }
            }
            Step::Complete(account)
        }
        Some(LoginEvent::Failed(reason)) => Step::Failed(reason),
        Some(LoginEvent::Timeout) | None => Step::TimedOut,
    };
    core.logins.remove(id);
    Ok(Some(step))
}

pub fn cancel(core: &Core, id: &str, owner: &UserId) -> bool {
    let found = core.logins.get(id, owner).is_some();
    if found {
        core.logins.remove(id);
    }
    found
}

/// Logs a device out on the network and removes it from its owner's list; only its owner
/// may. A device the phone already logged out is only removed from the list.
pub async fn logout(core: &Core, owner: &UserId, account: &AccountId) -> Result<bool, BridgeError> {
    let Some(login) = store::login(&core.db, account.as_str()).await? else { return Ok(false) };
    if login.owner != owner.as_str() || login.state == store::REMOVED {
        return Ok(false);
    }
    if login.state == store::CONNECTED {
        core.network.logout(account).await?;
        crate::lease::drop_device(core, account).await?;
    }
    store::set_login_state(&core.db, account.as_str(), store::REMOVED).await?;
    tracing::info!(device = %account, "device logged out");
    Ok(true)
}
