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
