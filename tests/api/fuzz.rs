//! Schemathesis over mxgate's own OpenAPI document, against a running mxgate on the `sim`
//! network with every auth scheme supplied: no 5xx, and every answer as the spec says.

use std::path::Path;
use std::process::Command;

use crate::common::{TestApp, link_device};

#[tokio::test]
async fn schemathesis_finds_every_answer_as_the_spec_says() {
    let schemathesis = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/schemathesis");
    assert!(schemathesis.exists(), "{} is missing: run `make test`, which installs it", schemathesis.display());
    let app = TestApp::start().await;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    link_device(&app, &token, "237600000099").await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
# Patience for a busy machine: `make test` runs the other stories beside this one.
request-timeout = 60.0

[auth.openapi.basic]
username = "{client_id}"
password = "{client_secret}"

[auth.openapi.bearer]
bearer = "{token}"

[auth.openapi.metrics]
bearer = "{metrics}"

[auth.openapi.homeserver]
bearer = "{hs_token}"

# The simulator's control surface is for tests, not the product API.
[[operations]]
include-path-regex = "^/sim/"
enabled = false

# A WebSocket: schemathesis speaks HTTP only (tests/api/devices.rs links over it).
[[operations]]
include-path = "/api/v1/devices/qr-code"
enabled = false

# What no schema can say, so valid-looking data may be refused there (422, saying why):
# `expires_at` must be in the future; whether a webhook host's addresses are allowed
# depends on DNS and the deployment's address policy; a message needs a recipient and
# text or a file, out of several optional fields (each recipient gets its own result);
# a profile or group picture must be a picture; a contact looked up or put in a group
# must be on WhatsApp; a file is downloaded only from a message that has one; only a
# received message is marked read, only a sent one edited; a search cursor is opaque
# (one not from an earlier page is a 400).
[[operations]]
include-name = [
    "POST /api/v1/tokens",
    "POST /api/v1/webhooks",
    "PUT /api/v1/webhooks/{{id}}",
    "POST /api/v1/devices/{{device_id}}/message",
    "PUT /api/v1/devices/{{device_id}}/profile",
    "GET /api/v1/devices/{{device_id}}/contacts/{{phone}}",
    "POST /api/v1/devices/{{device_id}}/groups",
    "PUT /api/v1/devices/{{device_id}}/groups/{{chat_id}}",
    "GET /api/v1/devices/{{device_id}}/media/{{event_id}}",
    "POST /api/v1/devices/{{device_id}}/messages/{{event_id}}/read",
    "PUT /api/v1/devices/{{device_id}}/messages/{{event_id}}",
    "GET /api/v1/devices/{{device_id}}/search",
]
checks.positive_data_acceptance.enabled = false

[checks]
# Every check schemathesis has, the response time aside (timing belongs to `make bench`).
enabled = true
"#,
        client_id = app.client_id,
        client_secret = app.client_secret,
        metrics = app.metrics_token,
        hs_token = app.slot.pair.api.hs_token,
    );
    std::fs::write(dir.path().join("schemathesis.toml"), config).unwrap();
    let spec = app.url("/docs/openapi.json");
    let base = app.url("");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(dir.path())
            .args(["run", &spec, "--url", &base, "--max-examples", "30", "--no-color"])
            .args(["--phases", "examples,coverage,fuzzing,stateful", "--seed", "1"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
