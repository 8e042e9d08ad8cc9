use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::delivery::Delivery;
use super::queue::Status;
use super::service::{self, NewWebhook, Redeliver, RotateSecret, Webhook, WebhookChange};
use crate::auth::TokenAuth;
use crate::error::{ApiResult, ErrorBody};
use crate::events::{Cursor, Limit};
use crate::extract::{Json, Path, Query};
use crate::routes::Message;
use crate::state::AppState;
use crate::time::Timestamp;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
        .routes(routes!(redeliver))
        .routes(routes!(rotate_secret))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[schema(example = "Webhook created")]
    pub message: String,
    #[serde(flatten)]
    pub webhook: Webhook,
    /// HMAC-SHA256 key that signs every delivery. Shown only in this response.
    pub secret: String,
}

/// Register a webhook for this token's incoming messages.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, body = WebhookCreated),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn create_webhook(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Json(new): Json<NewWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let (webhook, secret) = service::create(&state, &token, new).await?;
    Ok((StatusCode::CREATED, Json(WebhookCreated { message: "Webhook created".into(), webhook, secret })))
}

/// List this token's webhooks.
#[utoipa::path(get, path = "/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = Vec<Webhook>), (status = 401, body = ErrorBody)))]
async fn list_webhooks(State(state): State<AppState>, TokenAuth(token): TokenAuth) -> ApiResult<Json<Vec<Webhook>>> {
    Ok(Json(service::list(&state, &token).await?))
}

/// Change a webhook's url or active flag; omitted fields stay as they are.
#[utoipa::path(put, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = WebhookChange,
    responses(
        (status = 200, body = Webhook),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn update_webhook(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
    Json(change): Json<WebhookChange>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(service::update(&state, &token, &id, change).await?))
}

/// Delete a webhook.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    service::delete(&state, &token, &id).await?;
    Ok(Json(Message::new("Webhook deleted")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// The `X-Next-Cursor` of the previous page (or any delivery's `cursor`); from the start when absent.
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,18}$")]
    #[serde(default)]
    pub after: Option<Cursor>,
    /// Deliveries per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    #[serde(default)]
    pub limit: Option<Limit>,
    /// Only deliveries with this status.
    #[param(value_type = Option<Status>)]
    #[serde(default)]
    pub status: Option<Status>,
}

/// The delivery log of a webhook: every queued event, its attempts and outcome, in event
/// order (oldest first), a page at a time. When more follow, `X-Next-Cursor` holds the
/// `after` of the next page (and `Link` its URL, `rel="next"`).
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path), DeliveriesQuery),
    responses(
        (status = 200, body = Vec<Delivery>, headers(
            ("X-Next-Cursor" = String, description = "`after` of the next page; absent on the last page"),
            ("Link" = String, description = "`<…?after=…>; rel=\"next\"`; absent on the last page"),
        )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn list_deliveries(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> ApiResult<(HeaderMap, Json<Vec<Delivery>>)> {
    let after = query.after.unwrap_or(Cursor::START);
    let limit = query.limit.unwrap_or_default();
    let (deliveries, next) = service::deliveries(&state, &token, &id, after, limit, query.status).await?;
    let mut headers = HeaderMap::new();
    if let Some(next) = next {
        let mut link = format!("</api/v1/webhooks/{id}/deliveries?after={next}&limit={}", limit.0);
        if let Some(status) = query.status {
            link.push_str(&format!("&status={}", status.as_str()));
        }
        link.push_str(">; rel=\"next\"");
        headers.insert("x-next-cursor", HeaderValue::from_str(&next.to_string()).expect("digits"));
        if let Ok(link) = HeaderValue::from_str(&link) {
            headers.insert(header::LINK, link);
        }
    }
    Ok((headers, Json(deliveries)))
}

/// Send one delivery again now, whatever its status; a paused webhook gets it once resumed.
#[utoipa::path(post, path = "/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202, body = Delivery), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn retry_delivery(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Delivery>)> {
    Ok((StatusCode::ACCEPTED, Json(service::retry(&state, &token, &id, &delivery_id).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    #[schema(example = "Failed deliveries queued again")]
    pub message: String,
    /// How many failed deliveries were queued again.
    pub redelivered: u64,
}

/// Send again every failed delivery of an event queued at or after `since`.
#[utoipa::path(post, path = "/webhooks/{id}/redeliver", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = Redeliver,
    responses(
        (status = 202, body = Redelivered),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn redeliver(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
    Json(body): Json<Redeliver>,
) -> ApiResult<(StatusCode, Json<Redelivered>)> {
    let redelivered = service::redeliver(&state, &token, &id, body).await?;
    Ok((StatusCode::ACCEPTED, Json(Redelivered { message: "Failed deliveries queued again".into(), redelivered })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    #[schema(example = "Webhook secret rotated")]
    pub message: String,
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The new secret (`whsec_…`). Shown only in this response.
    pub secret: String,
    /// Until then, deliveries are signed with the previous secret as well.
    pub previous_secret_expires_at: Timestamp,
}

/// Give a webhook a new signing secret. The body may be omitted. Until the grace period
/// ends, each delivery carries two signatures (one per secret) in `webhook-signature` and
/// `X-Mxgate-Signature`, so a receiver can switch to the new secret without refusing any.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body(content = Option<RotateSecret>, description = "Optional; the grace period defaults to a day"),
    responses(
        (status = 200, body = SecretRotated),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn rotate_secret(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
    body: Option<Json<Option<RotateSecret>>>,
) -> ApiResult<Json<SecretRotated>> {
    // No body, or `null`: the defaults.
    let rotate = body.and_then(|Json(rotate)| rotate).unwrap_or_default();
    let (webhook, secret, until) = service::rotate_secret(&state, &token, &id, rotate).await?;
    Ok(Json(SecretRotated {
        message: "Webhook secret rotated".into(),
        webhook,
        secret,
        previous_secret_expires_at: until,
    }))
}
