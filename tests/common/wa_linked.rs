//! A device linked on the `whatsapp` connector: mxgate's own whatsapp-rust client against a
//! `wa-sim`, linked through the API's QR WebSocket with the real client's codes scanned by
//! the simulated phone. Shared by every target that tells a story on that connector.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::json;
use wa_sim::WaSim;

use super::{Options, TestApp, WebhookReceiver, WhatsAppServer, link_device_with};

/// Options that point mxgate's whatsapp connector at `sim`.
pub fn wa_sim_options(sim: &WaSim) -> Options {
    let server = WhatsAppServer {
        ws_url: sim.ws_url(),
        http_url: format!("http://{}", sim.media_host()),
        connect_timeout_ms: 2_000,
    };
    Options { whatsapp: Some(server), ..Options::default() }
}

pub struct Linked {
    pub sim: WaSim,
    pub app: TestApp,
    pub token: String,
    pub identity: String,
    pub receiver: WebhookReceiver,
}

/// An mxgate on a new simulator (started by `app` with the options for it), a token with a
/// webhook, and `device` linked through the API's QR socket.
pub async fn link_on_wa_sim(device: &str, app: impl AsyncFnOnce(Options) -> TestApp) -> Linked {
    let sim = WaSim::start().await.expect("the simulator starts");
    sim.create_account(device, "Device Owner").unwrap();
    let app = app(wa_sim_options(&sim)).await;
    let issued = app.admin_token(false).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;

    let frames = link_device_with(&app, &token, 1, |code| {
        let scanned = sim.scan_qr(device, &code);
        async move {
            scanned.expect("the phone scans the code");
        }
    })
    .await;
    let qr = &frames[0];
    assert_eq!(qr["type"], "qr", "{frames:?}");
    // The shape of a WhatsApp Web pairing code: ref, noise key, identity key, adv secret, platform.
    let code = qr["code"].as_str().unwrap();
    assert!(code.starts_with("2@") && code.split(',').count() == 5, "{code}");
    assert_eq!(frames.last().unwrap(), &json!({ "type": "success", "device_id": device }), "{frames:?}");
    let identity = issued["matrix_user_id"].as_str().unwrap().to_owned();
    Linked { sim, app, token, identity, receiver }
}

impl Linked {
    /// Matrix events per WhatsApp message id, as the webhook received the incoming texts.
    pub fn events_by_message(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut events: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for payload in self.receiver.received().iter().map(|r| r.json()).filter(|p| p["type"] == "m.text") {
            let (Some(message), Some(event)) = (payload["message_id"].as_str(), payload["id"].as_str()) else {
                continue;
            };
            events.entry(message.to_owned()).or_default().insert(event.to_owned());
        }
        events
    }

    /// A send request from the linked device, as the token.
    pub fn send(&self, device: &str) -> reqwest::RequestBuilder {
        self.app.bearer(Method::POST, &format!("/api/v1/devices/{device}/message"), &self.token)
    }
}

/// How many times `sim` routed each message from `from` (by id) to each of `to`'s devices.
pub fn routed(sim: &WaSim, from: &str, to: &str) -> BTreeMap<(String, u16), usize> {
    let mut routed = BTreeMap::new();
    let sent_by = |jid: &str| jid.split(['@', ':']).next() == Some(from);
    for stanza in sim.received(to).unwrap().into_iter().filter(|r| r.tag == "message" && sent_by(&r.from)) {
        *routed.entry((stanza.id, stanza.device)).or_default() += 1;
    }
    routed
}
