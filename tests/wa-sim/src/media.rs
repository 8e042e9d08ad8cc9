//! The media endpoint: clients upload encrypted blobs with `POST
//! /mms/<type>/<token>` and download them again by their direct path. The
//! blobs stay as the client encrypted them.
//!
//! whatsapp-rust builds media URLs as `https://<host from media_conn>…`, so a
//! client reaches this plain-HTTP endpoint through [`MediaHttpClient`], which
//! rewrites `https://<media host>` to `http://<media host>`. It also serves
//! `/sw.js`, where a client without a configured version looks its version up
//! (`https://web.whatsapp.com/sw.js`, which the wrapper points here too).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use wacore::net::{HttpClient, HttpRequest, HttpResponse, StreamingHttpResponse, UploadBody};

use crate::sim::Sim;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new().fallback(serve).with_state(sim)
}

async fn serve(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if method == Method::POST && path.starts_with("/mms/") {
        if query.contains_key("resume") {
            // Nothing is ever partially uploaded here.
            return StatusCode::NOT_FOUND.into_response();
        }
        let token = path.rsplit('/').next().unwrap_or_default().to_string();
        let direct_path = format!("/v/t62.7118-24/{}", crate::stanza::random_id());
        let host = sim.media_host.get().cloned().unwrap_or_default();
        sim.state().media.insert(direct_path.clone(), body.to_vec());
        log::debug!("wa-sim: stored {} media bytes (token {token}) at {direct_path}", body.len());
        let json = serde_json::json!({
            "url": format!("https://{host}{direct_path}"),
            "direct_path": direct_path,
        });
        return axum::Json(json).into_response();
    }
    if method == Method::GET && path == "/sw.js" {
        // What whatsapp-rust reads its app version from when none is configured.
        return (StatusCode::OK, "self.__swData={\"client_revision\":1000000000};").into_response();
    }
    if method == Method::GET {
        if let Some(blob) = sim.state().media.get(&path) {
            return (StatusCode::OK, blob.clone()).into_response();
        }
        return StatusCode::NOT_FOUND.into_response();
    }
    StatusCode::METHOD_NOT_ALLOWED.into_response()
}

/// Wraps an application's [`HttpClient`] so media requests for the simulator's
/// host go over plain HTTP, and the version lookup at
/// `https://web.whatsapp.com/sw.js` goes to the simulator. Everything else
/// passes through unchanged.
pub struct MediaHttpClient<C> {
    inner: C,
    https_prefix: String,
    http_prefix: String,
}

const WEB_SW_JS: &str = "https://web.whatsapp.com/sw.js";

impl<C> MediaHttpClient<C> {
    /// `media_host` is `127.0.0.1:<port>`, as [`crate::WaSim::media_host`] gives it.
    pub fn new(inner: C, media_host: &str) -> Self {
        Self { inner, https_prefix: format!("https://{media_host}/"), http_prefix: format!("http://{media_host}/") }
    }

    fn rewrite(&self, mut request: HttpRequest) -> HttpRequest {
        if request.url == WEB_SW_JS {
            request.url = format!("{}sw.js", self.http_prefix);
        } else if let Some(rest) = request.url.strip_prefix(&self.https_prefix) {
            request.url = format!("{}{rest}", self.http_prefix);
        }
        request
    }
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for MediaHttpClient<C> {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.inner.execute(self.rewrite(request)).await
    }

    fn supports_streaming(&self) -> bool {
        self.inner.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.inner.execute_streaming(self.rewrite(request))
    }

    fn supports_upload_streaming(&self) -> bool {
        self.inner.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> anyhow::Result<HttpResponse> {
        self.inner.execute_upload(self.rewrite(request), body, content_length)
    }

    fn resource_report(&self) -> Option<wacore::stats::HttpResourceReport> {
        self.inner.resource_report()
    }
}
