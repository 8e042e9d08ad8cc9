//! The API's own appservice endpoints. The homeserver pushes every event of the rooms
//! token identities are in; the API turns puppets' messages into webhook deliveries
//! and receipts into `message.status` deliveries. (Send outcomes are read from the send
//! queue's record, not from pushed status events: see `messages::late`.)

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use mxgate_bridge::store as bridge_store;
use ruma::{RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod catch_up;

use crate::extract::Json;
use crate::state::AppState;
use crate::webhooks::catalogue::EventType;
use crate::webhooks::delivery::{self, Event};
use crate::webhooks::payload;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(transaction)).routes(routes!(query_user)).routes(routes!(ping))
}

/// The homeserver, authenticated by the API registration's `hs_token`.
pub struct FromHomeserver;

impl FromRequestParts<AppState> for FromHomeserver {
    type Rejection = mxgate_bridge::HsTokenError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        mxgate_bridge::check_hs_token(parts, &state.config.homeserver.api_hs_token).map(|()| Self)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Empty {}

fn unavailable(error: sqlx::Error) -> Response {
    tracing::error!(error = %error, "appservice transaction not stored");
    let body = json!({ "errcode": "M_UNKNOWN", "error": "store unavailable" });
    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

/// A homeserver transaction; fields beside `events` (ephemeral events, later Matrix
/// versions' additions) are not the API's concern.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Transaction {
    pub events: Vec<Value>,
}

/// Receives the homeserver's events. Deliveries are stored before the transaction is
/// acknowledged; a replayed transaction id changes nothing.
#[utoipa::path(put, path = "/_matrix/app/v1/transactions/{txn_id}", tag = "appservice",
    security(("homeserver" = [])),
    params(("txn_id" = String, Path)),
    request_body = Transaction,
    responses((status = 200, body = Empty), (status = 401), (status = 403)))]
async fn transaction(
    State(state): State<AppState>,
    _: FromHomeserver,
    Path(txn_id): Path<String>,
    Json(body): Json<Transaction>,
) -> Response {
    let key = mxgate_bridge::transaction_key(&txn_id, &body.events);
    match bridge_store::transaction_seen(&state.db, "api", &key).await {
        Ok(true) => return axum::Json(json!({})).into_response(),
        Ok(false) => {}
        Err(error) => return unavailable(error),
    }
    for event in &body.events {
        if let Err(error) = handle_event(&state, event).await {
            return unavailable(error);
        }
    }
    if let Err(error) = bridge_store::mark_transaction(&state.db, "api", &key).await {
        return unavailable(error);
    }
    state.deliveries.notify_one();
    axum::Json(json!({})).into_response()
}

/// One pushed event (or one `catch_up` fetched). Handling it again changes nothing.
async fn handle_event(state: &AppState, event: &Value) -> Result<(), sqlx::Error> {
    let Some(room) = event["room_id"].as_str().and_then(|r| RoomId::parse(r).ok()) else { return Ok(()) };
    match event["type"].as_str() {
        Some("m.room.member") => {
            let invited = event["content"]["membership"] == "invite";
            if let Some(user) = event["state_key"].as_str().and_then(|u| UserId::parse(u).ok())
                && invited
                && is_identity(state, &user)
                && let Err(error) = state.homeserver.client.join(&user, &room).await
            {
                tracing::warn!(room = %room, error = %error, "identity could not accept an invite");
            }
        }
        // Receipts are the bot's status events, beside what payloads are made of.
        Some(kind) if payload::TYPES.contains(&kind) || kind == mxgate_bridge::MESSAGE_STATUS => {
            let Some(portal) = bridge_store::portal_by_room(&state.db, room.as_str()).await? else {
                tracing::debug!(room = %room, event = %event["event_id"], "message outside a portal");
                return Ok(());
            };
            let Some(login) = bridge_store::login(&state.db, &portal.account_id).await? else { return Ok(()) };
            tracing::debug!(room = %room, event = %event["event_id"], sender = %event["sender"], "portal message");
            let Some(event_id) = event["event_id"].as_str() else { return Ok(()) };
            // Only what the network said is delivered: the identity's own sends are not
            // echoed, but what the account wrote on its phone (bridged as the identity, with
            // its network source) is news.
            let own = event["sender"].as_str() == Some(login.owner.as_str());
            if own && !event["content"][mxgate_bridge::SOURCE_FIELD].is_object() {
                return Ok(());
            }
            let media = state.config.webhook_media;
            let Some((kind, payload)) = payload::of_event(state, event, &portal, &login.owner, media).await? else {
                return Ok(());
            };
            if own && kind != EventType::MessageSent {
                return Ok(());
            }
            let event = Event { identity: &login.owner, event_id, kind, payload };
            delivery::enqueue(&state.db, event).await?;
        }
        _ => {}
    }
    Ok(())
}

fn is_identity(state: &AppState, user: &UserId) -> bool {
    user.server_name() == state.homeserver.server_name()
        && user.localpart().starts_with(&state.config.homeserver.identity_prefix)
}

/// Users of the API's namespace exist only when mxgate made them.
#[utoipa::path(get, path = "/_matrix/app/v1/users/{user_id}", tag = "appservice",
    security(("homeserver" = [])), params(("user_id" = String, Path)),
    responses((status = 404, description = "The API creates its users itself")))]
async fn query_user(_: FromHomeserver, Path(_user_id): Path<String>) -> Response {
    let body = json!({ "errcode": "M_NOT_FOUND", "error": "token identities are created by mxgate" });
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

#[utoipa::path(post, path = "/_matrix/app/v1/ping", tag = "appservice", security(("homeserver" = [])),
    responses((status = 200, body = Empty)))]
async fn ping(_: FromHomeserver) -> axum::Json<Value> {
    axum::Json(json!({}))
}
