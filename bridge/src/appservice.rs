//! The homeserver-facing endpoints of the bridge's appservice.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ruma::{RoomId, UserId};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::commands;
use crate::core::Core;
use crate::{outgoing, store};

pub fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transaction))
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
pub fn check_hs_token(parts: &Parts, expected: &str) -> Result<(), HsTokenError> {
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
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.as_bytes())) => Ok(()),
        Some(_) => Err(HsTokenError::Wrong),
    }
}

impl FromRequestParts<Arc<Core>> for FromHomeserver {
    type Rejection = HsTokenError;

    async fn from_request_parts(parts: &mut Parts, core: &Arc<Core>) -> Result<Self, HsTokenError> {
        check_hs_token(parts, &core.config.bridge_hs_token).map(|()| Self)
    }
}

/// Handles each event once: a replayed transaction id is acknowledged and ignored.
async fn transaction(
    State(core): State<Arc<Core>>,
    _: FromHomeserver,
    Path(txn_id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    match store::transaction_seen(&core.db, "bridge", &txn_id).await {
        Ok(true) => return Json(json!({})).into_response(),
        Ok(false) => {}
        Err(error) => {
            tracing::error!(error = %error, "cannot read transactions");
            return matrix_error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "store unavailable");
        }
    }
    let events = body["events"].as_array().cloned().unwrap_or_default();
    for event in &events {
        handle_event(&core, event).await;
    }
    if let Err(error) = store::mark_transaction(&core.db, "bridge", &txn_id).await {
        tracing::error!(error = %error, "cannot record the transaction");
        return matrix_error(StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN", "store unavailable");
    }
    Json(json!({})).into_response()
}

async fn handle_event(core: &Arc<Core>, event: &Value) {
    let (Some(sender), Some(room)) = (
        event["sender"].as_str().and_then(|s| UserId::parse(s).ok()),
        event["room_id"].as_str().and_then(|r| RoomId::parse(r).ok()),
    ) else {
        return;
    };
    // The bridge's own users speak for the network; their events are not echoed back.
    if sender == core.bot || core.is_puppet(&sender) {
        return;
    }
    let result = match event["type"].as_str() {
        Some("m.room.member")
            if event["state_key"].as_str() == Some(core.bot.as_str()) && event["content"]["membership"] == "invite" =>
        {
            commands::accept_invite(core, &sender, &room).await
        }
        Some("m.sticker") => outgoing::handle(core, event, &sender, &room).await,
        Some("m.room.message") => match store::management_room_owner(&core.db, room.as_str()).await {
            Ok(Some(owner)) if owner == sender.as_str() => commands::handle(core, &sender, &room, event).await,
            Ok(_) => outgoing::handle(core, event, &sender, &room).await,
            Err(error) => Err(error.into()),
        },
        _ => Ok(()),
    };
    if let Err(error) = result {
        tracing::error!(room = %room, error = %error, "event not handled");
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
