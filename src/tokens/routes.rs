use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, NewToken, TokenInfo};
use crate::auth::ClientAuth;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token, list_tokens)).routes(routes!(delete_token))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenCreated {
    #[schema(example = "Token created")]
    pub message: String,
    /// The bearer token. Shown only in this response; mxgate keeps only its hash.
    #[schema(example = "mt_Zb3x…")]
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// Issue an `mt_` token. The first token ever is the admin token and creates the host Matrix identity.
#[utoipa::path(post, path = "/tokens", tag = "tokens", security(("basic" = [])),
    request_body = NewToken,
    responses(
        (status = 201, body = TokenCreated),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 502, body = ErrorBody),
    ))]
async fn create_token(
    State(state): State<AppState>,
    auth: ClientAuth,
    Json(new): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<TokenCreated>)> {
    let (token, info) = service::issue(&state, &auth, new).await?;
    let created = TokenCreated { message: "Token created".into(), token: token.reveal(), info };
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the calling credential's tokens (the super admin: tokens without a credential).
#[utoipa::path(get, path = "/tokens", tag = "tokens", security(("basic" = [])),
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_tokens(State(state): State<AppState>, auth: ClientAuth) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(service::list(&state, &auth).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDeleted {
    #[schema(example = "Token deleted")]
    pub message: String,
    /// When this was its identity's last token: the devices logged out with the identity
    /// (whose Matrix sessions and password ended too).
    pub devices_unlinked: Vec<String>,
}

/// Revoke one of the calling credential's tokens; it is refused from the next request on.
/// When it was its identity's last, the identity is retired: its devices are logged out,
/// its Matrix sessions ended and its password replaced by one nobody holds.
#[utoipa::path(delete, path = "/tokens/{token_id}", tag = "tokens", security(("basic" = [])),
    params(("token_id" = String, Path)),
    responses(
        (status = 200, body = TokenDeleted),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ))]
async fn delete_token(
    State(state): State<AppState>,
    auth: ClientAuth,
    Path(token_id): Path<String>,
) -> ApiResult<Json<TokenDeleted>> {
    let devices_unlinked = service::revoke(&state, &auth, &token_id).await?;
    Ok(Json(TokenDeleted { message: "Token deleted".into(), devices_unlinked }))
}
