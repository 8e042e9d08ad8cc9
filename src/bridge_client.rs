//! The API's client of the bridge's provisioning API, acting for a token's identity.

use std::time::Duration;

use mxgate_bridge::config::ProvisioningConfig;
use mxgate_bridge::matrix::ErrorBody;
use mxgate_bridge::secret::Secret;
use reqwest::{Method, StatusCode};
use ruma::UserId;
use serde_json::Value;
use url::Url;

use crate::db::Db;

/// An answer of the bridge that was not a success, with Matrix's error fields.
#[derive(Debug, thiserror::Error)]
pub enum BridgeCallError {
    #[error("the bridge is unavailable ({0})")]
    Unavailable(String),
    #[error("{message}")]
    Refused { status: u16, errcode: String, message: String },
}

#[derive(Clone)]
pub struct BridgeClient {
    http: reqwest::Client,
    base: Url,
    secret: Secret,
}

impl BridgeClient {
    pub fn new(config: &ProvisioningConfig) -> Self {
        // Login steps long-poll for minutes; every other call answers quickly.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("reqwest builds");
        Self { http, base: config.bridge_url.clone(), secret: config.provisioning_secret.clone() }
    }

    /// The bridge for something only `device`'s client can do (resolve a contact, join a
    /// group, log out): that of the process that runs the device, which may be another
    /// process on the same database. A device no live process runs yet goes to this
    /// process's bridge, which answers that it is not connected.
    pub async fn for_device(&self, db: &Db, device: &str) -> Result<BridgeClient, BridgeCallError> {
        let owner = mxgate_bridge::lease::bridge_of(db, device)
            .await
            .map_err(|e| BridgeCallError::Unavailable(format!("the device's process is unknown: {e}")))?;
        Ok(Self { base: owner.unwrap_or_else(|| self.base.clone()), ..self.clone() })
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        acting: &UserId,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<Value, BridgeCallError> {
        let base = &self.base;
        let mut url = base
            .join(&format!("/_matrix/provision/v3/{path}"))
            .map_err(|e| BridgeCallError::Unavailable(e.to_string()))?;
        url.query_pairs_mut().append_pair("user_id", acting.as_str()).extend_pairs(query);
        let mut request = self.http.request(method, url).bearer_auth(self.secret.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| BridgeCallError::Unavailable(format!("no bridge answers at {base} ({})", e.without_url())))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| BridgeCallError::Unavailable(e.to_string()))?;
        if status == StatusCode::OK || status == StatusCode::CREATED {
            return serde_json::from_slice(&bytes).map_err(|e| BridgeCallError::Unavailable(e.to_string()));
        }
        let error = ErrorBody::parse(&bytes);
        Err(BridgeCallError::Refused { status: status.as_u16(), errcode: error.errcode, message: error.error })
    }
}

impl BridgeCallError {
    /// What an API client may read: the bridge's own words for what it refused (a 4xx,
    /// or WhatsApp's refusal), a fixed text when the bridge itself failed; that detail is
    /// for the log.
    pub fn client_message(&self) -> String {
        match self {
            Self::Refused { status, message, errcode } if *status < 500 || errcode == "FI.MXGATE.NETWORK_REFUSED" => {
                message.clone()
            }
            _ => "the bridge could not do this now; try again".into(),
        }
    }
}

/// Path segments are percent-encoded before they reach the bridge.
pub use mxgate_bridge::matrix::segment;
