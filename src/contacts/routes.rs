//! `POST /devices/{id}/contacts/check`, `GET /devices/{id}/contacts[/{phone}]`,
//! `GET|PUT /devices/{id}/profile`.

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
    OpenApiRouter::new()
        .routes(routes!(check))
        .routes(routes!(contacts))
        .routes(routes!(contact))
        .routes(routes!(own_profile, set_profile))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumbersToCheck {
    /// 1 to 500 phone numbers, international format, digits with an optional `+`.
    #[schema(value_type = Vec<PhoneText>, example = json!(["237698765432", "+237677777777"]), min_items = 1, max_items = 500)]
    pub phones: Vec<String>,
}

/// A phone number as the spec says it: 7 to 15 digits, an optional `+`.
pub struct PhoneText;

impl utoipa::PartialSchema for PhoneText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^\+?[0-9]{7,15}$"))
            .into()
    }
}

impl ToSchema for PhoneText {}

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

#[derive(Debug, Serialize, ToSchema)]
pub struct KnownContact {
    #[schema(example = "237698765432")]
    pub phone: String,
    #[schema(example = "237698765432@s.whatsapp.net")]
    pub jid: String,
    /// The name the account saved for them, or their push name, once seen.
    pub name: Option<String>,
    /// Their direct chat with the device, when there is one.
    pub chat_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KnownContacts {
    pub contacts: Vec<KnownContact>,
}

/// The people the device's chats know: its direct chats' contacts and the group members
/// who wrote, with the names seen (saved on the phone, or push names).
#[utoipa::path(get, path = "/devices/{device_id}/contacts", tag = "contacts", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    responses((status = 200, body = KnownContacts), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
async fn contacts(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
) -> ApiResult<Json<KnownContacts>> {
    let user = identity(&token)?;
    crate::chats::service::owned(&state, &user, &device_id).await?;
    let known = mxgate_bridge::store::contacts_of(&state.db, &device_id).await?;
    let contacts = known
        .into_iter()
        .map(|c| KnownContact {
            jid: format!("{}@s.whatsapp.net", c.phone),
            chat_id: c.direct.then(|| format!("{}@s.whatsapp.net", c.phone)),
            phone: c.phone,
            name: c.name,
        })
        .collect();
    Ok(Json(KnownContacts { contacts }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactProfile {
    pub phone: String,
    pub jid: String,
    /// The name the account saved for them, or their push name, once seen.
    pub name: Option<String>,
    /// Their "About" text, as WhatsApp shows it to the device.
    pub about: Option<String>,
    /// Where WhatsApp serves their profile picture (short-lived on WhatsApp's side).
    pub picture_url: Option<String>,
}

/// A contact's name, About and profile picture, as WhatsApp shows them to the device.
#[utoipa::path(get, path = "/devices/{device_id}/contacts/{phone}", tag = "contacts", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number"),
           ("phone" = String, Path, pattern = r"^\+?[0-9]{7,15}$", description = "The contact's phone number")),
    responses((status = 200, body = ContactProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn contact(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path((device_id, phone)): Path<(String, String)>,
) -> ApiResult<Json<ContactProfile>> {
    let user = identity(&token)?;
    let phone: PhoneNumber = phone.parse().map_err(|e| ApiError::unprocessable(format!("phone: {e}")))?;
    linked(&state, &user, &device_id).await?;
    let bridge = state.bridge.for_device(&state.db, &device_id).await?;
    let path = format!("contacts/{phone}/profile");
    let profile = bridge.call(Method::GET, &path, &user, &[("login_id", &device_id)], None).await?;
    let name = mxgate_bridge::store::puppet_name(&state.db, phone.as_str()).await?.flatten();
    Ok(Json(ContactProfile {
        jid: format!("{phone}@s.whatsapp.net"),
        phone: phone.to_string(),
        name,
        about: profile["about"].as_str().map(str::to_owned),
        picture_url: profile["picture_url"].as_str().map(str::to_owned),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OwnProfile {
    /// The name contacts see beside the number.
    pub push_name: Option<String>,
    pub about: Option<String>,
    pub picture_url: Option<String>,
}

/// The linked account's own profile: push name, About, picture.
#[utoipa::path(get, path = "/devices/{device_id}/profile", tag = "contacts", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    responses((status = 200, body = OwnProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn own_profile(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
) -> ApiResult<Json<OwnProfile>> {
    let user = identity(&token)?;
    linked(&state, &user, &device_id).await?;
    let bridge = state.bridge.for_device(&state.db, &device_id).await?;
    let profile = bridge.call(Method::GET, "profile", &user, &[("login_id", &device_id)], None).await?;
    let text = |field: &str| profile[field].as_str().map(str::to_owned);
    Ok(Json(OwnProfile { push_name: text("name"), about: text("about"), picture_url: text("picture_url") }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1 to 25 characters.
    #[schema(min_length = 1, max_length = 25)]
    pub push_name: Option<String>,
    /// Up to 139 characters.
    #[schema(max_length = 139)]
    pub about: Option<String>,
    /// A picture (JPEG, PNG, GIF or WebP), base64; sent as a JPEG of at most 640×640.
    /// A picture mxgate cannot read is a 422.
    #[schema(min_length = 16, pattern = r"^[A-Za-z0-9+/]+={0,2}$")]
    pub picture_base64: Option<String>,
}

/// Change the account's push name, About or picture; what is left out stays.
#[utoipa::path(put, path = "/devices/{device_id}/profile", tag = "contacts", security(("bearer" = [])),
    params(("device_id" = String, Path, description = "The device's phone number")),
    request_body = ProfileUpdate,
    responses((status = 200, body = OwnProfile), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn set_profile(
    State(state): State<AppState>,
    TokenAuth(token): TokenAuth,
    Path(device_id): Path<String>,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<Json<OwnProfile>> {
    let user = identity(&token)?;
    if body.push_name.as_ref().is_some_and(|n| n.trim().is_empty() || n.chars().count() > 25) {
        return Err(ApiError::unprocessable("push_name is 1 to 25 characters"));
    }
    if body.about.as_ref().is_some_and(|a| a.chars().count() > 139) {
        return Err(ApiError::unprocessable("about is at most 139 characters"));
    }
    let picture = body.picture_base64.as_deref().map(super::picture).transpose()?;
    linked(&state, &user, &device_id).await?;
    let change = mxgate_bridge::network::ProfileChange { push_name: body.push_name, about: body.about, picture };
    let change = serde_json::to_value(change).map_err(|e| ApiError::Internal(e.into()))?;
    let bridge = state.bridge.for_device(&state.db, &device_id).await?;
    bridge.call(Method::PUT, "profile", &user, &[("login_id", &device_id)], Some(change)).await?;
    own_profile(State(state), TokenAuth(token), Path(device_id)).await
}
