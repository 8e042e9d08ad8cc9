use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Feed};
use super::{Cursor, Limit};
use crate::auth::TokenAuth;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(feed))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// A cursor from an earlier page or a delivery; from the oldest retained event when absent.
    #[param(value_type = Option<String>, pattern = "^[0-9]{1,18}$")]
    #[serde(default)]
    pub after: Option<Cursor>,
    /// Events per page, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    #[serde(default)]
    pub limit: Option<Limit>,
}

/// The token's event feed: every event its webhooks get, in one order per Matrix
/// identity, with a cursor that never skips one. Catch up by paging with `after`.
#[utoipa::path(get, path = "/events", tag = "events", security(("bearer" = [])),
    params(FeedQuery),
    responses((status = 200, body = Feed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`after` is past the end of the feed")))]
async fn feed(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Json<Feed>> {
    let after = query.after.unwrap_or(Cursor::START);
    Ok(Json(service::feed(&state, &token, after, query.limit.unwrap_or_default()).await?))
}
