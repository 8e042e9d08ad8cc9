//! A small client of the homeserver's client-server API, authenticated as an
//! appservice and acting as any user of its namespaces (`?user_id=`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use ruma::{OwnedEventId, OwnedMxcUri, OwnedRoomId, RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("cannot reach the homeserver ({0})")]
    Unreachable(String),
    #[error("the homeserver refused the request ({status} {errcode}: {message})")]
    Refused { status: u16, errcode: String, message: String },
    #[error("the homeserver returned an unexpected answer ({0})")]
    Malformed(String),
}

impl MatrixError {
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Refused { errcode, .. } => Some(errcode),
            _ => None,
        }
    }
}

/// A Matrix error body, `{"errcode", "error"}`; anything else becomes its text.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub errcode: String,
    #[serde(default)]
    pub error: String,
}

impl ErrorBody {
    pub fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Self { errcode: String::new(), error: String::from_utf8_lossy(bytes).into() })
    }
}

/// Which access token a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Appservice,
    Token(&'a str),
    Anonymous,
}

#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base: Url,
    as_token: Secret,
    /// Whose calls these are in `mxgate_homeserver_requests_total`: `bridge` or `api`.
    appservice: &'static str,
}

/// `text` as one URL path segment. Form encoding writes a space as `+`, which a path
/// keeps as a plus; a `+` of the text itself is `%2B` by then, so every `+` left is a space.
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

impl MatrixClient {
    pub fn new(base: Url, as_token: Secret, appservice: &'static str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client with default TLS builds");
        Self { http, base, as_token, appservice }
    }

    /// Counts a call in `mxgate_homeserver_requests_total`, by endpoint: what a message
    /// costs the homeserver is read there (README lists it).
    fn count(&self, method: &Method, url: &Url) {
        let labels =
            [("appservice", self.appservice.to_owned()), ("method", method.to_string()), ("endpoint", endpoint(url))];
        metrics::counter!("mxgate_homeserver_requests_total", &labels).increment(1);
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// One request; `acting` masquerades as a user of the appservice's namespaces.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        acting: Option<&UserId>,
        body: Option<Value>,
    ) -> Result<Value, MatrixError> {
        let mut url = self.base.join(path).map_err(|e| MatrixError::Malformed(e.to_string()))?;
        if let Some(user) = acting {
            url.query_pairs_mut().append_pair("user_id", user.as_str());
        }
        self.count(&method, &url);
        let mut request = self.http.request(method, url);
        request = match auth {
            Auth::Appservice => request.bearer_auth(self.as_token.expose()),
            Auth::Token(token) => request.bearer_auth(token),
            Auth::Anonymous => request,
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| MatrixError::Unreachable(e.without_url().to_string()))?;
        read(response).await
    }

    pub async fn ping(&self) -> Result<(), MatrixError> {
        self.call(Method::GET, "/_matrix/client/versions", Auth::Anonymous, None, None).await.map(drop)
    }

    /// Has the homeserver ping this appservice (`POST /_matrix/client/v1/appservice/{id}/ping`).
    /// Synapse then sends at once the transactions it held back while the appservice was
    /// unreachable, instead of at the end of its back-off (up to 8.5 minutes).
    pub async fn ping_appservice(&self, appservice_id: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v1/appservice/{}/ping", segment(appservice_id));
        self.call(Method::POST, &path, Auth::Appservice, None, Some(json!({}))).await.map(drop)
    }

    /// [`Self::ping_appservice`] in the background once the appservice listens, tried again
    /// with backoff while the homeserver cannot reach it; a refusal (a wrong appservice id)
    /// is logged and not retried, since it cannot get better by itself. It also pings a few
    /// more times in the first minute: a ping that lands while
    /// Synapse is in the middle of a retry (to the process that stopped) does not cut that
    /// retry's back-off, and the next one would wait for twice as long.
    pub fn announce_appservice(&self, appservice_id: String) {
        let client = self.clone();
        let again = self.clone();
        let id = appservice_id.clone();
        tokio::spawn(async move {
            for seconds in [2, 4, 8, 16, 32] {
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
                if let Err(error) = again.ping_appservice(&id).await {
                    tracing::debug!(appservice = %id, error = %error, "a follow-up ping failed");
                }
            }
        });
        crate::queue::keep_trying(move || {
            let (client, id) = (client.clone(), appservice_id.clone());
            async move {
                match client.ping_appservice(&id).await {
                    Ok(()) => {
                        tracing::info!(appservice = %id, "the homeserver reaches the appservice");
                        true
                    }
                    Err(error @ MatrixError::Refused { status: 403, .. }) => {
                        tracing::error!(appservice = %id, error = %error, "the homeserver refuses the ping: is the appservice id the registration's?");
                        true
                    }
                    Err(error) => {
                        tracing::warn!(appservice = %id, error = %error, "the homeserver does not reach the appservice yet");
                        false
                    }
                }
            }
        });
    }

