use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{
    Options, TestApp, WebhookReceiver, device_state_seen, eventually, expect, expect_error, link_device,
};

#[tokio::test]
async fn a_phone_links_a_device_by_scanning_the_qr_streamed_over_the_websocket() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();

    let link =
        expect(app.bearer(Method::POST, "/api/v1/devices", &token).json(&json!({ "platform": "wa" })), StatusCode::OK)
            .await;
    let url = link["qr_code_url"].as_str().unwrap();
    assert!(url.starts_with("ws://127.0.0.1:") && url.contains("/api/v1/devices/qr-code?ticket="), "{url}");
    assert!(!url.contains(&token), "the token must never be in a URL");

    let frames = link_device(&app, &token, "237111111111").await;
    let qr: Vec<_> = frames.iter().filter(|f| f["type"] == "qr").collect();
    assert!(qr.len() >= 2, "codes rotate: {frames:?}");
    assert_ne!(qr[0]["code"], qr[1]["code"]);
    let png = STANDARD.decode(qr[0]["png_base64"].as_str().unwrap()).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    assert_eq!(frames.last().unwrap(), &json!({ "type": "success", "device_id": "237111111111" }));

    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices, json!([{ "platform": "wa", "device_id": "237111111111", "status": "connected" }]));
}

#[tokio::test]
async fn a_ticket_opens_the_socket_once_and_bad_link_requests_are_refused() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let link =
        expect(app.bearer(Method::POST, "/api/v1/devices", &token).json(&json!({ "platform": "wa" })), StatusCode::OK)
            .await;
    let url = link["qr_code_url"].as_str().unwrap().to_owned();
    let (first, _) = tokio_tungstenite::connect_async(url.clone()).await.unwrap();
    drop(first);
    let reused = tokio_tungstenite::connect_async(url).await;
    assert!(
        matches!(reused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401),
        "{reused:?}"
    );
    let forged = format!("{}/api/v1/devices/qr-code?ticket=eyJhbGciOiJIUzI1NiJ9.e30.x", app.base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(forged).await.is_err());

    let post = |body: serde_json::Value| app.bearer(Method::POST, "/api/v1/devices", &token).json(&body);
    expect_error(post(json!({ "platform": "telegram" })), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    expect_error(post(json!({})), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let unknown = app
        .bearer(Method::DELETE, "/api/v1/devices", &token)
        .json(&json!({ "device_id": "237999999999", "platform": "wa" }));
    expect_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let malformed = app
        .bearer(Method::DELETE, "/api/v1/devices", &token)
        .json(&json!({ "device_id": "not-a-phone", "platform": "wa" }));
    expect_error(malformed, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn the_qr_socket_also_accepts_the_token_in_the_authorization_header() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let url = format!("{}/api/v1/devices/qr-code", app.base.replace("http", "ws"));
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("the token opens the socket");
    let first = socket.next().await.unwrap().unwrap().into_text().unwrap();
    let frame: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(frame["type"], "qr", "{frame}");
    let anonymous = tokio_tungstenite::connect_async(url).await;
    assert!(matches!(anonymous, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401));
}

#[tokio::test]
async fn use_host_tokens_share_the_admins_devices_and_own_identities_do_not() {
    let app = TestApp::start().await;
    let admin = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    link_device(&app, &admin, "237222000001").await;
    let shared = app.admin_token(true).await["token"].as_str().unwrap().to_owned();
    let own = app.admin_token(false).await["token"].as_str().unwrap().to_owned();

    let seen = expect(app.bearer(Method::GET, "/api/v1/devices", &shared), StatusCode::OK).await;
    assert_eq!(seen[0]["device_id"], "237222000001");
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/devices", &own), StatusCode::OK).await, json!([]));

    let message = json!({ "contact": "237698765432", "text": "not mine to send" });
    let refused = app.bearer(Method::POST, "/api/v1/devices/237222000001/message", &own).json(&message);
    expect_error(refused, StatusCode::NOT_FOUND, "not_found").await;
    let outbox = expect(app.request(Method::GET, "/sim/outbox?device_id=237222000001"), StatusCode::OK).await;
    assert_eq!(outbox, json!([]));

    let sent = expect(
        app.bearer(Method::POST, "/api/v1/devices/237222000001/message", &shared).json(&message),
        StatusCode::OK,
    )
    .await;
    assert_eq!(sent["results"][0]["status"], "sent", "{sent}");

    let logout = json!({ "device_id": "237222000001", "platform": "wa" });
    expect_error(app.bearer(Method::DELETE, "/api/v1/devices", &own).json(&logout), StatusCode::NOT_FOUND, "not_found")
        .await;
    expect(app.bearer(Method::DELETE, "/api/v1/devices", &admin).json(&logout), StatusCode::OK).await;
    assert_eq!(expect(app.bearer(Method::GET, "/api/v1/devices", &shared), StatusCode::OK).await, json!([]));
}

#[tokio::test]
async fn a_pairing_code_links_a_device_and_a_removal_on_the_phone_reaches_the_webhook() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    let states = WebhookReceiver::start().await;
    let hook = json!({ "url": states.url, "events": ["device.state"] });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&hook), StatusCode::CREATED).await;
    let post = |body: serde_json::Value| app.bearer(Method::POST, "/api/v1/devices", &token).json(&body);
    expect_error(
        post(json!({ "platform": "wa", "phone": "+12 x" })),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    let link = expect(post(json!({ "platform": "wa", "phone": "237222222222" })), StatusCode::OK).await;
    let code = link["pair_code"].as_str().unwrap();
    assert_eq!(code.len(), 8, "{link}");
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{link}");
    assert!(link.get("qr_code_url").is_none(), "{link}");
    // Another number cannot complete this login.
    let wrong = app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": "237333333333" }));
    expect_error(wrong, StatusCode::CONFLICT, "conflict").await;
    expect(app.request(Method::POST, "/sim/qr/scan").json(&json!({ "phone": "237222222222" })), StatusCode::OK).await;
    let connected = json!([{ "platform": "wa", "device_id": "237222222222", "status": "connected" }]);
    eventually("the paired device is listed", || async {
        let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
        (devices == connected).then_some(())
    })
    .await;
    let health = expect(app.health(), StatusCode::OK).await;
    assert_eq!(health["devices"], json!({ "connected": 1, "connecting": 0, "error": 0, "failing": [] }));
    device_state_seen(&states, "connected").await;

    let removal = app.request(Method::POST, "/sim/devices/remove").json(&json!({ "phone": "237222222222" }));
    expect(removal, StatusCode::OK).await;
    let delivery = receiver.wait_for(1).await.remove(0).json();
    assert_eq!(delivery["type"], "device.logged_out");
    assert_eq!(delivery["device_id"], "237222222222");
    assert_eq!(delivery["platform"], "wa");
    assert!(delivery["timestamp"].as_i64().unwrap() > 1_700_000_000, "{delivery}");
    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices, json!([{ "platform": "wa", "device_id": "237222222222", "status": "logged_out" }]));
    let health = expect(app.health(), StatusCode::OK).await;
    assert_eq!(health["devices"]["connected"], 0);
    device_state_seen(&states, "logged_out").await;
    app.quiet().await;
    let told = states.in_event_order();
    assert_eq!(receiver.received().len(), 1, "device.state is not for webhooks that did not choose it");
    assert!(told.iter().all(|p| p["event"] == "device.state" && p["device_id"] == "237222222222"), "{told:?}");
    assert_eq!(told.last().unwrap()["state"], "logged_out", "{told:?}");

    // Its owner clears it from the list.
    let delete = app
        .bearer(Method::DELETE, "/api/v1/devices", &token)
        .json(&json!({ "device_id": "237222222222", "platform": "wa" }));
    expect(delete, StatusCode::OK).await;
    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", &token), StatusCode::OK).await;
    assert_eq!(devices, json!([]));
    assert_eq!(receiver.received().len(), 1, "one log-out, one delivery");
}

