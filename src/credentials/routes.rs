use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Credential, CredentialChange, NewCredential};
use crate::auth::ClientAuth;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::routes::Message;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_credential, list_credentials))
        .routes(routes!(update_credential, delete_credential))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialCreated {
    #[schema(example = "Credential created")]
    pub message: String,
    #[serde(flatten)]
    pub credential: Credential,
    /// Shown only in this response; store it now.
    pub client_secret: String,
}

/// Create a client credential (super admin only).
#[utoipa::path(post, path = "/credentials", tag = "credentials", security(("basic" = [])),
    request_body = NewCredential,
    responses(
        (status = 201, body = CredentialCreated),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn create_credential(
    State(state): State<AppState>,
    auth: ClientAuth,
    Json(new): Json<NewCredential>,
) -> ApiResult<(StatusCode, Json<CredentialCreated>)> {
    let (credential, client_secret) = service::create(&state.db, &auth, new).await?;
    let message = "Credential created".into();
    Ok((StatusCode::CREATED, Json(CredentialCreated { message, credential, client_secret })))
}

/// List client credentials (super admin only).
#[utoipa::path(get, path = "/credentials", tag = "credentials", security(("basic" = [])),
    responses((status = 200, body = Vec<Credential>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_credentials(State(state): State<AppState>, auth: ClientAuth) -> ApiResult<Json<Vec<Credential>>> {
    Ok(Json(service::list(&state.db, &auth).await?))
}

/// Change a credential's description, active flag or scopes (super admin only; never the super admin).
#[utoipa::path(put, path = "/credentials/{client_id}", tag = "credentials", security(("basic" = [])),
    params(("client_id" = String, Path)),
    request_body = CredentialChange,
    responses(
        (status = 200, body = Credential),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ))]
async fn update_credential(
    State(state): State<AppState>,
    auth: ClientAuth,
    Path(client_id): Path<String>,
    Json(change): Json<CredentialChange>,
) -> ApiResult<Json<Credential>> {
    Ok(Json(service::update(&state.db, &auth, &client_id, change).await?))
}

/// Delete a credential and revoke its tokens (super admin only; never the super admin);
/// identities left without a token are retired, as when their last token is deleted.
#[utoipa::path(delete, path = "/credentials/{client_id}", tag = "credentials", security(("basic" = [])),
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn delete_credential(
    State(state): State<AppState>,
    auth: ClientAuth,
    Path(client_id): Path<String>,
) -> ApiResult<Json<Message>> {
    service::delete(&state.db, &auth, &client_id).await?;
    crate::tokens::lifecycle::retire_now(&state).await;
    Ok(Json(Message::new("Credential deleted")))
}
