use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{TestApp, expect};

/// The HTTP contract of DESIGN.md that this build serves.
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/tokens"),
    ("delete", "/api/v1/tokens/{token_id}"),
    ("post", "/api/v1/credentials"),
    ("get", "/api/v1/credentials"),
    ("put", "/api/v1/credentials/{client_id}"),
    ("delete", "/api/v1/credentials/{client_id}"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks"),
    ("put", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("post", "/api/v1/matrix/credentials"),
    ("post", "/api/v1/devices"),
    ("get", "/api/v1/devices"),
    ("delete", "/api/v1/devices"),
    ("get", "/api/v1/devices/qr-code"),
    ("post", "/api/v1/devices/{device_id}/message"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry"),
    ("post", "/api/v1/webhooks/{id}/redeliver"),
    ("get", "/api/v1/events"),
    ("put", "/_matrix/app/v1/transactions/{txn_id}"),
    ("post", "/sim/qr/scan"),
    ("post", "/sim/groups"),
    ("post", "/sim/incoming"),
    ("post", "/sim/receipts"),
    ("get", "/sim/outbox"),
    ("get", "/health"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_spec_documents_the_contract_and_every_documented_route_is_served() {
    let app = TestApp::start().await;
    let spec = expect(app.request(Method::GET, "/docs/openapi.json"), StatusCode::OK).await;
    let paths = spec["paths"].as_object().unwrap();
    for (method, path) in CONTRACT {
        assert!(paths.get(*path).and_then(|p| p.get(*method)).is_some(), "{method} {path} missing from the spec");
    }

    let mut documented = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            documented += 1;
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            let concrete = path.replace(['{', '}'], "");
            let response = app.request(method.clone(), &concrete).send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || body["message"].as_str().is_some_and(|m| m.starts_with("no route"));
            assert!(!unrouted, "{method} {path} is documented but not served ({status} {body})");
            // An empty requirement (`{}`) among them makes credentials optional, as on /health.
            let secured = operation["security"]
                .as_array()
                .is_some_and(|schemes| schemes.iter().all(|s| s.as_object().is_some_and(|s| !s.is_empty())));
            if secured {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} answers without credentials");
            }
        }
    }
    assert!(documented >= CONTRACT.len());

    let ui = app.request(Method::GET, "/docs/index.html").send().await.unwrap();
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

/// No route answers a malformed request with a server error, whoever sends it.
#[tokio::test]
async fn no_documented_route_answers_bad_input_with_a_server_error() {
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let spec = expect(app.request(Method::GET, "/docs/openapi.json"), StatusCode::OK).await;
    let bodies: [(&str, &[u8]); 4] = [
        ("application/json", b"{"),
        ("application/json", b"[1,2,3]"),
        ("application/json", b"{\"url\":\"\\u0000\",\"device_id\":\"\xc3\x28\"}"),
        ("text/plain", b"\x00\xff"),
    ];
    for (path, operations) in spec["paths"].as_object().unwrap() {
        if path.ends_with("qr-code") {
            continue; // a WebSocket handshake, covered by the device stories
        }
        for method in operations.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let concrete = path.replace(['{', '}'], "");
            for (content_type, body) in bodies {
                let request =
                    app.request(method.clone(), &concrete).header("content-type", content_type).body(body.to_vec());
                let request = if path.starts_with("/api/v1/tokens") || path.starts_with("/api/v1/credentials") {
                    request.basic_auth(&app.client_id, Some(&app.client_secret))
                } else if path.starts_with("/_matrix") {
                    request.bearer_auth(&app.slot.pair.api.hs_token)
                } else {
                    request.bearer_auth(&token)
                };
                let status = request.send().await.unwrap().status();
                assert!(!status.is_server_error(), "{method} {path} with {body:?} answered {status}");
            }
        }
    }
}

#[tokio::test]
async fn answers_that_hand_out_an_id_link_to_the_operations_that_take_it() {
    let app = TestApp::start().await;
    let spec = expect(app.request(Method::GET, "/docs/openapi.json"), StatusCode::OK).await;
    let operations: Vec<&Value> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|operation| operation.get("responses").is_some())
        .collect();
    let by_id = |id: &str| operations.iter().find(|o| o["operationId"] == id).copied();
    let mut count = 0;
    for operation in &operations {
        for response in operation["responses"].as_object().unwrap().values() {
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                count += 1;
                let target = by_id(link["operationId"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{} links to {name}, not in the spec", operation["operationId"]));
                for parameter in link["parameters"].as_object().into_iter().flatten().map(|(p, _)| p) {
                    let takes =
                        target["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == *parameter));
                    assert!(takes, "{name} takes no parameter {parameter}");
                }
            }
        }
    }
    let created = &spec["paths"]["/api/v1/webhooks"]["post"]["responses"]["201"]["links"];
    assert!(created.as_object().is_some_and(|l| l.len() == 5), "a new webhook links to its operations: {created}");
    assert!(count >= 12, "{count} links");
}
