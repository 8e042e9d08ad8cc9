use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::delivery::Delivery;
use super::service::{self, NewWebhook, Webhook, WebhookChange};
use crate::auth::TokenAuth;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::routes::Message;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
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

/// The delivery log of a webhook: every queued event, its attempts and outcome.
#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<Delivery>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Delivery>>> {
    Ok(Json(service::deliveries(&state, &token, &id).await?))
}
