use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Options, TestApp, eventually, expect, expect_error, link_device};

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::start().await;
    let generated = app.request(Method::GET, "/health").send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let echoed = app.request(Method::GET, "/nowhere").header("x-request-id", "client-chosen-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "client-chosen-42");
    let failed = app.request(Method::GET, "/api/v1/tokens").send().await.unwrap();
    assert!(failed.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let app = TestApp::start().await;
    expect_error(app.request(Method::GET, "/api/v1/nothing-here"), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.request(Method::PATCH, "/api/v1/tokens"), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
        .await;
}

#[tokio::test]
async fn oversized_bodies_get_413_and_change_nothing() {
    let app = TestApp::with(Options { body_limit: 1024, ..Options::default() }).await;
    let description = "x".repeat(4096);
    let body = json!({ "client_id": "too-big", "description": description });
    expect_error(
        app.admin(Method::POST, "/api/v1/credentials").json(&body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    // Declared length over the limit, without a JSON content type: still 413 first.
    let raw = app.admin(Method::POST, "/api/v1/tokens").body(vec![b' '; 2048]);
    expect_error(raw, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(expect(app.admin(Method::GET, "/api/v1/credentials"), StatusCode::OK).await, json!([]));
}

#[tokio::test]
async fn health_tells_anyone_the_status_and_the_operator_the_detail() {
    let app = TestApp::start().await;
    // A linked device, so the detail has a phone number to keep from strangers.
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, "237600000301").await;
    let public = expect(app.request(Method::GET, "/health"), StatusCode::OK).await;
    assert_eq!(public, json!({ "status": "ok" }));

    let devices = json!({ "connected": 1, "connecting": 0, "error": 0, "failing": [] });
    let queues =
        json!({ "inbox": 0, "send_queue": 0, "webhook_deliveries": 0, "late_statuses": 0, "send_statuses": 0 });
    let detail = json!({ "status": "ok", "database": { "ok": true }, "homeserver": { "ok": true }, "devices": devices, "queues": queues });
    eventually("quiet queues", || async {
        let health = expect(app.health(), StatusCode::OK).await;
        (health["queues"] == detail["queues"]).then_some(())
    })
    .await;
    assert_eq!(expect(app.health(), StatusCode::OK).await, detail, "the scraper's token");
    assert_eq!(expect(app.admin(Method::GET, "/health"), StatusCode::OK).await, detail, "the super admin");

    // Neither a token nor a credential other than the super admin is the operator.
    for refused in [
        app.bearer(Method::GET, "/health", &token),
        app.request(Method::GET, "/health").basic_auth(&app.client_id, Some("not-the-secret")),
        app.request(Method::GET, "/health").bearer_auth("not-the-metrics-token"),
    ] {
        let body = expect_error(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert!(!body.to_string().contains("237600000301"), "{body}");
    }
}

#[tokio::test]
async fn metrics_are_for_the_operator_and_count_requests_by_route() {
    let app = TestApp::start().await;
    expect(app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
    expect_error(app.request(Method::GET, "/metrics"), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    expect_error(app.bearer(Method::GET, "/metrics", &token), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let scraped = app.admin(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let response = app.request(Method::GET, "/metrics").bearer_auth(&app.metrics_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(text.contains("mxgate_http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/api/v1/tokens""#), "{text}");
}
