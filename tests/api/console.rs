//! The web console in a real headless Chromium, on the `sim` network: a person signs in
//! with a credential, makes a token and signs in with it, links a phone by the QR code the
//! page draws (read off the canvas and decoded, as a phone's camera would), sends a
//! message, and watches a webhook's delivery log. No credential or token is ever in a URL
//! the page requests.

use fantoccini::Locator;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::browser::Browser;
use crate::common::{Options, TestApp, WebhookReceiver, eventually, expect};

const DEVICE: &str = "237600000481";
const CONTACT: &str = "237698700481";

/// The QR code the page shows now, decoded from its canvas.
async fn code_on_the_page(browser: &Browser) -> Option<String> {
    let data_url =
        browser.client.execute("return document.getElementById('qr').toDataURL('image/png');", vec![]).await.ok()?;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD.decode(data_url.as_str()?.split_once(',')?.1).ok()?;
    let picture = image::load_from_memory(&png).ok()?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(picture);
    let grid = prepared.detect_grids().into_iter().next()?;
    grid.decode().ok().map(|(_, content)| content)
}

async fn text_of(browser: &Browser, css: &str) -> String {
    match browser.client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn fill(browser: &Browser, css: &str, value: &str) {
    let field = browser.client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(browser: &Browser, css: &str) {
    browser.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

/// Waits until the element `css` says something containing `wanted`.
async fn shows(browser: &Browser, css: &str, wanted: &str) -> String {
    eventually(&format!("{css} to show {wanted}"), || async {
        let text = text_of(browser, css).await;
        text.contains(wanted).then_some(text)
    })
    .await
}

#[tokio::test]
async fn a_person_links_a_phone_by_the_qr_code_on_the_page_sends_and_reads_the_delivery_log() {
    // WhatsApp's own pace: a code lives 20 s, long enough to be read off the screen.
    let app = TestApp::with(Options { sim_qr_interval_ms: 20_000, ..Options::default() }).await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/console")).await.unwrap();

    // Signed in with the credential, the person makes a token and signs in with it.
    fill(&browser, "#client-id", &app.client_id).await;
    fill(&browser, "#client-secret", &app.client_secret).await;
    click(&browser, "#credential-form button[type=submit]").await;
    shows(&browser, "#who", &app.client_id).await;
    click(&browser, "#new-token-form button[type=submit]").await;
    let token = shows(&browser, "#new-token-value", "mt_").await;
    click(&browser, "#use-token").await;
    shows(&browser, "#who", "token").await;

    // Linking: the page draws the code; the phone scans exactly what it shows.
    click(&browser, "#link-qr").await;
    let code = eventually("a QR code on the page", || code_on_the_page(&browser)).await;
    assert!(code.starts_with("2@"), "a WhatsApp link code: {code}");
    shows(&browser, "#qr-countdown", "replaced in about").await;
    let dir = std::env::var("MXGATE_SCREENSHOT_DIR")
        .unwrap_or_else(|_| format!("{}/target/screenshots", env!("CARGO_MANIFEST_DIR")));
    std::fs::create_dir_all(&dir).unwrap();
    let screenshot = browser.client.screenshot().await.unwrap();
    std::fs::write(format!("{dir}/console-link.png"), screenshot).unwrap();
    let scan = json!({ "phone": DEVICE, "code": code });
    expect(app.request(Method::POST, "/sim/qr/scan").json(&scan), StatusCode::OK).await;
    shows(&browser, "#link-result", &format!("Linked: +{DEVICE}")).await;
    shows(&browser, &format!("tr[data-device='{DEVICE}'] .status"), "connected").await;

    // A webhook, made on the page; a contact writes and its delivery shows in the log.
    let receiver = WebhookReceiver::start().await;
    fill(&browser, "#webhook-url", &receiver.url).await;
    click(&browser, "#webhook-form button[type=submit]").await;
    shows(&browser, "#webhook-secret", "whsec_").await;
    shows(&browser, "#webhook-rows", &receiver.url).await;

    // A test message from the page.
    fill(&browser, "#send-to", CONTACT).await;
    fill(&browser, "#send-text", "hello from the console").await;
    click(&browser, "#send-form button[type=submit]").await;
    shows(&browser, "#send-results li[data-status=sent]", &format!("{CONTACT}: sent")).await;
    let outbox = app.sim_outbox(DEVICE).await;
    assert_eq!(outbox[0]["text"], "hello from the console");

    app.inject(DEVICE, CONTACT, json!({ "text": "hello console" })).await;
    receiver.wait_for(1).await;
    app.quiet().await;
    click(&browser, "#webhook-rows button").await;
    shows(&browser, "#delivery-rows tr[data-status=delivered]", "delivered").await;
    let log = text_of(&browser, "#delivery-rows").await;
    assert!(log.contains("delivered"), "{log}");

    // What the page requested, from Chromium's network log: no secret in any URL.
    let urls = browser.requested_urls().await;
    assert!(urls.iter().any(|u| u.contains("/api/v1/devices")), "the log holds the API calls: {urls:?}");
    assert!(urls.iter().any(|u| u.starts_with("ws://")), "the log holds the QR socket: {urls:?}");
    for url in &urls {
        assert!(!url.contains(&token) && !url.contains("mt_"), "a token in {url}");
        assert!(!url.contains(&app.client_secret), "the credential's secret in {url}");
    }
    browser.stop().await;
    // The console's page itself holds nothing secret, and works without the network.
    let page = reqwest::get(app.url("/console")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("default-src 'self'"), "{policy}");
}
