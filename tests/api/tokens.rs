use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, expect, expect_error};

#[tokio::test]
async fn the_first_token_is_the_admin_token_and_creates_the_host_identity() {
    let app = TestApp::start().await;
    let first = app.admin_token(false).await;
    assert_eq!(first["message"], "Token created");
    let token = first["token"].as_str().unwrap();
    assert!(token.starts_with("mt_") && token.len() == 46, "{token}");
    assert_eq!(first["is_admin"], true);
    let host = first["matrix_user_id"].as_str().unwrap().to_owned();
    let prefix = format!("@{}", app.slot.pair.api.prefix);
    assert!(host.starts_with(&prefix) && host.ends_with(":mxgate.test"), "{host}");

    let shared = app.admin_token(true).await;
    assert_eq!(shared["is_admin"], false);
    assert_eq!(shared["use_host"], true);
    assert_eq!(shared["matrix_user_id"], host);

    let own = app.admin_token(false).await;
    assert_eq!(own["is_admin"], false);
    assert_eq!(own["use_host"], false);
    assert_ne!(own["matrix_user_id"], host);
    assert_ne!(own["matrix_user_id"], shared["matrix_user_id"]);

    let listed = expect(app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    for entry in listed {
        assert!(entry.get("token").is_none() && entry.get("token_hash").is_none(), "{entry}");
        for field in ["id", "created_at", "expires_at", "is_admin", "use_host", "matrix_user_id", "client_id"] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
    }
    assert_eq!(listed.iter().filter(|t| t["is_admin"] == true).count(), 1);
}

#[tokio::test]
async fn a_credential_sees_and_deletes_only_its_own_tokens_and_the_super_admin_any() {
    let app = TestApp::start().await;
    let admins = app.admin_token(false).await;
    let alice = app.credential("alice", None).await;
    let bob = app.credential("bob", None).await;
    let issue = |client| app.basic(Method::POST, "/api/v1/tokens", client).json(&json!({ "use_host": false }));
    let alices = expect(issue(&alice), StatusCode::CREATED).await;
    let second = expect(issue(&alice), StatusCode::CREATED).await;
    assert_eq!(alices["client_id"], "alice");

    let bobs_view = expect(app.basic(Method::GET, "/api/v1/tokens", &bob), StatusCode::OK).await;
    assert_eq!(bobs_view, json!([]));
    let alices_view = expect(app.basic(Method::GET, "/api/v1/tokens", &alice), StatusCode::OK).await;
    assert_eq!(alices_view.as_array().unwrap().len(), 2);
    let admin_view = expect(app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
    let mut ids: Vec<&Value> = admin_view.as_array().unwrap().iter().map(|t| &t["id"]).collect();
    ids.sort_by_key(|id| id.as_str());
    let mut expected = vec![&admins["id"], &alices["id"], &second["id"]];
    expected.sort_by_key(|id| id.as_str());
    assert_eq!(ids, expected, "the super admin sees every token, whoever issued it");

    let path = |token: &Value| format!("/api/v1/tokens/{}", token["id"].as_str().unwrap());
    expect_error(app.basic(Method::DELETE, &path(&alices), &bob), StatusCode::NOT_FOUND, "not_found").await;
    let token = alices["token"].as_str().unwrap();
    expect(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::OK).await;
    expect(app.basic(Method::DELETE, &path(&alices), &alice), StatusCode::OK).await;
    expect_error(app.basic(Method::DELETE, &path(&alices), &alice), StatusCode::NOT_FOUND, "not_found").await;
    expect_error(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::UNAUTHORIZED, "unauthorized").await;

    // The super admin revokes a token another credential issued; it stops at once.
    let token = second["token"].as_str().unwrap();
    expect(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::OK).await;
    expect(app.admin(Method::DELETE, &path(&second)), StatusCode::OK).await;
    expect_error(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::UNAUTHORIZED, "unauthorized").await;
    let alices_view = expect(app.basic(Method::GET, "/api/v1/tokens", &alice), StatusCode::OK).await;
    assert_eq!(alices_view, json!([]));
}

#[tokio::test]
async fn a_token_on_the_host_identity_needs_its_own_scope_and_cannot_reset_the_hosts_password() {
    let app = TestApp::start().await;
    let admins = app.admin_token(false).await;
    let alice = app.credential("alice", None).await;
    let on_host = |client| app.basic(Method::POST, "/api/v1/tokens", client).json(&json!({ "use_host": true }));
    let refused = expect_error(on_host(&alice), StatusCode::FORBIDDEN, "forbidden").await;
    assert!(refused["message"].as_str().unwrap().contains("tokens:write:use_host"), "{refused}");
    let alices_view = expect(app.basic(Method::GET, "/api/v1/tokens", &alice), StatusCode::OK).await;
    assert_eq!(alices_view, json!([]), "the refusal created nothing");

    let carol = app.credential("carol", Some(&["tokens:read:*", "tokens:write:create", "tokens:write:use_host"])).await;
    let carols = expect(on_host(&carol), StatusCode::CREATED).await;
    assert_eq!(carols["matrix_user_id"], admins["matrix_user_id"]);
    assert_eq!(carols["use_host"], true);

    let reset =
        |token: &Value| app.bearer(Method::POST, "/api/v1/matrix/credentials", token["token"].as_str().unwrap());
    let refused = expect_error(reset(&carols), StatusCode::FORBIDDEN, "forbidden").await;
    assert!(refused["message"].as_str().unwrap().contains("admin token"), "{refused}");
    let shared = app.admin_token(true).await;
    expect_error(reset(&shared), StatusCode::FORBIDDEN, "forbidden").await;
    let login = expect(reset(&admins), StatusCode::OK).await;
    assert_eq!(login["user_id"], admins["matrix_user_id"]);
}

#[tokio::test]
async fn a_deleted_token_is_refused_on_its_very_next_request() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap();
    expect(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::OK).await;
    expect(app.admin(Method::DELETE, &format!("/api/v1/tokens/{}", issued["id"].as_str().unwrap())), StatusCode::OK)
        .await;
    let response = app.bearer(Method::GET, "/api/v1/webhooks", token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::start().await;
    app.admin_token(false).await;
    let expires_at = (Utc::now() + Duration::seconds(2)).to_rfc3339();
    let issued = expect(
        app.admin(Method::POST, "/api/v1/tokens").json(&json!({ "use_host": true, "expires_at": expires_at })),
        StatusCode::CREATED,
    )
    .await;
    let token = issued["token"].as_str().unwrap();
    assert!(issued["expires_at"].is_string());
    expect(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::OK).await;
    // Wait until the expiry instant has passed; the assertion is about the refusal, not the time.
    let expiry = chrono::DateTime::parse_from_rfc3339(issued["expires_at"].as_str().unwrap()).unwrap();
    while Utc::now() <= expiry {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let refused =
        expect_error(app.bearer(Method::GET, "/api/v1/webhooks", token), StatusCode::UNAUTHORIZED, "unauthorized")
            .await;
    assert_eq!(refused["message"], "token expired");
}

#[tokio::test]
async fn bad_token_requests_get_clear_errors() {
    let app = TestApp::start().await;
    let post = |body: serde_json::Value| app.admin(Method::POST, "/api/v1/tokens").json(&body);
    let past = (Utc::now() - Duration::hours(1)).to_rfc3339();
    expect_error(
        post(json!({ "use_host": false, "expires_at": past })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        post(json!({ "use_host": false, "expires_at": "tomorrow" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(post(json!({ "use_host": "yes" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(post(json!({})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let no_type = app.admin(Method::POST, "/api/v1/tokens").body("{\"use_host\":false}");
    expect_error(no_type, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    expect_error(
        app.request(Method::POST, "/api/v1/tokens").json(&json!({ "use_host": false })),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let listed = expect(app.admin(Method::GET, "/api/v1/tokens"), StatusCode::OK).await;
    assert_eq!(listed, json!([]), "nothing was issued by the bad requests");

    for header in [
        "Bearer mt_nope",
        "Bearer ",
        "Basic Zm9vOmJhcg==",
        "mt_abc",
        "Bearer mt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let request = app.request(Method::GET, "/api/v1/webhooks").header("authorization", header);
        let body = expect_error(request, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let text = body.to_string();
        assert!(!text.contains("mt_nope") && !text.contains("AAAAAAAA"), "the error echoes the token: {text}");
    }
}
