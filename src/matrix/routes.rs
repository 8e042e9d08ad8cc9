use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::TokenAuth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Json;
use crate::secret::{self, Secret};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(matrix_credentials))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatrixCredentials {
    #[schema(example = "Use these in any Matrix client; the password replaces any earlier one")]
    pub message: String,
    #[schema(example = "http://127.0.0.1:8008")]
    pub homeserver_url: String,
    #[schema(example = "@mt_3f2a9c0d1e2b4a5c:localhost")]
    pub user_id: String,
    /// The localpart, which clients accept as the username.
    #[schema(example = "mt_3f2a9c0d1e2b4a5c")]
    pub username: String,
    pub password: String,
}

/// Get a username and a fresh password for this token's Matrix identity, to open it
/// in an ordinary Matrix client. Each call sets a new password; earlier sessions stay logged in.
/// The host identity's password is reset only with the admin token, not a `use_host` one.
#[utoipa::path(post, path = "/matrix/credentials", tag = "matrix", security(("bearer" = [])),
    responses(
        (status = 200, body = MatrixCredentials),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 501, body = ErrorBody), (status = 502, body = ErrorBody),
    ))]
async fn matrix_credentials(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
) -> ApiResult<Json<MatrixCredentials>> {
    if token.use_host && !token.is_admin {
        return Err(ApiError::Forbidden("only the admin token may set the host identity's Matrix password".into()));
    }
    let user_id = ruma::UserId::parse(&token.matrix_user_id).map_err(|e| ApiError::Internal(e.into()))?;
    let password = Secret::new(secret::random_string(24));
    state.homeserver.set_password(&user_id, &password).await.map_err(|e| match e {
        crate::matrix::HomeserverError::NoSharedSecret => ApiError::NotSupported(e.to_string()),
        e => e.into(),
    })?;
    Ok(Json(MatrixCredentials {
        message: "Use these in any Matrix client; the password replaces any earlier one".into(),
        homeserver_url: state.homeserver.url().as_str().trim_end_matches('/').to_owned(),
        user_id: user_id.to_string(),
        username: user_id.localpart().to_owned(),
        password: password.expose().to_owned(),
    }))
}
