//! An identity whose last token is gone keeps no way in: devices, Matrix sessions, password.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, WebhookReceiver, expect, link_device, patiently};

/// Devices connected on this mxgate, from `/health`'s detail.
async fn connected(app: &TestApp) -> u64 {
    expect(app.health(), StatusCode::OK).await["devices"]["connected"].as_u64().unwrap()
}

async fn matrix_login(app: &TestApp, login: &Value) -> matrix_sdk::Result<matrix_sdk::Client> {
    let client = matrix_sdk::Client::builder().homeserver_url(app.synapse.url.as_str()).build().await.unwrap();
    client
        .matrix_auth()
        .login_username(login["username"].as_str().unwrap(), login["password"].as_str().unwrap())
        .await?;
    Ok(client)
}

#[tokio::test]
async fn deleting_an_identitys_last_token_logs_out_its_devices_and_its_matrix_sessions() {
    const DEVICE: &str = "237600000090";
    let app = TestApp::start().await;
    app.admin_token(false).await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap();
    link_device(&app, token, DEVICE).await;
    let login = expect(app.bearer(Method::POST, "/api/v1/matrix/credentials", token), StatusCode::OK).await;
    let person = matrix_login(&app, &login).await.expect("the handed-out password works");
    person.whoami().await.expect("a live session");
    assert_eq!(connected(&app).await, 1);

    let path = format!("/api/v1/tokens/{}", issued["id"].as_str().unwrap());
    let deleted = expect(app.admin(Method::DELETE, &path), StatusCode::OK).await;
    assert_eq!(deleted["devices_unlinked"], json!([DEVICE]), "{deleted}");

    assert!(person.whoami().await.is_err(), "the Matrix session obtained with the token is logged out");
    assert!(matrix_login(&app, &login).await.is_err(), "the password no longer logs in");
    assert_eq!(connected(&app).await, 0, "the device is logged out of WhatsApp");
    // Deleting another token whose identity has more is not a retirement.
    let host = app.admin_token(true).await;
    let deleted =
        expect(app.admin(Method::DELETE, &format!("/api/v1/tokens/{}", host["id"].as_str().unwrap())), StatusCode::OK)
            .await;
    assert_eq!(deleted["devices_unlinked"], json!([]), "{deleted}");
}

#[tokio::test]
async fn an_identity_whose_last_token_expires_is_retired_and_its_webhook_told() {
    const DEVICE: &str = "237600000091";
    let app = TestApp::start().await;
    app.admin_token(false).await;
    // Long enough to link a device and add a webhook on a busy machine.
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(40)).to_rfc3339();
    let body = json!({ "use_host": false, "expires_at": expires_at });
    let issued = expect(app.admin(Method::POST, "/api/v1/tokens").json(&body), StatusCode::CREATED).await;
    let token = issued["token"].as_str().unwrap();
    link_device(&app, token, DEVICE).await;
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(token, &receiver.url).await;

    let told = || async {
        let received = receiver.received();
        received.iter().find(|r| r.json()["type"] == "device.logged_out").map(|r| r.json())
    };
    let event = patiently("device.logged_out after the token expired", Duration::from_secs(120), told).await;
    assert_eq!(event["device_id"], DEVICE, "{event}");
    assert_eq!(connected(&app).await, 0, "the device is logged out of WhatsApp");
}
