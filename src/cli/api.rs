//! The HTTP API as the terminal commands call it: Bearer-authenticated JSON, refusals told
//! with the API's own `message`, and the QR code WebSocket opened by the same HTTP client.

use std::time::Duration;

use reqwest::header::{
    CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use reqwest::{RequestBuilder, Response, StatusCode, Upgraded};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use url::{Position, Url};

use super::{CliError, Connection, token};
use mxgate_bridge::secret::Secret;

/// Only a hung server takes this long: a send waits for WhatsApp (30 s by default) and may
/// upload a file of several megabytes first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Api {
    http: reqwest::Client,
    /// The API's URL, without query or fragment.
    base: Url,
    token: Secret,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    message: String,
}

impl Api {
    /// Checks the URL, then gets the token (asking for it when `MXGATE_TOKEN` is unset).
    pub fn new(connection: &Connection) -> Result<Self, CliError> {
        let mut base = connection.url.clone();
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CliError::BadUrl(base.to_string()));
        }
        base.set_query(None);
        base.set_fragment(None);
        let token = token::read()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The QR code socket is an HTTP/1.1 upgrade.
            .http1_only()
            .build()
            .map_err(|e| CliError::Unexpected(format!("cannot set up HTTP: {e}")))?;
        Ok(Self { http, base, token })
    }

    /// `/api/v1/<segments>` under the API's URL (which may have a path of its own, behind
    /// a reverse proxy); each segment is percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("`new` admits only http(s) URLs, which have a path")
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        url
    }

    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, CliError> {
        self.call(self.http.get(self.endpoint(segments))).await
    }

    pub async fn post_json<T: DeserializeOwned>(&self, segments: &[&str], body: &Value) -> Result<T, CliError> {
        self.call(self.http.post(self.endpoint(segments)).json(body)).await
    }

    pub async fn post_body<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<T, CliError> {
        self.call(self.http.post(self.endpoint(segments)).header(CONTENT_TYPE, content_type).body(body)).await
    }

    async fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        // reqwest marks the Authorization header sensitive: it is never in its errors.
        let request = request.bearer_auth(self.token.expose()).timeout(REQUEST_TIMEOUT);
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        response.json().await.map_err(|e| CliError::Unexpected(innermost(&e)))
    }

    /// Opens the QR code socket of a login. `qr_code_url` names the host the API believes it
    /// is reached at (its MXGATE_PUBLIC_URL), which behind a proxy may be an inside address:
    /// the socket is opened where this command reached the API, with the URL's ticket.
    /// The upgrade goes through the same HTTP client as every call, so `wss://` gets the
    /// same TLS; the ticket, being a credential, stays out of every message.
    pub async fn socket(&self, qr_code_url: &str) -> Result<WebSocketStream<Upgraded>, CliError> {
        let given = Url::parse(qr_code_url).map_err(|e| CliError::Unexpected(format!("qr_code_url: {e}")))?;
        let mut url = self.endpoint(&["devices", "qr-code"]);
        url.set_query(given.query());
        let key = generate_key();
        let request = self
            .http
            .get(url)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_VERSION, "13")
            .header(SEC_WEBSOCKET_KEY, &key);
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(refusal(response).await);
        }
        let expected = derive_accept_key(key.as_bytes());
        if response.headers().get(SEC_WEBSOCKET_ACCEPT).is_none_or(|accept| accept.as_bytes() != expected.as_bytes()) {
            return Err(CliError::Unexpected("the QR code socket's handshake does not match its request".into()));
        }
        let upgraded = response.upgrade().await.map_err(|e| CliError::Unexpected(innermost(&e)))?;
        Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await)
    }

    fn unreachable(&self, error: reqwest::Error) -> CliError {
        let detail = if error.is_timeout() { "no answer in time".to_owned() } else { innermost(&error) };
        CliError::Unreachable { url: self.base[..Position::AfterPath].to_owned(), detail }
    }
}

/// The API's refusal, in its own words when it gave them (a proxy in front may not).
async fn refusal(response: Response) -> CliError {
    let status = response.status();
    let message = match response.json::<ErrorEnvelope>().await {
        Ok(envelope) => envelope.message,
        Err(_) => status.canonical_reason().unwrap_or("refused").to_owned(),
    };
    CliError::Api { status: status.as_u16(), message }
}

/// The root cause, which says what happened ("Connection refused") where the outer
/// errors only say where.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}
