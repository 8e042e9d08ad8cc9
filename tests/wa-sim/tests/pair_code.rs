//! A new device links by phone number: it shows a code, the user types it on
//! the simulated phone, and the device logs in as after a QR scan.

mod common;

use whatsapp_rust::Jid;
use whatsapp_rust::wacore::net::{HttpClient, HttpRequest};
use whatsapp_rust::wacore::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust_ureq_http_client::UreqHttpClient;

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";

async fn shown_code(device: &common::Device) -> anyhow::Result<String> {
    let event = device.wait_for(30, |e| matches!(e, Event::PairingCode(_))).await?;
    let Event::PairingCode(code) = &*event else { unreachable!() };
    Ok(code.code.clone())
}

/// Another valid code: the same with its first character changed.
fn mistyped(code: &str) -> String {
    let first = if code.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &code[1..])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_links_with_the_code_it_shows_and_not_with_another() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let (device, bob) = tokio::try_join!(common::start_client_with_pair_code(&sim, ALICE), common::link(&sim, BOB))?;
    let code = shown_code(&device).await?;

    assert!(sim.enter_pair_code(ALICE, "nonsense").await.is_err());
    let wrong = sim.enter_pair_code(ALICE, &mistyped(&code)).await;
    assert!(wrong.is_err(), "a wrong code linked {wrong:?}");
    assert_eq!(sim.account(ALICE)?.devices, Vec::<u16>::new());
    assert!(!device.client.is_logged_in());

    let jid = sim.enter_pair_code(ALICE, &code).await?;
    device.wait_connected().await?;
    let pn = device.client.pn().expect("paired");
    assert_eq!(pn.to_string(), jid);
    assert_eq!(sim.account(ALICE)?.devices, vec![pn.device]);

    // Bob's client checks the device's signed identity before it encrypts for it.
    let text = wa::Message { conversation: Some("hello linked Alice".to_string()), ..Default::default() };
    bob.client.send_message(Jid::pn(ALICE), text).await?;
    device.wait_for_text(15, "hello linked Alice").await?;

    // It logs in again without any code.
    let backend = device.backend.clone();
    device.stop().await;
    let again = common::start_client(&sim, backend).await?;
    again.wait_connected().await?;
    again.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_test_api_types_pair_codes() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    let device = common::start_client_with_pair_code(&sim, ALICE).await?;
    let code = shown_code(&device).await?;

    let http = UreqHttpClient::new();
    let enter = |code: &str| {
        HttpRequest::post(format!("{}/accounts/{ALICE}/pair-code", sim.api_url()))
            .with_header("Content-Type", "application/json")
            .with_body(serde_json::to_vec(&serde_json::json!({ "code": code })).expect("json"))
    };
    let refused = http.execute(enter(&mistyped(&code))).await?;
    assert_eq!(refused.status_code, 400, "{}", refused.body_string()?);
    let linked = http.execute(enter(&code)).await?;
    assert_eq!(linked.status_code, 200, "{}", linked.body_string()?);
    let answer: serde_json::Value = serde_json::from_slice(&linked.body)?;
    device.wait_connected().await?;
    assert_eq!(answer["device_jid"], device.client.pn().expect("paired").to_string());
    device.stop().await;
    Ok(())
}