    /// Registers `localpart` in the appservice's namespace; an existing user is fine.
    pub async fn ensure_registered(&self, localpart: &str) -> Result<(), MatrixError> {
        let body = json!({ "type": "m.login.application_service", "username": localpart, "inhibit_login": true });
        match self.call(Method::POST, "/_matrix/client/v3/register", Auth::Appservice, None, Some(body)).await {
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn set_displayname(&self, user: &UserId, name: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/profile/{}/displayname", segment(user.as_str()));
        self.call(Method::PUT, &path, Auth::Appservice, Some(user), Some(json!({ "displayname": name })))
            .await
            .map(drop)
    }

    pub async fn set_avatar(&self, user: &UserId, url: &OwnedMxcUri) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/profile/{}/avatar_url", segment(user.as_str()));
        self.call(Method::PUT, &path, Auth::Appservice, Some(user), Some(json!({ "avatar_url": url }))).await.map(drop)
    }

    pub async fn create_room(&self, creator: &UserId, body: Value) -> Result<OwnedRoomId, MatrixError> {
        let answer = self
            .call(Method::POST, "/_matrix/client/v3/createRoom", Auth::Appservice, Some(creator), Some(body))
            .await?;
        parse_field(&answer, "room_id", |s| RoomId::parse(s).ok())
    }

    pub async fn send_state(
        &self,
        sender: &UserId,
        room: &RoomId,
        event_type: &str,
        content: &Value,
    ) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/state/{}/", segment(room.as_str()), segment(event_type));
        self.call(Method::PUT, &path, Auth::Appservice, Some(sender), Some(content.clone())).await.map(drop)
    }

