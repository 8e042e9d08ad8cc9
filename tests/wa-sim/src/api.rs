//! The JSON test API on loopback. It mirrors [`crate::WaSim`]'s methods:
//!
//! | method & path                         | body                                   | answer          |
//! |---------------------------------------|----------------------------------------|-----------------|
//! | `POST /accounts`                      | `{"phone_number", "push_name"?}`       | `AccountInfo`   |
//! | `GET  /accounts/{phone}`              |                                        | `AccountInfo`   |
//! | `POST /accounts/{phone}/scan`         | `{"qr_code"}`                          | `{"device_jid"}`|
//! | `POST /accounts/{phone}/pair-code`    | `{"code"}`                             | `{"device_jid"}`|
//! | `GET  /accounts/{phone}/received`     |                                        | `[Received]`    |
//! | `POST /accounts/{phone}/devices/{device}/remove` |                             | `AccountInfo`   |
//! | `GET  /accounts/{phone}/devices/{device}/pending` |                            | `{"pending", "online"}` |
//! | `POST /groups`                        | `{"creator", "subject", "members"}`    | `GroupInfo`     |
//! | `GET  /groups/{id}`                   |                                        | `GroupInfo`     |

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use wacore_binary::Jid;

use crate::sim::Sim;
use crate::{AccountInfo, Received};

/// Every failure is the caller's (unknown account, bad QR code…): 400 with a message.
struct ApiError(anyhow::Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": format!("{:#}", self.0) }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self(e)
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/accounts", post(create_account))
        .route("/accounts/{phone}", get(get_account))
        .route("/accounts/{phone}/scan", post(scan))
        .route("/accounts/{phone}/pair-code", post(pair_code))
        .route("/accounts/{phone}/received", get(get_received))
        .route("/accounts/{phone}/devices/{device}/remove", post(remove_device))
        .route("/accounts/{phone}/devices/{device}/pending", get(get_pending))
        .route("/groups", post(create_group))
        .route("/groups/{id}", get(get_group))
        .with_state(sim)
}

#[derive(Deserialize)]
struct NewAccount {
    phone_number: String,
    #[serde(default)]
    push_name: String,
}

async fn create_account(State(sim): State<Arc<Sim>>, Json(body): Json<NewAccount>) -> ApiResult<AccountInfo> {
    sim.create_account(&body.phone_number, &body.push_name)?;
    Ok(Json(account_info(&sim, &body.phone_number)?))
}

async fn get_account(State(sim): State<Arc<Sim>>, Path(phone): Path<String>) -> ApiResult<AccountInfo> {
    Ok(Json(account_info(&sim, &phone)?))
}

#[derive(Deserialize)]
struct Scan {
    qr_code: String,
}

async fn scan(
    State(sim): State<Arc<Sim>>,
    Path(phone): Path<String>,
    Json(body): Json<Scan>,
) -> ApiResult<serde_json::Value> {
    let jid = sim.scan_qr(&phone, &body.qr_code)?;
    Ok(Json(serde_json::json!({ "device_jid": jid.to_string() })))
}

#[derive(Deserialize)]
struct PairCode {
    code: String,
}

async fn pair_code(
    State(sim): State<Arc<Sim>>,
    Path(phone): Path<String>,
    Json(body): Json<PairCode>,
) -> ApiResult<serde_json::Value> {
    let jid = crate::pair_code::enter(&sim, &phone, &body.code).await?;
    Ok(Json(serde_json::json!({ "device_jid": jid.to_string() })))
}

async fn remove_device(
    State(sim): State<Arc<Sim>>,
    Path((phone, device)): Path<(String, u16)>,
) -> ApiResult<AccountInfo> {
    sim.remove_device(&phone, device)?;
    Ok(Json(account_info(&sim, &phone)?))
}

async fn get_pending(
    State(sim): State<Arc<Sim>>,
    Path((phone, device)): Path<(String, u16)>,
) -> ApiResult<serde_json::Value> {
    let pending = pending_for(&sim, &phone, device)?;
    Ok(Json(serde_json::json!({ "pending": pending, "online": online(&sim, &phone, device) })))
}

async fn get_received(State(sim): State<Arc<Sim>>, Path(phone): Path<String>) -> ApiResult<Vec<Received>> {
    Ok(Json(received(&sim, &phone)?))
}

#[derive(Deserialize)]
struct NewGroup {
    creator: String,
    subject: String,
    #[serde(default)]
    members: Vec<String>,
}

async fn create_group(State(sim): State<Arc<Sim>>, Json(body): Json<NewGroup>) -> ApiResult<crate::GroupInfo> {
    let id = crate::groups::create(&sim, &body.creator, &body.subject, &body.members)?;
    Ok(Json(crate::groups::info(&sim, &id)?))
}

async fn get_group(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> ApiResult<crate::GroupInfo> {
    Ok(Json(crate::groups::info(&sim, &id)?))
}

pub fn account_info(sim: &Sim, phone: &str) -> anyhow::Result<AccountInfo> {
    let st = sim.peek();
    let acc = st.accounts.get(phone).ok_or_else(|| anyhow::anyhow!("no account {phone}"))?;
    Ok(AccountInfo {
        phone_number: acc.phone_number.clone(),
        jid: Jid::pn(acc.phone_number.as_str()).to_string(),
        lid: acc.lid_jid().to_string(),
        devices: acc.companions.iter().filter(|(_, c)| c.adv_identity.is_some()).map(|(id, _)| *id).collect(),
    })
}

pub fn received(sim: &Sim, phone: &str) -> anyhow::Result<Vec<Received>> {
    let st = sim.peek();
    let acc = st.accounts.get(phone).ok_or_else(|| anyhow::anyhow!("no account {phone}"))?;
    Ok(acc.received.clone())
}

pub fn pending_for(sim: &Sim, phone: &str, device: u16) -> anyhow::Result<usize> {
    let st = sim.peek();
    let acc = st.accounts.get(phone).ok_or_else(|| anyhow::anyhow!("no account {phone}"))?;
    let comp = acc.companions.get(&device).ok_or_else(|| anyhow::anyhow!("{phone} has no linked device {device}"))?;
    Ok(comp.queue.iter().filter(|h| h.ack.is_some()).count())
}

pub fn online(sim: &Sim, phone: &str, device: u16) -> bool {
    sim.peek().online.contains_key(&(phone.to_string(), device))
}
