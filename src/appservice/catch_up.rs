//! Messages the homeserver never pushed. Synapse can strand an appservice transaction:
//! its recoverer, finding nothing left to resend, marks the appservice up a moment later,
//! and an event that arrives in that moment goes into a transaction that nothing sends
//! until the appservice next fails, which may be never. Seen here under load after a
//! restart: one message of sixty never reached the API, every queue of mxgate empty.
//!
//! The bridge records every message it brings in from the network, so the API compares
//! that record with its event log and fetches from the homeserver what is missing. The
//! push is still the way in; this is the net under it. A push that comes after the fetch
//! finds the event logged and changes nothing.

use std::time::Duration;

use mxgate_bridge::matrix::MatrixError;
use mxgate_bridge::store::{self as bridge_store, BridgedMessage};
use ruma::{RoomId, UserId};

use crate::events::store as events_store;
use crate::state::AppState;

const PASS: Duration = Duration::from_secs(10);
/// How long a push may take before the API fetches the event itself: Synapse pushes
/// within a second unless the API was unreachable, and then it is told at start-up.
const GRACE_SECS: i64 = 30;
/// How far back the first pass after a start looks: what was bridged while the API was
/// down (bounded by the event log's retention, which would otherwise look like a gap).
const HORIZON_SECS: i64 = 24 * 3600;
const PAGE: i64 = 500;

#[derive(Debug, thiserror::Error)]
enum CatchUpError {
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Homeserver(#[from] MatrixError),
}

pub fn spawn(state: AppState) {
    let retention = i64::try_from(state.config.webhook_retention.0.as_secs()).unwrap_or(i64::MAX);
    let mut after = (crate::db::now() - HORIZON_SECS.min(retention), String::new());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PASS).await;
            match catch_up(&state, &mut after).await {
                Ok(0) => {}
                Ok(fetched) => {
                    tracing::warn!(fetched, "the homeserver had not pushed these bridged messages; fetched them");
                    state.deliveries.notify_one();
                }
                Err(error) => tracing::warn!(error = %error, "catching up on bridged messages; next pass retries"),
            }
        }
    });
}

/// Goes through what was bridged after `after` until `GRACE_SECS` ago, and logs what the
/// event log lacks. `after` moves past each message handled; a passing failure leaves it
/// before the message, for the next pass.
async fn catch_up(state: &AppState, after: &mut (i64, String)) -> Result<usize, CatchUpError> {
    let until = crate::db::now() - GRACE_SECS;
    let mut fetched = 0;
    loop {
        let page = bridge_store::bridged_after(&state.db, (after.0, &after.1), until, PAGE).await?;
        for message in &page {
            if !events_store::logged(&state.db, &message.event_id).await? && fetch(state, message).await? {
                fetched += 1;
            }
            *after = (message.created_at, message.event_id.clone());
        }
        if i64::try_from(page.len()).unwrap_or(PAGE) < PAGE {
            return Ok(fetched);
        }
    }
}

/// Fetches one message as its owner sees it and handles it as if pushed. An event the
/// homeserver refuses to show (redacted away, the owner no longer in the room) is skipped.
async fn fetch(state: &AppState, message: &BridgedMessage) -> Result<bool, CatchUpError> {
    let (Ok(owner), Ok(room)) = (UserId::parse(&message.owner), RoomId::parse(&message.room_id)) else {
        return Ok(false);
    };
    match state.homeserver.client.event(&owner, &room, &message.event_id).await {
        Ok(event) => {
            super::handle_event(state, &event).await?;
            Ok(true)
        }
        Err(MatrixError::Refused { status, .. }) if status != 429 && status < 500 => {
            tracing::warn!(event = %message.event_id, status, "a bridged message the homeserver will not show");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}
