//! Groups made and administered through the API on the simulated network: the shared
//! story (`common::groups`), a change a member makes on their phone, and what a device
//! that is no admin may not do.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::groups::{Cast, administer};
use crate::common::{TestApp, WebhookReceiver, expect, expect_error, link_device};

const DEVICE: &str = "237600000461";
const OTHER_DEVICE: &str = "237600000462";
const FIRST: &str = "237698700461";
const SECOND: &str = "237698700462";
/// The simulator's numbers starting `000` are not on WhatsApp.
const STRANGER: &str = "000698700463";

#[tokio::test]
async fn a_group_is_made_and_administered_and_its_portal_and_webhooks_follow_each_change() {
    let app = TestApp::start().await;
    let token = app.token_with_device(DEVICE).await;
    let hook = WebhookReceiver::start().await;
    let events = json!(["group.created", "group.updated", "group.participants"]);
    let body = json!({ "url": hook.url, "events": events });
    expect(app.bearer(Method::POST, "/api/v1/webhooks", &token).json(&body), StatusCode::CREATED).await;

    let cast = Cast { device: DEVICE, first: FIRST, second: SECOND, stranger: STRANGER };
    let made = administer(&app, &token, &cast, &hook).await;

    // The promoted member renames the group on their phone.
    let rename = json!({ "jid": made.chat_id, "name": "Team Ω", "by": SECOND });
    expect(app.request(Method::POST, "/sim/groups/rename").json(&rename), StatusCode::OK).await;
    let renamed = hook.wait_for(made.delivered + 1).await[made.delivered].json();
    assert_eq!(
        (&renamed["event"], &renamed["subject"], &renamed["by"]),
        (&json!("group.updated"), &json!("Team Ω"), &json!(SECOND))
    );

    // A second device of the same token, added as a plain member, may read but not administer.
    link_device(&app, &token, OTHER_DEVICE).await;
    let group = format!("/api/v1/devices/{DEVICE}/groups/{}", made.chat_id);
    let add = json!({ "action": "add", "phones": [OTHER_DEVICE] });
    expect(app.bearer(Method::POST, &format!("{group}/participants"), &token).json(&add), StatusCode::OK).await;
    let theirs = format!("/api/v1/devices/{OTHER_DEVICE}/groups/{}", made.chat_id);
    let seen = expect(app.bearer(Method::GET, &theirs, &token), StatusCode::OK).await;
    assert_eq!(seen["subject"], "Team Ω");
    let promote = json!({ "action": "promote", "phones": [OTHER_DEVICE] });
    let path = format!("{theirs}/participants");
    expect_error(app.bearer(Method::POST, &path, &token).json(&promote), StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(app.bearer(Method::DELETE, &format!("{theirs}/invite"), &token), StatusCode::FORBIDDEN, "forbidden")
        .await;

    // It leaves; the group's owner hears of it, and the leaver's portal stays readable.
    expect(app.bearer(Method::POST, &format!("{theirs}/leave"), &token), StatusCode::OK).await;
    app.quiet().await;
    let left: Vec<_> = hook.received().iter().map(|d| d.json()).filter(|p| p["device_id"] == DEVICE).collect();
    let last = left.last().unwrap();
    assert_eq!(
        (&last["action"], &last["participants"], &last["by"]),
        (&json!("removed"), &json!([OTHER_DEVICE]), &json!(OTHER_DEVICE))
    );
    expect_error(app.bearer(Method::GET, &theirs, &token), StatusCode::NOT_FOUND, "not_found").await;
    let owner = expect(app.bearer(Method::GET, &group, &token), StatusCode::OK).await;
    assert!(!owner["participants"].to_string().contains(OTHER_DEVICE), "{owner}");
}
