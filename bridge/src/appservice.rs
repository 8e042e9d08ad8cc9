//! The homeserver-facing endpoints of the bridge's appservice.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ruma::UserId;
use serde_json::{Value, json};

use crate::commands;
use crate::content;
use crate::core::Core;
use crate::secret::Secret;
use crate::{outbox, store};

/// Homeserver transactions carry up to 100 events of up to 64 KiB each; axum's 2 MB
/// default would refuse a full one, and the homeserver would retry it for ever.
pub const TRANSACTION_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What marks a homeserver transaction as handled. Its id alone does not: Synapse on
/// SQLite numbers transactions on from the highest one it still holds when it starts, so
/// after a restart with none held it hands out ids it used before, and a new transaction
/// would be taken for a replay and dropped. A replay carries the same events, so the id
/// with a digest of their event ids names one transaction.
pub fn transaction_key(txn_id: &str, events: &[Value]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for event in events {
        digest.update(event["event_id"].as_str().unwrap_or_default());
        digest.update(b"\n");
    }
    format!("{txn_id}.{}", hex::encode(&digest.finalize()[..16]))
}

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route(
            "/_matrix/app/v1/transactions/{txn_id}",
            put(transaction).layer(axum::extract::DefaultBodyLimit::max(TRANSACTION_BODY_LIMIT)),
        )
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_alias))
        .route("/_matrix/app/v1/ping", post(ping))
}

fn matrix_error(status: StatusCode, errcode: &str, error: &str) -> Response {
    (status, Json(json!({ "errcode": errcode, "error": error }))).into_response()
}

/// The homeserver, authenticated by the registration's `hs_token`.
pub struct FromHomeserver;

/// Why the homeserver's credentials were refused.
#[derive(Debug, Clone, Copy)]
pub enum HsTokenError {
    Missing,
    Wrong,
}

impl IntoResponse for HsTokenError {
    fn into_response(self) -> Response {
        match self {
            Self::Missing => matrix_error(StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED", "missing hs_token"),
            Self::Wrong => matrix_error(StatusCode::FORBIDDEN, "M_FORBIDDEN", "wrong hs_token"),
        }
    }
}

/// Checks `Authorization: Bearer <hs_token>` (or the legacy `access_token` query).
pub fn check_hs_token(parts: &Parts, expected: &Secret) -> Result<(), HsTokenError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query = parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())
    });
    match header.or(query) {
        None => Err(HsTokenError::Missing),
        Some(token) if expected.matches(&token) => Ok(()),
        Some(_) => Err(HsTokenError::Wrong),
    }
}

impl FromRequestParts<Arc<Core>> for FromHomeserver {
    type Rejection = HsTokenError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, HsTokenError> {
        check_hs_token(parts, &core.config.bridge_hs_token).map(|()| Self)
    }
}

/// The part of a pushed event the bridge acts on, parsed once; events that do not fit
/// are ignored.
#[derive(Debug, serde::Deserialize)]
struct PushedEvent {
    room_id: ruma::OwnedRoomId,
    sender: ruma::OwnedUserId,
    #[serde(rename = "type")]
    kind: String,
    state_key: Option<String>,
    #[serde(default)]
    content: Value,
}

#[derive(Debug, serde::Deserialize)]
struct Transaction {
    #[serde(default)]
    events: Vec<Value>,
    /// Typing and receipts (MSC2409, `receive_ephemeral` in the registration).
    #[serde(default)]
    ephemeral: Vec<Value>,
}

/// Handles each event once. Messages for the network are only queued here (see
/// `outbox`), so the answer is quick; if the queue cannot take them, the homeserver is
/// told to try the whole transaction again, which queues nothing twice.
async fn transaction(
    State(core): State<Arc<Core>>,
    _: FromHomeserver,
    Path(txn_id): Path<String>,
    Json(body): Json<Transaction>,
) -> Response {
    let key = transaction_key(&txn_id, &body.events);
    match store::transaction_seen(&core.db, "bridge", &key).await {
        Ok(true) => return Json(json!({})).into_response(),
        Ok(false) => {}
        Err(error) => return unavailable(&error.into()),
    }
    for raw in body.events {
        let Ok(event) = serde_json::from_value::<PushedEvent>(raw.clone()) else { continue };
        if let Err(error) = handle_event(&core, &event, &raw).await {
            if error.is_transient() {
                return unavailable(&error);
            }
            tracing::error!(room = %event.room_id, error = %error, "event not handled");
        }
    }
    if let Err(error) = store::mark_transaction(&core.db, "bridge", &key).await {
        return unavailable(&error.into());
    }
    crate::signals::pushed(&core, &body.ephemeral).await;
    Json(json!({})).into_response()
}

fn unavailable(error: &crate::core::BridgeError) -> Response {
    tracing::warn!(error = %error, "transaction not taken; the homeserver will send it again");
    matrix_error(StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN", "the bridge cannot store events now")
}

async fn handle_event(core: &Arc<Core>, event: &PushedEvent, raw: &Value) -> Result<(), crate::core::BridgeError> {
    let (sender, room) = (&event.sender, &event.room_id);
    // The bridge's own users speak for the network; their events are not echoed back.
    if *sender == core.bot || core.is_puppet(sender) {
        return Ok(());
    }
    match event.kind.as_str() {
        "m.room.member"
            if event.state_key.as_deref() == Some(core.bot.as_str()) && event.content["membership"] == "invite" =>
        {
            commands::accept_invite(core, sender, room).await
        }
        kind if content::SENT_EVENT_TYPES.contains(&kind) => {
            outbox::enqueue(&core.db, raw, sender, room).await.map(drop).map_err(Into::into)
        }
        "m.room.message" => match store::management_room_owner(&core.db, room.as_str()).await? {
            Some(owner) if owner == sender.as_str() => {
                // A command is not run twice: its effects (a login, a reply) are not idempotent.
                if let Err(error) = commands::handle(core, sender, room, raw).await {
                    tracing::error!(room = %room, error = %error, "command failed");
                }
                Ok(())
            }
            _ => outbox::enqueue(&core.db, raw, sender, room).await.map(drop).map_err(Into::into),
        },
        _ => Ok(()),
    }
}

async fn query_user(State(core): State<Arc<Core>>, _: FromHomeserver, Path(user_id): Path<String>) -> Response {
    match UserId::parse(&user_id) {
        Ok(user) if core.is_puppet(&user) => match core.matrix.ensure_registered(user.localpart()).await {
            Ok(()) => Json(json!({})).into_response(),
            Err(error) => matrix_error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", &error.to_string()),
        },
        _ => matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "no such user"),
    }
}

async fn query_alias(_: FromHomeserver, Path(_alias): Path<String>) -> Response {
    matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "portals are not created from aliases")
}

async fn ping(_: FromHomeserver) -> Json<Value> {
    Json(json!({}))
}
