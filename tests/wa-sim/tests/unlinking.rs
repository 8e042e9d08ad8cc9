//! Linked devices leave an account: the phone removes one, or a client logs
//! itself out. Either way the client is logged out for good.

mod common;

use whatsapp_rust::Jid;
use whatsapp_rust::wacore::net::{HttpClient, HttpRequest};
use whatsapp_rust::wacore::types::events::{DeviceListUpdateType, Event};
use whatsapp_rust_ureq_http_client::UreqHttpClient;

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";

fn logged_out(e: &Event, on_connect: bool) -> bool {
    matches!(e, Event::LoggedOut(lo) if lo.on_connect == on_connect)
}

/// A new client on a removed device's store is refused at login.
async fn assert_refused_at_login(sim: &wa_sim::WaSim, device: common::Device) -> anyhow::Result<()> {
    let backend = device.backend.clone();
    device.stop().await;
    let again = common::start_client(sim, backend).await?;
    again.wait_for(20, |e| logged_out(e, true)).await?;
    assert!(!again.client.is_logged_in());
    again.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_phone_removes_a_linked_device() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let (first, second, bob) =
        tokio::try_join!(common::link(&sim, ALICE), common::link(&sim, ALICE), common::link(&sim, BOB))?;
    let first_id = first.client.pn().expect("paired").device;
    let second_id = second.client.pn().expect("paired").device;
    let alice = Jid::pn(ALICE);
    let devices_of_alice = || async { bob.client.signal().get_user_devices(std::slice::from_ref(&alice)).await };
    assert!(devices_of_alice().await?.iter().any(|d| d.device == first_id));

    sim.remove_device(ALICE, first_id)?;
    first.wait_for(10, |e| logged_out(e, false)).await?;
    assert_eq!(sim.account(ALICE)?.devices, vec![second_id]);
    // Bob hears of it through the `devices` notification, not a cache expiry:
    // once his client has handled it (it reports the update after patching
    // its cached list), Alice's list no longer has the device.
    bob.wait_for(10, |e| {
        matches!(e, Event::DeviceListUpdate(u)
            if u.update_type == DeviceListUpdateType::Remove
                && u.devices.iter().any(|d| d.device_id == u32::from(first_id)))
    })
    .await?;
    let gone = devices_of_alice().await?;
    assert!(!gone.iter().any(|d| d.device == first_id), "{gone:?}");
    assert!(gone.iter().any(|d| d.device == second_id), "{gone:?}");
    assert_refused_at_login(&sim, first).await?;

    // The same through the HTTP test API.
    let http = UreqHttpClient::new();
    let remove = |device: u16| {
        HttpRequest::post(format!("{}/accounts/{ALICE}/devices/{device}/remove", sim.api_url()))
            .with_header("Content-Type", "application/json")
            .with_body(b"{}".to_vec())
    };
    let answer = http.execute(remove(second_id)).await?;
    assert_eq!(answer.status_code, 200, "{}", answer.body_string()?);
    let account: serde_json::Value = serde_json::from_slice(&answer.body)?;
    assert_eq!(account["devices"], serde_json::json!([]));
    second.wait_for(10, |e| logged_out(e, false)).await?;
    assert_eq!(http.execute(remove(second_id)).await?.status_code, 400);

    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_logs_out_is_unlinked() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    let device = common::link(&sim, ALICE).await?;
    assert_eq!(sim.account(ALICE)?.devices.len(), 1);

    device.client.logout().await;
    assert_eq!(sim.account(ALICE)?.devices, Vec::<u16>::new());
    assert_refused_at_login(&sim, device).await?;
    Ok(())
}