    pub async fn invite(&self, inviter: &UserId, room: &RoomId, user: &UserId) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", segment(room.as_str()));
        match self.call(Method::POST, &path, Auth::Appservice, Some(inviter), Some(json!({ "user_id": user }))).await {
            // Already in the room (or already invited): nothing to do.
            Err(MatrixError::Refused { status: 403, message, .. }) if message.contains("already") => Ok(()),
            other => other.map(drop),
        }
    }

    pub async fn join(&self, user: &UserId, room: &RoomId) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/join", segment(room.as_str()));
        self.call(Method::POST, &path, Auth::Appservice, Some(user), Some(json!({}))).await.map(drop)
    }

    /// `user` leaves `room`; one that is not in it has nothing to leave.
    pub async fn leave(&self, user: &UserId, room: &RoomId) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/leave", segment(room.as_str()));
        match self.call(Method::POST, &path, Auth::Appservice, Some(user), Some(json!({}))).await {
            Err(MatrixError::Refused { status: 403 | 404, .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// `by` removes `user` from `room`; one already gone has nothing to lose.
    pub async fn kick(&self, by: &UserId, room: &RoomId, user: &UserId, reason: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/kick", segment(room.as_str()));
        let body = json!({ "user_id": user, "reason": reason });
        match self.call(Method::POST, &path, Auth::Appservice, Some(by), Some(body)).await {
            Err(MatrixError::Refused { status: 403, message, .. }) if message.contains("not in the room") => Ok(()),
            other => other.map(drop),
        }
    }

    /// One event of `room`, as `user` (a member) sees it.
    pub async fn event(&self, user: &UserId, room: &RoomId, event_id: &str) -> Result<Value, MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/event/{}", segment(room.as_str()), segment(event_id));
        self.call(Method::GET, &path, Auth::Appservice, Some(user), None).await
    }

    /// The content of `room`'s state event `event_type`/`state_key`, as `user` sees it.
    pub async fn state_event(
        &self,
        user: &UserId,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> Result<Value, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/state/{}/{}",
            segment(room.as_str()),
            segment(event_type),
            segment(state_key)
        );
        self.call(Method::GET, &path, Auth::Appservice, Some(user), None).await
    }

    /// Sends a room event; `txn_id` makes a retried send a no-op on the homeserver.
    pub async fn send_event(
        &self,
        sender: &UserId,
        room: &RoomId,
        event_type: &str,
        txn_id: &str,
        content: &Value,
    ) -> Result<OwnedEventId, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{}/{}",
            segment(room.as_str()),
            segment(event_type),
            segment(txn_id)
        );
        let answer = self.call(Method::PUT, &path, Auth::Appservice, Some(sender), Some(content.clone())).await?;
        parse_field(&answer, "event_id", |s| s.parse().ok())
    }

    /// Redacts `event`; `txn_id` makes a retried redaction a no-op on the homeserver.
    pub async fn redact(
        &self,
        sender: &UserId,
        room: &RoomId,
        event: &str,
        txn_id: &str,
    ) -> Result<OwnedEventId, MatrixError> {
        self.redact_with(sender, room, event, txn_id, json!({})).await
    }

    /// [`MatrixClient::redact`] with `content` (a `reason`, or mxgate's own fields) in
    /// the redaction event.
    pub async fn redact_with(
        &self,
        sender: &UserId,
        room: &RoomId,
        event: &str,
        txn_id: &str,
        content: Value,
    ) -> Result<OwnedEventId, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/{}",
            segment(room.as_str()),
            segment(event),
            segment(txn_id)
        );
        let answer = self.call(Method::PUT, &path, Auth::Appservice, Some(sender), Some(content)).await?;
        parse_field(&answer, "event_id", |s| s.parse().ok())
    }

    /// `reader`'s public read receipt: it has read `event` and everything before it.
    pub async fn mark_read(&self, reader: &UserId, room: &RoomId, event: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", segment(room.as_str()), segment(event));
        self.call(Method::POST, &path, Auth::Appservice, Some(reader), Some(json!({}))).await.map(drop)
    }

    pub async fn upload(
        &self,
        uploader: &UserId,
        data: Vec<u8>,
        mime_type: &str,
        file_name: &str,
    ) -> Result<OwnedMxcUri, MatrixError> {
        let mut url = self.base.join("/_matrix/media/v3/upload").map_err(|e| MatrixError::Malformed(e.to_string()))?;
        url.query_pairs_mut().append_pair("filename", file_name).append_pair("user_id", uploader.as_str());
        self.count(&Method::POST, &url);
        let response = self
            .http
            .post(url)
            .bearer_auth(self.as_token.expose())
            .header(reqwest::header::CONTENT_TYPE, mime_type)
            .body(data)
            .send()
            .await
            .map_err(|e| MatrixError::Unreachable(e.without_url().to_string()))?;
        let answer = read(response).await?;
        parse_field(&answer, "content_uri", |s| Some(OwnedMxcUri::from(s)))
    }

    /// Downloads a file from the media repository (authenticated media).
    pub async fn download(&self, acting: &UserId, uri: &str) -> Result<Vec<u8>, MatrixError> {
        let response = self.media(acting, uri, None).await?;
        Ok(response.bytes().await.map_err(|e| MatrixError::Unreachable(e.to_string()))?.to_vec())
    }

    /// A page of `room`'s timeline as `user` sees it (the client API's `/messages`):
    /// from the pagination token `from` (the newest end when `None`), backwards or
    /// forwards, holding at most `limit` events that pass `filter` (a `RoomEventFilter`).
    pub async fn messages(
        &self,
        user: &UserId,
        room: &RoomId,
        from: Option<&str>,
        backwards: bool,
        limit: u32,
        filter: &Value,
    ) -> Result<Value, MatrixError> {
        let mut path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir={}",
            segment(room.as_str()),
            if backwards { "b" } else { "f" }
        );
        path.push_str(&format!("&limit={limit}&filter={}", segment(&filter.to_string())));
        if let Some(from) = from {
            path.push_str(&format!("&from={}", segment(from)));
        }
        self.call(Method::GET, &path, Auth::Appservice, Some(user), None).await
    }

    /// The homeserver's server-side search as `user` (`criteria` is the body of
    /// `/search`), from `next_batch` when paging on.
    pub async fn search(&self, user: &UserId, criteria: Value, next_batch: Option<&str>) -> Result<Value, MatrixError> {
        let mut path = "/_matrix/client/v3/search".to_owned();
        if let Some(batch) = next_batch {
            path.push_str(&format!("?next_batch={}", segment(batch)));
        }
        self.call(Method::POST, &path, Auth::Appservice, Some(user), Some(criteria)).await
    }

    /// The homeserver's answer for the file `uri` (or its thumbnail of `width`×`height`),
    /// as `acting`, for the caller to stream: its status is 200.
    pub async fn media(
        &self,
        acting: &UserId,
        uri: &str,
        thumbnail: Option<(u32, u32)>,
    ) -> Result<reqwest::Response, MatrixError> {
        let (server, media) = uri
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| MatrixError::Malformed(format!("not an mxc URI: {uri}")))?;
        let kind = if thumbnail.is_some() { "thumbnail" } else { "download" };
        let path = format!("/_matrix/client/v1/media/{kind}/{}/{}", segment(server), segment(media));
        let mut url = self.base.join(&path).map_err(|e| MatrixError::Malformed(e.to_string()))?;
        url.query_pairs_mut().append_pair("user_id", acting.as_str());
        if let Some((width, height)) = thumbnail {
            url.query_pairs_mut()
                .append_pair("width", &width.to_string())
                .append_pair("height", &height.to_string())
                .append_pair("method", "scale");
        }
        self.count(&Method::GET, &url);
        let response = self
            .http
            .get(url)
            .bearer_auth(self.as_token.expose())
            .send()
            .await
            .map_err(|e| MatrixError::Unreachable(e.without_url().to_string()))?;
        match response.status() {
            StatusCode::OK => Ok(response),
            _ => Err(read(response).await.err().unwrap_or(MatrixError::Malformed("download failed".into()))),
        }
    }

    /// Marks `room` as `user`'s direct chat with `other` in `m.direct`, as clients do on accepting a DM.
    pub async fn add_direct_chat(&self, user: &UserId, other: &UserId, room: &RoomId) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/user/{}/account_data/m.direct", segment(user.as_str()));
        let mut direct = match self.call(Method::GET, &path, Auth::Appservice, Some(user), None).await {
            Ok(direct) => direct,
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => json!({}),
            Err(e) => return Err(e),
        };
        let rooms = direct[other.as_str()].as_array().cloned().unwrap_or_default();
        if rooms.iter().any(|r| r == room.as_str()) {
            return Ok(());
        }
        let mut rooms = rooms;
        rooms.push(json!(room));
        direct[other.as_str()] = json!(rooms);
        self.call(Method::PUT, &path, Auth::Appservice, Some(user), Some(direct)).await.map(drop)
    }
}

