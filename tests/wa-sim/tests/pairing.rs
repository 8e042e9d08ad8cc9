//! A new device is linked by QR code and logs in again later without one.

mod common;

use std::sync::Arc;

use whatsapp_rust::wacore::store::InMemoryBackend;
use whatsapp_rust::wacore::types::events::Event;

#[tokio::test(flavor = "multi_thread")]
async fn a_new_client_shows_qr_codes() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    let device = common::start_client(&sim, Arc::new(InMemoryBackend::new())).await?;
    let event = device.wait_for(20, |e| matches!(e, Event::PairingQrCode(_))).await?;
    let Event::PairingQrCode(qr) = &*event else { unreachable!() };
    assert!(qr.code.split(',').count() >= 4, "QR payload: {}", qr.code);
    device.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scanned_device_logs_in_and_again_after_a_restart() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account("15550001111", "Alice")?;

    let device = common::link(&sim, "15550001111").await?;
    let jid = device.client.pn().expect("paired");
    assert_eq!(jid.user, "15550001111");
    assert_eq!(sim.account("15550001111")?.devices, vec![jid.device]);

    // A new client on the same store: no QR code this time.
    let backend = device.backend.clone();
    device.stop().await;
    let again = common::start_client(&sim, backend).await?;
    again.wait_connected().await?;
    assert_eq!(again.client.pn().map(|j| j.device), Some(jid.device));
    again.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_test_api_creates_accounts_and_scans_codes() -> anyhow::Result<()> {
    use whatsapp_rust::wacore::net::{HttpClient, HttpRequest};
    use whatsapp_rust_ureq_http_client::UreqHttpClient;

    let sim = wa_sim::WaSim::start().await?;
    let http = UreqHttpClient::new();
    let post = |path: &str, body: serde_json::Value| {
        HttpRequest::post(format!("{}{path}", sim.api_url()))
            .with_header("Content-Type", "application/json")
            .with_body(serde_json::to_vec(&body).expect("json"))
    };

    let created = http
        .execute(post("/accounts", serde_json::json!({"phone_number": "15550003333", "push_name": "Carol"})))
        .await?;
    assert_eq!(created.status_code, 200, "{}", created.body_string()?);
    let account: serde_json::Value = serde_json::from_slice(&created.body)?;
    assert_eq!(account["jid"], "15550003333@s.whatsapp.net");

    let device = common::start_client(&sim, Arc::new(InMemoryBackend::new())).await?;
    let event = device.wait_for(20, |e| matches!(e, Event::PairingQrCode(_))).await?;
    let Event::PairingQrCode(qr) = &*event else { unreachable!() };
    let scanned = http.execute(post("/accounts/15550003333/scan", serde_json::json!({"qr_code": qr.code}))).await?;
    assert_eq!(scanned.status_code, 200, "{}", scanned.body_string()?);
    device.wait_connected().await?;

    let bad = http.execute(post("/accounts/15550003333/scan", serde_json::json!({"qr_code": "nonsense"}))).await?;
    assert_eq!(bad.status_code, 400);

    let info = http.execute(HttpRequest::get(format!("{}/accounts/15550003333", sim.api_url()))).await?;
    let info: serde_json::Value = serde_json::from_slice(&info.body)?;
    assert_eq!(info["devices"].as_array().map(Vec::len), Some(1));
    device.stop().await;
    Ok(())
}
