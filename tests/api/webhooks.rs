use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Options, TestApp, expect, expect_error};

#[tokio::test]
async fn a_token_manages_its_webhooks_and_sees_the_secret_once() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let created = expect(
        app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": "http://127.0.0.1:9/hook" })),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["message"], "Webhook created");
    assert_eq!(created["active"], true);
    assert!(created["secret"].as_str().unwrap().len() >= 43);
    let id = created["id"].as_str().unwrap();

    let listed = expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none());

    let path = format!("/api/v1/webhooks/{id}");
    let paused = expect(app.bearer(Method::PUT, &path, &token).json(&json!({ "active": false })), StatusCode::OK).await;
    assert_eq!((paused["active"].clone(), paused["url"].clone()), (json!(false), json!("http://127.0.0.1:9/hook")));
    let moved = expect(
        app.bearer(Method::PUT, &path, &token).json(&json!({ "url": "http://localhost:10/new" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!((moved["active"].clone(), moved["url"].clone()), (json!(false), json!("http://localhost:10/new")));

    expect(app.bearer(Method::DELETE, &path, &token), StatusCode::OK).await;
    expect_error(app.bearer(Method::DELETE, &path, &token), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await, json!([]));
}

#[tokio::test]
async fn another_tokens_webhook_is_not_found() {
    let app = TestApp::start().await;
    let owner = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let other = app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    let created = expect(
        app.bearer(Method::POST, "/api/v1/webhooks", &owner).json(&json!({ "url": "http://127.0.0.1:9/a" })),
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    expect_error(
        app.bearer(Method::PUT, &path, &other).json(&json!({ "active": false })),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(app.bearer(Method::DELETE, &path, &other), StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/webhooks", &other), StatusCode::OK).await, json!([]));
    let still = expect(app.bearer(Method::GET, "/api/v1/webhooks", &owner), StatusCode::OK).await;
    assert_eq!(still[0]["active"], true);
}

#[tokio::test]
async fn forbidden_and_malformed_webhook_urls_are_refused() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let post = |url: &str| app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": url }));
    for url in ["http://10.0.0.7/hook", "http://169.254.169.254/", "http://[fd00::1]/", "http://192.168.1.1/"] {
        let refused = expect_error(post(url), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(refused["message"].as_str().unwrap().contains("does not allow"), "{refused}");
    }
    for url in ["ftp://127.0.0.1/", "not a url", "http://user:pw@127.0.0.1/", "http://no-such-host.invalid/"] {
        expect_error(post(url), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    expect_error(
        app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({})),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect(post("http://127.0.0.1:9/ok"), StatusCode::CREATED).await;
    expect_error(post("http://127.0.0.1:9/ok"), StatusCode::CONFLICT, "conflict").await;
    let listed = expect(app.bearer(Method::GET, "/api/v1/webhooks", &token), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "only the valid webhook exists");
}

#[tokio::test]
async fn loopback_webhooks_need_the_configuration_to_allow_them() {
    let app = TestApp::with(Options { allow_loopback_webhooks: false, ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    for url in ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/"] {
        let request = app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&json!({ "url": url }));
        expect_error(request, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}
