use hmac::{Hmac, Mac};
use mxgate_bridge::matrix::{Auth, MatrixClient, MatrixError};
use reqwest::Method;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::Sha256;
use tokio::sync::Mutex;
use url::Url;

use crate::config::HomeserverConfig;
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum HomeserverError {
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error("setting passwords needs MXGATE_REGISTRATION_SHARED_SECRET and a Synapse homeserver")]
    NoSharedSecret,
}

impl HomeserverError {
    fn errcode(&self) -> Option<&str> {
        match self {
            Self::Matrix(e) => e.errcode(),
            Self::NoSharedSecret => None,
        }
    }
}

/// The homeserver as the API sees it: its appservice client, plus the Synapse admin
/// account that sets passwords for people.
pub struct Homeserver {
    pub client: MatrixClient,
    config: HomeserverConfig,
    /// Access token of the Synapse admin account, obtained on first use.
    admin_token: Mutex<Option<Secret>>,
}

impl Homeserver {
    pub fn new(config: HomeserverConfig) -> Self {
        let client = MatrixClient::new(config.server.homeserver_url.clone(), config.api_as_token.clone(), "api");
        Self { client, config, admin_token: Mutex::new(None) }
    }

    pub fn server_name(&self) -> &str {
        &self.config.server.server_name
    }

    pub fn url(&self) -> &Url {
        self.client.base()
    }

    pub async fn ping(&self) -> Result<(), HomeserverError> {
        Ok(self.client.ping().await?)
    }

    /// Has the homeserver ping the API's appservice once it listens (see
    /// [`mxgate_bridge::matrix::MatrixClient::announce_appservice`]).
    pub fn announce(&self) {
        self.client.announce_appservice(self.config.api_appservice_id.clone());
    }

    /// Registers a new user in the API's exclusive namespace, as the appservice.
    pub async fn register_identity(&self) -> Result<OwnedUserId, HomeserverError> {
        let localpart = format!("{}{}", self.config.identity_prefix, crate::secret::random_hex(8));
        self.client.ensure_registered(&localpart).await?;
        let user_id = format!("@{localpart}:{}", self.config.server.server_name);
        UserId::parse(user_id).map_err(|e| MatrixError::Malformed(e.to_string()).into())
    }

    /// Sets the password of `user_id` through Synapse's admin API.
    pub async fn set_password(&self, user_id: &UserId, password: &Secret) -> Result<(), HomeserverError> {
        self.put_password(user_id, password, false).await
    }

    /// Ends every session of `user_id` and replaces its password with one nobody holds
    /// (Synapse cannot unset a password): nobody logs in as it any more.
    pub async fn lock_out(&self, user_id: &UserId) -> Result<(), HomeserverError> {
        self.put_password(user_id, &Secret::new(crate::secret::random_string(32)), true).await
    }

    async fn put_password(&self, user_id: &UserId, password: &Secret, logout: bool) -> Result<(), HomeserverError> {
        let path = format!("/_synapse/admin/v2/users/{}", urlencode(user_id.as_str()));
        let body = json!({ "password": password.expose(), "logout_devices": logout });
        let token = self.admin_token().await?;
        let first = self.call(Method::PUT, &path, Auth::Token(token.expose()), Some(body.clone())).await;
        match first {
            // An expired or revoked admin token: log in again once.
            Err(e) if e.errcode() == Some("M_UNKNOWN_TOKEN") => {
                *self.admin_token.lock().await = None;
                let token = self.admin_token().await?;
                self.call(Method::PUT, &path, Auth::Token(token.expose()), Some(body)).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn admin_token(&self) -> Result<Secret, HomeserverError> {
        let mut cached = self.admin_token.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let shared = self.config.registration_shared_secret.as_ref().ok_or(HomeserverError::NoSharedSecret)?;
        let localpart = &self.config.admin_localpart;
        // Derived, not stored: every replica and every restart can log in with it.
        let password = hmac_sha256_hex(shared.expose(), b"mxgate homeserver admin password");
        let token = match self.register_admin(shared, localpart, &password).await {
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => self.login(localpart, &password).await?,
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
        let nonce = self.call(Method::GET, path, Auth::Anonymous, None).await?;
        let nonce = nonce["nonce"].as_str().ok_or_else(|| MatrixError::Malformed("no nonce".into()))?;
        let message = format!("{nonce}\0{localpart}\0{password}\0admin");
        let mac = hmac_sha1_hex(shared.expose(), message.as_bytes());
        let body = json!({
            "nonce": nonce, "username": localpart, "password": password, "admin": true, "mac": mac,
        });
        let answer = self.call(Method::POST, path, Auth::Anonymous, Some(body)).await?;
        access_token(&answer)
    }

    async fn login(&self, localpart: &str, password: &str) -> Result<Secret, HomeserverError> {
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": localpart },
            "password": password,
            "initial_device_display_name": "mxgate",
        });
        let answer = self.call(Method::POST, "/_matrix/client/v3/login", Auth::Anonymous, Some(body)).await?;
        access_token(&answer)
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Value>,
    ) -> Result<Value, HomeserverError> {
        Ok(self.client.call(method, path, auth, None, body).await?)
    }
}

fn access_token(answer: &Value) -> Result<Secret, HomeserverError> {
    answer["access_token"]
        .as_str()
        .map(Secret::new)
        .ok_or_else(|| MatrixError::Malformed("answer without access_token".into()).into())
}

fn hmac_sha1_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn hmac_sha256_hex(key: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
