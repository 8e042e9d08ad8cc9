//! A real headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `make test` installs when missing): its own chromedriver on
//! a free port, stopped with the browser.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

pub struct Browser {
    pub client: Client,
    driver: Child,
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

impl Browser {
    pub async fn start() -> Self {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(std::path::Path::new(program).exists(), "{program} is missing: run `make test`, which installs it");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        super::patiently("chromedriver", Duration::from_secs(30), || async {
            let status: serde_json::Value = http.get(format!("{url}/status")).send().await.ok()?.json().await.ok()?;
            (status["value"]["ready"] == true).then_some(())
        })
        .await;
        let mut capabilities = serde_json::Map::new();
        let args =
            ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500"];
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": CHROMIUM, "args": args }));
        // The DevTools network events, for [`Browser::requested_urls`].
        capabilities.insert("goog:loggingPrefs".into(), json!({ "performance": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client =
            ClientBuilder::new(connector).capabilities(capabilities).connect(&url).await.expect("a Chromium session");
        Self { client, driver }
    }

    /// Every URL the page has requested since the last call (HTTP requests, WebSocket
    /// connections, navigations), from Chromium's own network log.
    pub async fn requested_urls(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(PerformanceLog).await.expect("chromedriver's performance log");
        let mut urls = Vec::new();
        for entry in entries.as_array().into_iter().flatten() {
            let Some(message) = entry["message"].as_str() else { continue };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(message) else { continue };
            let params = &event["message"]["params"];
            match event["message"]["method"].as_str() {
                Some("Network.requestWillBeSent") => urls.extend(params["request"]["url"].as_str().map(str::to_owned)),
                Some("Network.webSocketCreated") => urls.extend(params["url"].as_str().map(str::to_owned)),
                _ => {}
            }
        }
        urls
    }

    /// Ends the session and the driver.
    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's log endpoint (not in the W3C protocol, so not among fantoccini's commands).
#[derive(Debug)]
struct PerformanceLog;

impl fantoccini::wd::WebDriverCompatibleCommand for PerformanceLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({ "type": "performance" }).to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
