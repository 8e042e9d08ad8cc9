use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Client, Options, TestApp, expect, expect_error};

#[tokio::test]
async fn the_super_admin_issues_a_credential_that_then_works_on_its_own() {
    let app = TestApp::start().await;
    let body = json!({ "client_id": "billing-app", "description": "Billing" });
    let created = expect(app.admin(Method::POST, "/api/v1/credentials").json(&body), StatusCode::CREATED).await;
    assert_eq!(created["client_id"], "billing-app");
    assert_eq!(created["active"], true);
    assert_eq!(created["scopes"], json!(["tokens:read:*", "tokens:write:create", "tokens:write:delete"]));
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43);

    let listed = expect(app.admin(Method::GET, "/api/v1/credentials"), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("client_secret").is_none() && listed[0].get("secret_hash").is_none());

    let billing = Client { id: "billing-app".into(), secret: secret.into() };
    expect(app.basic(Method::GET, "/api/v1/tokens", &billing), StatusCode::OK).await;
}

#[tokio::test]
async fn only_the_super_admin_manages_credentials() {
    let app = TestApp::start().await;
    let app_client = app.credential("app-one", None).await;
    let body = json!({ "client_id": "app-two" });
    expect_error(
        app.basic(Method::POST, "/api/v1/credentials", &app_client).json(&body),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(app.basic(Method::GET, "/api/v1/credentials", &app_client), StatusCode::FORBIDDEN, "forbidden").await;
    let change = json!({ "active": false });
    expect_error(
        app.basic(Method::PUT, "/api/v1/credentials/app-one", &app_client).json(&change),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn the_super_admin_can_be_neither_deactivated_nor_deleted() {
    let app = TestApp::start().await;
    let path = format!("/api/v1/credentials/{}", app.client_id);
    expect_error(app.admin(Method::PUT, &path).json(&json!({ "active": false })), StatusCode::FORBIDDEN, "forbidden")
        .await;
    expect_error(app.admin(Method::DELETE, &path), StatusCode::FORBIDDEN, "forbidden").await;
    let taken = json!({ "client_id": app.client_id });
    expect_error(app.admin(Method::POST, "/api/v1/credentials").json(&taken), StatusCode::CONFLICT, "conflict").await;
    expect(app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
}

#[tokio::test]
async fn a_deactivated_or_deleted_credential_is_refused_at_once() {
    let app = TestApp::start().await;
    let client = app.credential("short-lived", None).await;
    let token = expect(
        app.basic(Method::POST, "/api/v1/tokens", &client).json(&json!({ "use_host": false })),
        StatusCode::CREATED,
    )
    .await;

    let bearer = token["token"].as_str().unwrap();
    expect(app.bearer(Method::GET, "/api/v1/webhooks", bearer), StatusCode::OK).await;
    expect(app.admin(Method::PUT, "/api/v1/credentials/short-lived").json(&json!({ "active": false })), StatusCode::OK)
        .await;
    let refused =
        expect_error(app.basic(Method::GET, "/api/v1/tokens", &client), StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(refused["message"].as_str().unwrap().contains("inactive"));
    // Its tokens stop with it, and start again when it is reactivated.
    let refused =
        expect_error(app.bearer(Method::GET, "/api/v1/webhooks", bearer), StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
    assert!(refused["message"].as_str().unwrap().contains("inactive"), "{refused}");

    expect(app.admin(Method::PUT, "/api/v1/credentials/short-lived").json(&json!({ "active": true })), StatusCode::OK)
        .await;
    expect(app.basic(Method::GET, "/api/v1/tokens", &client), StatusCode::OK).await;
    expect(app.bearer(Method::GET, "/api/v1/webhooks", bearer), StatusCode::OK).await;

    expect(app.admin(Method::DELETE, "/api/v1/credentials/short-lived"), StatusCode::OK).await;
    expect_error(app.basic(Method::GET, "/api/v1/tokens", &client), StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Its tokens went with it.
    let token = token["token"].as_str().unwrap();
    expect_error(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::UNAUTHORIZED, "unauthorized").await;
    expect_error(app.admin(Method::DELETE, "/api/v1/credentials/short-lived"), StatusCode::NOT_FOUND, "not_found")
        .await;
}

#[tokio::test]
async fn wrong_secrets_get_401_with_a_challenge_and_repeated_failures_get_429() {
    let app = TestApp::with(Options { auth_failures_per_minute: 3, ..Options::default() }).await;
    let client = app.credential("guarded", None).await;
    let wrong = Client { id: client.id.clone(), secret: "not-the-secret".into() };
    for _ in 0..3 {
        let response = app.basic(Method::GET, "/api/v1/tokens", &wrong).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
    }
    let unknown = Client { id: "nobody".into(), secret: "x".into() };
    let response = app.basic(Method::GET, "/api/v1/tokens", &unknown).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // Even the right secret waits: the throttle is consulted before any secret is checked.
    expect_error(app.basic(Method::GET, "/api/v1/tokens", &client), StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
        .await;
}

#[tokio::test]
async fn scopes_are_validated_and_enforced() {
    let app = TestApp::start().await;
    let bad = json!({ "client_id": "odd", "scopes": ["tokens:admin"] });
    expect_error(
        app.admin(Method::POST, "/api/v1/credentials").json(&bad),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let reader = app.credential("reader", Some(&["tokens:read:*"])).await;
    expect(app.basic(Method::GET, "/api/v1/tokens", &reader), StatusCode::OK).await;
    let issue = app.basic(Method::POST, "/api/v1/tokens", &reader).json(&json!({ "use_host": false }));
    expect_error(issue, StatusCode::FORBIDDEN, "forbidden").await;

    let change = json!({ "scopes": ["tokens:write:*"], "description": "now a writer" });
    let changed = expect(app.admin(Method::PUT, "/api/v1/credentials/reader").json(&change), StatusCode::OK).await;
    assert_eq!(changed["scopes"], json!(["tokens:write:*"]));
    assert_eq!(changed["description"], "now a writer");
    expect_error(app.basic(Method::GET, "/api/v1/tokens", &reader), StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn malformed_credential_requests_change_nothing() {
    let app = TestApp::start().await;
    let post = |body: serde_json::Value| app.admin(Method::POST, "/api/v1/credentials").json(&body);
    expect_error(post(json!({ "client_id": "a" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(post(json!({ "client_id": "has space" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        .await;
    expect_error(
        post(json!({ "client_id": "ok-id", "extra": 1 })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(post(json!({ "client_id": 42 })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // PostgreSQL's text cannot hold NUL: a clear 422 on either database, not a 500 on one.
    let nul = json!({ "client_id": "nul-app", "description": "a\u{0}b" });
    expect_error(post(nul), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let broken = app
        .admin(Method::POST, "/api/v1/credentials")
        .header("content-type", "application/json")
        .body("{\"client_id\":");
    expect_error(broken, StatusCode::BAD_REQUEST, "bad_request").await;
    let empty_change = app.admin(Method::PUT, "/api/v1/credentials/nobody").json(&json!({}));
    expect_error(empty_change, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let missing = app.admin(Method::PUT, "/api/v1/credentials/nobody").json(&json!({ "active": true }));
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;

    app.credential("dupe", None).await;
    expect_error(post(json!({ "client_id": "dupe" })), StatusCode::CONFLICT, "conflict").await;
    let listed = expect(app.admin(Method::GET, "/api/v1/credentials"), StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}
