use reqwest::Method;
use ruma::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use mxgate_bridge::ids::{IdError, PhoneNumber};

use crate::bridge_client::{BridgeCallError, segment};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tokens::store::TokenRow;

/// The one platform mxgate bridges today.
pub const WHATSAPP: &str = "wa";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// `wa` (WhatsApp).
    #[schema(example = "wa", pattern = "^wa$")]
    pub platform: String,
    /// Link by pairing code instead of QR codes: the account's number, digits with the
    /// country code. The answer carries the 8-character code to type on that phone.
    #[schema(example = "237123456789", pattern = r"^ *\+?[ .()-]*([0-9][ .()-]*){7,15} *$")]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRef {
    #[schema(example = "237123456789", pattern = r"^ *\+?[ .()-]*([0-9][ .()-]*){7,15} *$")]
    pub device_id: String,
    #[schema(example = "wa", pattern = "^wa$")]
    pub platform: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    #[schema(example = "wa")]
    pub platform: &'static str,
    /// The account's phone number.
    #[schema(example = "237123456789")]
    pub device_id: String,
    /// `connected`, `connecting` (also while reconnecting), `logged_out` (removed on the
    /// phone; link it again) or `error` (see `error`; mxgate keeps retrying).
    #[schema(example = "connected")]
    pub status: String,
    /// Why the device is in `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BridgeLogin {
    id: String,
    state: String,
    error: Option<String>,
}

pub fn check_platform(platform: &str) -> ApiResult<()> {
    if platform != WHATSAPP {
        return Err(ApiError::unprocessable(format!("unknown platform `{platform}`; the supported platform is `wa`")));
    }
    Ok(())
}

pub fn identity(token: &TokenRow) -> ApiResult<ruma::OwnedUserId> {
    UserId::parse(&token.matrix_user_id).map_err(|e| ApiError::Internal(e.into()))
}

impl From<BridgeCallError> for ApiError {
    fn from(error: BridgeCallError) -> Self {
        match error {
            BridgeCallError::Unavailable(message) => ApiError::BridgeUnavailable(message),
            BridgeCallError::Refused { status: 404, errcode, .. } if errcode == "FI.MXGATE.NO_SUCH_GROUP" => {
                ApiError::NotFound("group")
            }
            BridgeCallError::Refused { status: 404, errcode, message } if errcode == "FI.MXGATE.NOT_ON_WHATSAPP" => {
                ApiError::Unprocessable(message)
            }
            BridgeCallError::Refused { status: 404, .. } => ApiError::NotFound("device"),
            BridgeCallError::Refused { status: 403, message, .. } => ApiError::Forbidden(message),
            BridgeCallError::Refused { status: 400, message, .. } => ApiError::Unprocessable(message),
            BridgeCallError::Refused { status: 409, message, .. } => ApiError::Conflict(message),
            // Too many logins in progress: one ends within a QR code's life or two.
            BridgeCallError::Refused { status: 429, message, .. } => {
                ApiError::RateLimited { limit: message, retry_after: 30 }
            }
            BridgeCallError::Refused { message, .. } => ApiError::BridgeUnavailable(message),
        }
    }
}

/// The WebSocket URL that streams the QR codes of a new login for the token's identity.
pub fn link_url(state: &AppState, token: &TokenRow) -> ApiResult<String> {
    let ticket = state.tickets.issue(&identity(token)?);
    let mut url = state.config.public_url();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| ApiError::Internal(anyhow::anyhow!("cannot make a ws URL")))?;
    url.set_path("/api/v1/devices/qr-code");
    url.query_pairs_mut().clear().append_pair("ticket", &ticket);
    Ok(url.into())
}

pub async fn list(state: &AppState, token: &TokenRow) -> ApiResult<Vec<Device>> {
    let mut answer = state.bridge.call(Method::GET, "logins", &identity(token)?, &[], None).await?;
    let logins: Vec<BridgeLogin> = serde_json::from_value(answer["logins"].take())
        .map_err(|e| ApiError::BridgeUnavailable(format!("the bridge listed logins in an unknown shape: {e}")))?;
    Ok(logins
        .into_iter()
        .map(|l| Device { platform: WHATSAPP, device_id: l.id, status: l.state, error: l.error })
        .collect())
}

/// Starts a pairing-code login; returns the code to type on the phone.
pub async fn pair_code(state: &AppState, token: &TokenRow, phone: &str) -> ApiResult<String> {
    let phone: mxgate_bridge::ids::PhoneNumber =
        phone.parse().map_err(|e: mxgate_bridge::ids::IdError| ApiError::unprocessable(format!("phone: {e}")))?;
    let body = json!({ "phone_number": phone.as_str() });
    let step = state.bridge.call(Method::POST, "login/start/phone", &identity(token)?, &[], Some(body)).await?;
    step["display_and_wait"]["data"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::BridgeUnavailable("the bridge did not return a pairing code".into()))
}

pub async fn log_out(state: &AppState, token: &TokenRow, device: DeviceRef) -> ApiResult<()> {
    check_platform(&device.platform)?;
    let phone: PhoneNumber = device.device_id.parse().map_err(|e: IdError| ApiError::unprocessable(e.to_string()))?;
    let path = format!("logout/{}", segment(phone.as_str()));
    let bridge = state.bridge.for_device(&state.db, phone.as_str()).await?;
    bridge.call(Method::POST, &path, &identity(token)?, &[], Some(json!({}))).await?;
    Ok(())
}
