use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;
use tokio::sync::Mutex;
use url::Url;

use crate::config::HomeserverConfig;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum HomeserverError {
    #[error("cannot reach the homeserver ({0})")]
    Unreachable(String),
    #[error("the homeserver refused the request ({status} {errcode}: {message})")]
    Refused {
        status: u16,
        errcode: String,
        message: String,
    },
    #[error("the homeserver returned an unexpected answer ({0})")]
    Malformed(String),
    #[error("setting passwords needs MXGATE_REGISTRATION_SHARED_SECRET and a Synapse homeserver")]
    NoSharedSecret,
}

impl HomeserverError {
    fn errcode(&self) -> Option<&str> {
        match self {
            Self::Refused { errcode, .. } => Some(errcode),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct MatrixErrorBody {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
}

/// A client of the homeserver's client-server API, authenticated as the API's appservice.
pub struct Homeserver {
    http: reqwest::Client,
    base: Url,
    config: HomeserverConfig,
    /// Access token of the Synapse admin account, obtained on first use.
    admin_token: Mutex<Option<Secret>>,
}

impl Homeserver {
    pub fn new(config: HomeserverConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client with default TLS builds");
        Self {
            http,
            base: config.homeserver_url.clone(),
            config,
            admin_token: Mutex::new(None),
        }
    }

    pub fn server_name(&self) -> &str {
        &self.config.server_name
    }

    pub fn url(&self) -> &Url {
        &self.base
    }

    /// `GET /_matrix/client/versions`: the homeserver answers at all.
    pub async fn ping(&self) -> Result<(), HomeserverError> {
        self.call(Method::GET, "/_matrix/client/versions", None, None)
            .await
            .map(drop)
    }

    /// Registers a new user in the API's exclusive namespace, as the appservice.
    pub async fn register_identity(&self) -> Result<OwnedUserId, HomeserverError> {
        let localpart = format!(
            "{}{}",
            self.config.identity_prefix,
            crate::secret::random_hex(8)
        );
        let body = json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        });
        let token = self.config.api_as_token.expose().to_owned();
        let answer = self
            .call(
                Method::POST,
                "/_matrix/client/v3/register",
                Some(&token),
                Some(body),
            )
            .await?;
        let user_id = answer["user_id"]
            .as_str()
            .ok_or_else(|| HomeserverError::Malformed("register answer without user_id".into()))?;
        UserId::parse(user_id).map_err(|e| HomeserverError::Malformed(e.to_string()))
    }

    /// Sets the password of `user_id` through Synapse's admin API.
    pub async fn set_password(
        &self,
        user_id: &UserId,
        password: &Secret,
    ) -> Result<(), HomeserverError> {
        let path = format!("/_synapse/admin/v2/users/{}", urlencode(user_id.as_str()));
        let body = json!({ "password": password.expose(), "logout_devices": false });
        for attempt in 0..2 {
            let token = self.admin_token().await?;
            match self
                .call(Method::PUT, &path, Some(token.expose()), Some(body.clone()))
                .await
            {
                // An expired or revoked admin token: log in again once.
                Err(e) if attempt == 0 && e.errcode() == Some("M_UNKNOWN_TOKEN") => {
                    *self.admin_token.lock().await = None;
                }
                other => return other.map(drop),
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn admin_token(&self) -> Result<Secret, HomeserverError> {
        let mut cached = self.admin_token.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let shared = self
            .config
            .registration_shared_secret
            .as_ref()
            .ok_or(HomeserverError::NoSharedSecret)?;
        let localpart = &self.config.admin_localpart;
        // Derived, not stored: every replica and every restart can log in with it.
        let password = hmac_sha256_hex(shared.expose(), b"mxgate homeserver admin password");
        let token = match self.register_admin(shared, localpart, &password).await {
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => {
                self.login(localpart, &password).await?
            }
            other => other?,
        };
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Synapse's shared-secret registration (`/_synapse/admin/v1/register`).
    async fn register_admin(
        &self,
        shared: &Secret,
        localpart: &str,
        password: &str,
    ) -> Result<Secret, HomeserverError> {
        let path = "/_synapse/admin/v1/register";
        let nonce = self.call(Method::GET, path, None, None).await?;
        let nonce = nonce["nonce"]
            .as_str()
            .ok_or_else(|| HomeserverError::Malformed("no nonce".into()))?;
        let message = format!("{nonce}\0{localpart}\0{password}\0admin");
        let mac = hmac_sha1_hex(shared.expose(), message.as_bytes());
        let body = json!({
            "nonce": nonce, "username": localpart, "password": password, "admin": true, "mac": mac,
        });
        let answer = self.call(Method::POST, path, None, Some(body)).await?;
        access_token(&answer)
    }

    async fn login(&self, localpart: &str, password: &str) -> Result<Secret, HomeserverError> {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": localpart },
            "password": password,
            "initial_device_display_name": "mxgate",
        });
        let answer = self
            .call(Method::POST, "/_matrix/client/v3/login", None, Some(body))
            .await?;
        access_token(&answer)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, HomeserverError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| HomeserverError::Malformed(e.to_string()))?;
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        // reqwest's error text names the URL, which carries no secret: tokens go in headers.
        let response = request
            .send()
            .await
            .map_err(|e| HomeserverError::Unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| HomeserverError::Unreachable(e.to_string()))?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&bytes)
                .map_err(|e| HomeserverError::Malformed(e.to_string()));
        }
        let error: MatrixErrorBody = serde_json::from_slice(&bytes).unwrap_or(MatrixErrorBody {
            errcode: String::new(),
            error: String::from_utf8_lossy(&bytes).into(),
        });
        Err(HomeserverError::Refused {
            status: status.as_u16(),
            errcode: error.errcode,
            message: error.error,
        })
    }
}

fn access_token(answer: &Value) -> Result<Secret, HomeserverError> {
    answer["access_token"]
        .as_str()
        .map(Secret::new)
        .ok_or_else(|| HomeserverError::Malformed("answer without access_token".into()))
}

fn hmac_sha1_hex(key: &str, message: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_sha256_hex(key: &str, message: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