#[tokio::test]
async fn a_failing_bridge_reaches_clients_as_a_stable_code_and_a_safe_message() {
    let app = TestApp::with(Options { bridge_unreachable: true, ..Options::default() }).await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    // What the API knows of the bridge (its address, the connection error) stays in the log.
    let leaks = |text: &str| text.contains("127.0.0.1") || text.contains("http://") || text.contains("error sending");
    let refused = expect_error(
        app.bearer(Method::GET, "/api/v1/devices", &token),
        StatusCode::SERVICE_UNAVAILABLE,
        "bridge_unavailable",
    )
    .await;
    assert!(!leaks(refused["message"].as_str().unwrap()), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("try again"), "{refused}");
    let body = json!({ "contact": "237698000555", "text": "hello" });
    let path = "/api/v1/devices/237600000555/message";
    let answer = app.bearer(Method::POST, path, &token).json(&body).send().await.unwrap();
    let status = answer.status();
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert!(status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{status}: {answer}");
    assert!(!leaks(&answer.to_string()), "{answer}");
}

/// The rooms `user` (a token identity) has joined, asked as the API's appservice.
#[tokio::test]
async fn a_phone_linked_again_under_another_identity_takes_its_portals_and_the_old_identity_leaves_them() {
    const PHONE: &str = "237600000095";
    let app = TestApp::start().await;
    let first = app.admin_token(false).await;
    let (first_token, first_user) = (first["token"].as_str().unwrap(), first["matrix_user_id"].as_str().unwrap());
    link_device(&app, first_token, PHONE).await;
    let before = app.joined_rooms(first_user).await;
    let body = json!({ "device_id": PHONE, "from": "237698000095", "text": "hello" });
    expect(app.request(Method::POST, "/sim/incoming").json(&body), StatusCode::OK).await;
    let portal = eventually("the portal of the chat", || async {
        app.joined_rooms(first_user).await.difference(&before).next().cloned()
    })
    .await;

    let second = app.admin_token(false).await;
    let (second_token, second_user) = (second["token"].as_str().unwrap(), second["matrix_user_id"].as_str().unwrap());
    link_device(&app, second_token, PHONE).await;
    eventually("the portal handed over", || async {
        let moved = app.joined_rooms(second_user).await.contains(&portal);
        let left = !app.joined_rooms(first_user).await.contains(&portal);
        (moved && left).then_some(())
    })
    .await;
    let devices = expect(app.bearer(Method::GET, "/api/v1/devices", first_token), StatusCode::OK).await;
    assert_eq!(devices, json!([]), "the first identity no longer has the device");
}