/// The path segments of the client-server API this client calls; any other segment is an
/// id, a transaction or an event type, written `{}` so the metric's labels stay few.
const LITERAL_SEGMENTS: &[&str] = &[
    "_matrix",
    "client",
    "media",
    "v1",
    "v3",
    "versions",
    "register",
    "createRoom",
    "rooms",
    "send",
    "state",
    "invite",
    "join",
    "leave",
    "kick",
    "event",
    "redact",
    "receipt",
    "messages",
    "search",
    "upload",
    "download",
    "thumbnail",
    "profile",
    "displayname",
    "avatar_url",
    "user",
    "account_data",
    "appservice",
    "ping",
];

/// `url`'s path with ids as `{}`: `/_matrix/client/v3/rooms/{}/send/{}/{}`.
fn endpoint(url: &Url) -> String {
    url.path_segments()
        .into_iter()
        .flatten()
        .map(|segment| if LITERAL_SEGMENTS.contains(&segment) { segment } else { "{}" })
        .fold(String::new(), |path, segment| path + "/" + segment)
}

async fn read(response: reqwest::Response) -> Result<Value, MatrixError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| MatrixError::Unreachable(e.to_string()))?;
    if status == StatusCode::OK {
        return serde_json::from_slice(&bytes).map_err(|e| MatrixError::Malformed(e.to_string()));
    }
    let error = ErrorBody::parse(&bytes);
    Err(MatrixError::Refused { status: status.as_u16(), errcode: error.errcode, message: error.error })
}

fn parse_field<T>(answer: &Value, field: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, MatrixError> {
    answer[field]
        .as_str()
        .and_then(parse)
        .ok_or_else(|| MatrixError::Malformed(format!("answer without a valid {field}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_names_no_id() {
        let base = Url::parse("http://127.0.0.1:8008").unwrap();
        let send =
            base.join("/_matrix/client/v3/rooms/%21abc%3Ax/send/m.room.message/3EB0AA?user_id=%40a%3Ax").unwrap();
        assert_eq!(endpoint(&send), "/_matrix/client/v3/rooms/{}/send/{}/{}");
        let profile = base.join("/_matrix/client/v3/profile/%40p%3Ax/displayname").unwrap();
        assert_eq!(endpoint(&profile), "/_matrix/client/v3/profile/{}/displayname");
        assert_eq!(endpoint(&base.join("/_matrix/client/versions").unwrap()), "/_matrix/client/versions");
    }
}
