//! Limits on what one token (or credential) can make mxgate do to others: device links,
//! new homeserver users, sends, logins in progress; each answered 429 with `Retry-After`,
//! and a refused request changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Options, TestApp, expect};

const DEVICE: &str = "237600000070";

/// Sends `request` and checks it is limited: 429, `rate_limited`, a `Retry-After` in seconds.
async fn limited(request: reqwest::RequestBuilder, says: &str) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    body
}

#[tokio::test]
async fn a_token_starts_only_so_many_device_links_an_hour() {
    let app = TestApp::with(Options { limits: (3, 100_000, 100_000), ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let link = |body: Value| app.bearer(Method::POST, "/api/v1/devices", &token).json(&body);
    expect(link(json!({ "platform": "wa" })), StatusCode::OK).await;
    expect(link(json!({ "platform": "wa", "phone": "237222222270" })), StatusCode::OK).await;
    // A WebSocket opened with the token itself starts a link too.
    let mut ws = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.url("/api/v1/devices/qr-code").replace("http", "ws"),
    )
    .unwrap();
    ws.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    drop(socket);
    let refused = limited(link(json!({ "platform": "wa", "phone": "237222222271" })), "device links").await;
    assert!(refused.get("pair_code").is_none() && refused.get("qr_code_url").is_none());
    limited(link(json!({ "platform": "wa" })), "device links").await;
    // Another token has its own allowance.
    let other = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    expect(app.bearer(Method::POST, "/api/v1/devices", &other).json(&json!({ "platform": "wa" })), StatusCode::OK)
        .await;
}

#[tokio::test]
async fn a_credential_creates_only_so_many_identities_an_hour() {
    let app = TestApp::with(Options { limits: (100_000, 2, 100_000), ..Options::default() }).await;
    app.admin_token(false).await;
    let client = app.credential("limited-app", None).await;
    let issue = || app.basic(Method::POST, "/api/v1/tokens", &client).json(&json!({ "use_host": false }));
    for _ in 0..2 {
        expect(issue(), StatusCode::CREATED).await;
    }
    limited(issue(), "Matrix identities").await;
    let listed = expect(app.basic(Method::GET, "/api/v1/tokens", &client), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "the refused request made no token: {listed}");
}

#[tokio::test]
async fn a_token_sends_only_so_many_messages_a_minute_counted_per_recipient() {
    // Two a minute: one more every 30 s, far longer than a send takes.
    let app = TestApp::with(Options { limits: (100_000, 100_000, 2), ..Options::default() }).await;
    let token = app.token_with_device(DEVICE).await;
    let path = format!("/api/v1/devices/{DEVICE}/message");
    let send =
        |contact: &str| app.bearer(Method::POST, &path, &token).json(&json!({ "contact": contact, "text": "hi" }));
    // More recipients than the whole allowance can never go: 422, and nothing is taken.
    let refused = expect(send("237698000071,237698000072,237698000073"), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(refused["message"].as_str().unwrap().contains("needs 3"), "{refused}");
    let sent = expect(send("237698000071,237698000072"), StatusCode::OK).await;
    assert!(sent["results"].as_array().unwrap().iter().all(|r| r["status"] == "sent"), "{sent}");
    limited(send("237698000074"), "messages").await;
}

#[tokio::test]
async fn an_identity_has_only_so_many_logins_in_progress() {
    let app = TestApp::with(Options { max_logins_per_identity: 1, ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let link = |phone: &str| {
        app.bearer(Method::POST, "/api/v1/devices", &token).json(&json!({ "platform": "wa", "phone": phone }))
    };
    // A pairing-code login waits for the phone for minutes: it is in progress meanwhile.
    expect(link("237222222280"), StatusCode::OK).await;
    limited(link("237222222281"), "logins are in progress").await;
}
