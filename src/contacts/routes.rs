//! `POST /devices/{id}/contacts/check`.

use axum::extract::State;
use mxgate_bridge::ids::PhoneNumber;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::TokenAuth;
use crate::devices::service::identity;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::messages::service::linked;
use crate::state::AppState;

/// Numbers in one check, as one query to WhatsApp.
const MOST: usize = 500;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(check))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumbersToCheck {
    /// 1 to 500 phone numbers, international format, digits with an optional `+`.
    #[schema(example = json!(["237698765432", "+237677777777"]), min_items = 1, max_items = 500)]
    pub phones: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checked {
    /// One per number asked, in the same order.
    pub results: Vec<NumberResult>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NumberResult {
    /// As given.
    #[schema(example = "+237698765432")]
    pub phone: String,
    pub on_whatsapp: bool,
    /// Its chat JID (what `chat_id` names), for a number on WhatsApp.
    #[schema(example = "237698765432@s.whatsapp.net")]
    pub jid: Option<String>,
    /// A WhatsApp Business account.
    pub business: bool,
}

/// Ask which numbers are on WhatsApp before sending to them: one query to WhatsApp for
/// the whole list, answers reused for an hour.
#[utoipa::path(post, path = "/devices/{device_id}/contacts/check", tag = "contacts", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    request_body = NumbersToCheck,
    responses((status = 200, body = Checked), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn check(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Json(body): Json<NumbersToCheck>,
) -> ApiResult<Json<Checked>> {
    let user = identity(&token)?;
    if body.phones.is_empty() || body.phones.len() > MOST {
        return Err(ApiError::unprocessable(format!("phones holds 1 to {MOST} numbers")));
    }
    let mut parsed = Vec::with_capacity(body.phones.len());
    for (n, phone) in body.phones.iter().enumerate() {
        let number = phone.parse::<PhoneNumber>();
        parsed.push(number.map_err(|e| ApiError::unprocessable(format!("phones[{n}]: {e}")))?);
    }
    linked(&state, &user, &device_id).await?;
    state.limits.checks(&token.id, parsed.len() as u32)?;
    let bridge = state.bridge.for_device(&state.db, &device_id).await?;
    let answer = bridge
        .call(Method::POST, "contacts/check", &user, &[("login_id", &device_id)], Some(json!({ "phones": parsed })))
        .await?;
    let answered: Vec<NumberResult> = serde_json::from_value(answer["results"].clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the bridge answered a check unreadably: {e}")))?;
    // Each answer under the number as the caller wrote it.
    let results =
        body.phones.into_iter().zip(answered).map(|(phone, answer)| NumberResult { phone, ..answer }).collect();
    Ok(Json(Checked { results }))
}
