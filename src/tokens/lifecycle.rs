//! An identity no token reaches any more (its last token deleted, or expired) keeps no way
//! in: its WhatsApp devices are logged out and unlinked, its Matrix sessions are ended and
//! its password is replaced by one nobody holds. Deleting a token retires at once; expiry
//! is found by a sweep every few seconds. Retiring is recorded, so it happens once.

use std::time::Duration;

use mxgate_bridge::store as bridge_store;
use reqwest::Method;
use ruma::UserId;
use serde_json::json;

use super::store;
use crate::bridge_client::segment;
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How often expired tokens are looked for.
const SWEEP: Duration = Duration::from_secs(5);

/// [`retire_orphans`] right after a deletion: what fails now (the bridge or the homeserver
/// down) is left to the sweep, and the deletion stands either way.
pub async fn retire_now(state: &AppState) -> Vec<String> {
    retire_orphans(state).await.unwrap_or_else(|error| {
        tracing::warn!(error = ?error, "an identity left without tokens is retired by the next sweep");
        Vec::new()
    })
}

/// Retires every identity no live token reaches; returns the devices it unlinked.
pub async fn retire_orphans(state: &AppState) -> ApiResult<Vec<String>> {
    let mut unlinked = Vec::new();
    for identity in store::orphaned_identities(&state.db, db::now()).await? {
        unlinked.extend(retire(state, &identity).await?);
    }
    Ok(unlinked)
}

/// Retires orphaned identities periodically; a failure is tried again at the next round.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP).await;
            if let Err(error) = retire_orphans(&state).await {
                tracing::warn!(error = ?error, "identities whose last token expired are not retired yet");
            }
        }
    });
}

async fn retire(state: &AppState, identity: &str) -> ApiResult<Vec<String>> {
    let user = UserId::parse(identity).map_err(|e| ApiError::Internal(e.into()))?;
    let now = db::now();
    // Devices first: each is a WhatsApp session no token can manage any more.
    let mut unlinked = Vec::new();
    for login in bridge_store::logins_of(&state.db, identity).await? {
        if login.state == bridge_store::REMOVED {
            continue;
        }
        let path = format!("logout/{}", segment(&login.account_id));
        let bridge = state.bridge.for_device(&state.db, &login.account_id).await?;
        bridge.call(Method::POST, &path, &user, &[], Some(json!({}))).await?;
        let (db, wake) = (&state.db, &state.deliveries);
        crate::devices::state_events::announce_logged_out(db, wake, identity, &login.account_id, now * 1000).await?;
        unlinked.push(login.account_id);
    }
    match state.homeserver.lock_out(&user).await {
        // Without the shared secret mxgate never gave this identity a password or a session.
        Err(crate::matrix::HomeserverError::NoSharedSecret) => {}
        other => other?,
    }
    store::mark_retired(&state.db, identity, now).await?;
    tracing::info!(identity, devices = unlinked.len(), "identity retired: its last token is gone");
    Ok(unlinked)
}
