use reqwest::{Method, StatusCode};

use crate::common::{TestApp, expect};

/// A person opens a token's identity in a Matrix client with the username and password
/// mxgate hands out; matrix-sdk stands in for Element.
#[tokio::test]
async fn a_person_logs_into_the_tokens_identity_with_a_matrix_client() {
    let app = TestApp::start().await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap();
    let login = expect(app.bearer(Method::POST, "/api/v1/matrix/credentials", token), StatusCode::OK).await;
    assert_eq!(login["user_id"], issued["matrix_user_id"]);
    assert_eq!(login["homeserver_url"], app.synapse.url.as_str().trim_end_matches('/'));

    let client =
        matrix_sdk::Client::builder().homeserver_url(login["homeserver_url"].as_str().unwrap()).build().await.unwrap();
    client
        .matrix_auth()
        .login_username(login["username"].as_str().unwrap(), login["password"].as_str().unwrap())
        .initial_device_display_name("story test")
        .await
        .expect("login with the handed-out password");
    let whoami = client.whoami().await.unwrap();
    assert_eq!(whoami.user_id.as_str(), issued["matrix_user_id"].as_str().unwrap());

    // A new password replaces the old one.
    let again = expect(app.bearer(Method::POST, "/api/v1/matrix/credentials", token), StatusCode::OK).await;
    assert_ne!(again["password"], login["password"]);
    let stale = matrix_sdk::Client::builder().homeserver_url(app.synapse.url.as_str()).build().await.unwrap();
    let refused = stale
        .matrix_auth()
        .login_username(login["username"].as_str().unwrap(), login["password"].as_str().unwrap())
        .await;
    assert!(refused.is_err(), "the old password still works");
}
