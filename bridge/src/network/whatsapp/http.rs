//! whatsapp-rust's HTTP client, for its own requests and the connector's (profile and
//! group pictures), optionally rerouted: every HTTPS request keeps its path and goes to
//! one base URL instead. Rerouting is only for a protocol simulator, which serves media
//! and the version lookup on plain HTTP and cannot hold WhatsApp's certificates.

use whatsapp_rust::anyhow::Result;
use whatsapp_rust::async_trait;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};

#[derive(Clone)]
pub struct Rerouted {
    inner: UreqHttpClient,
    base: Option<String>,
}

impl Rerouted {
    /// Requests go where they name, or, with a `base`, there.
    pub fn new(base: Option<&str>) -> Self {
        Self { inner: UreqHttpClient::new(), base: base.map(|b| b.trim_end_matches('/').to_owned()) }
    }

    fn reroute(&self, mut request: HttpRequest) -> HttpRequest {
        if let (Some(base), Some(rest)) = (&self.base, request.url.strip_prefix("https://")) {
            let path = rest.find('/').map_or("/", |at| &rest[at..]);
            request.url = format!("{base}{path}");
        }
        request
    }
}

#[async_trait]
impl HttpClient for Rerouted {
    async fn execute(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.inner.execute(self.reroute(request)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_requests_keep_their_path_and_change_host() {
        let rerouted = Rerouted::new(Some("http://127.0.0.1:4000/"));
        let media = rerouted.reroute(HttpRequest::get("https://mmg.whatsapp.net/mms/image/abc?auth=x&token=y"));
        assert_eq!(media.url, "http://127.0.0.1:4000/mms/image/abc?auth=x&token=y");
        let version = rerouted.reroute(HttpRequest::get("https://web.whatsapp.com/sw.js"));
        assert_eq!(version.url, "http://127.0.0.1:4000/sw.js");
        let bare = rerouted.reroute(HttpRequest::get("https://example.org"));
        assert_eq!(bare.url, "http://127.0.0.1:4000/");
    }
}
