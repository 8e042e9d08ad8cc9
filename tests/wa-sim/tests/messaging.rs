//! Two accounts, each with a linked whatsapp-rust companion, talk through
//! the simulator: Signal sessions are built by the clients from the pre-keys
//! and device lists the simulator serves; the simulator only relays.

mod common;

use std::time::Duration;

use whatsapp_rust::Jid;
use whatsapp_rust::wacore::types::events::Event;
use whatsapp_rust::wacore::types::presence::ReceiptType;
use whatsapp_rust::waproto::whatsapp as wa;

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";

fn text(s: &str) -> wa::Message {
    wa::Message { conversation: Some(s.to_string()), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_is_decrypted_by_the_other_account_and_the_reply_comes_back() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;

    let sent = alice.client.send_message(Jid::pn(BOB), text("hello Bob")).await?;
    let got = bob.wait_for_text(15, "hello Bob").await?;
    let msg = got.messages().next().expect("a message");
    assert_eq!(msg.info.source.sender.user, ALICE);

    // Bob's client acknowledges delivery (as "inactive": it never went
    // available); the receipt travels back to Alice.
    alice
        .wait_for(15, |e| {
            matches!(e, Event::Receipt(r)
                if r.message_ids.contains(&sent.message_id)
                    && matches!(r.r#type, ReceiptType::Delivered | ReceiptType::Inactive))
        })
        .await?;
    // Bob reads it; Alice hears of that too.
    bob.client.mark_as_read(&Jid::pn(ALICE), None, &[sent.message_id.as_str()]).await?;
    alice
        .wait_for(15, |e| {
            matches!(e, Event::Receipt(r)
                if r.message_ids.contains(&sent.message_id) && r.r#type == ReceiptType::Read)
        })
        .await?;

    bob.client.send_message(Jid::pn(ALICE), text("hi Alice")).await?;
    alice.wait_for_text(15, "hi Alice").await?;

    // The simulator saw ciphertext only.
    let received = sim.received(BOB)?;
    let m = received.iter().find(|r| r.id == sent.message_id).expect("logged");
    assert!(m.enc.iter().all(|t| t == "pkmsg" || t == "msg"), "{m:?}");

    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_for_an_offline_device_waits_for_its_next_login() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;
    // One exchange first, so both ends have sessions.
    alice.client.send_message(Jid::pn(BOB), text("first")).await?;
    bob.wait_for_text(15, "first").await?;
    let bob_id = bob.client.pn().expect("paired").device;
    let nothing_pending = |sim: &wa_sim::WaSim| sim.pending_for(BOB, bob_id).is_ok_and(|n| n == 0);
    sim.wait_until(Duration::from_secs(15), nothing_pending).await?;

    let bob_store = bob.backend.clone();
    bob.stop().await;
    sim.wait_until(Duration::from_secs(15), |sim| !sim.is_online(BOB, bob_id)).await?;
    // The server holds it for Bob (send_message returns once the stanza is
    // written, not when the server has it: wait for that).
    alice.client.send_message(Jid::pn(BOB), text("while you were away")).await?;
    sim.wait_until(Duration::from_secs(15), |sim| sim.pending_for(BOB, bob_id).is_ok_and(|n| n == 1)).await?;

    let bob = common::start_client(&sim, bob_store).await?;
    bob.wait_for_text(30, "while you were away").await?;
    sim.wait_until(Duration::from_secs(15), nothing_pending).await?;

    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_and_presence_reach_the_other_account_while_it_is_online() -> anyhow::Result<()> {
    use whatsapp_rust::features::{ChatStateType, PresenceStatus};
    use whatsapp_rust::wacore::types::presence::ChatPresence;
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;

    alice.client.chatstate().send(&Jid::pn(BOB), ChatStateType::Composing).await?;
    bob.wait_for(
        15,
        |e| matches!(e, Event::ChatPresence(p) if p.source.sender.user == ALICE && p.state == ChatPresence::Composing),
    )
    .await?;
    alice.client.chatstate().send(&Jid::pn(BOB), ChatStateType::Paused).await?;
    bob.wait_for(15, |e| matches!(e, Event::ChatPresence(p) if p.state == ChatPresence::Paused)).await?;

    bob.client.presence().subscribe(Jid::pn(ALICE)).await?;
    alice.client.presence().set(PresenceStatus::Available).await?;
    bob.wait_for(15, |e| matches!(e, Event::Presence(p) if p.from.user == ALICE && !p.unavailable)).await?;
    alice.client.presence().set(PresenceStatus::Unavailable).await?;
    bob.wait_for(15, |e| matches!(e, Event::Presence(p) if p.from.user == ALICE && p.unavailable)).await?;

    alice.stop().await;
    bob.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_call_offer_rings_the_callee_and_its_rejection_reaches_the_caller() -> anyhow::Result<()> {
    use whatsapp_rust::wacore::stanza::call::{OfferParams, build_offer};
    use whatsapp_rust::wacore::types::call::CallAction;
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;

    let offer = build_offer(&OfferParams {
        call_id: "CALL-A1",
        to: &Jid::pn(BOB),
        call_creator: &Jid::pn(ALICE),
        device_keys: &[],
        privacy_token: None,
        capability: None,
        device_identity: None,
        id: Some("call-1"),
        multi_device: false,
        video: false,
        audio_rates: &["16000"],
    });
    alice.client.send_node(offer).await?;
    let ringing = bob
        .wait_for(15, |e| matches!(e, Event::IncomingCall(c) if matches!(c.action, CallAction::Offer { .. })))
        .await?;
    let Event::IncomingCall(ringing) = &*ringing else { unreachable!() };
    assert_eq!((ringing.action.call_id(), ringing.from.user.as_str()), ("CALL-A1", ALICE));
    bob.client.voip().reject(ringing).await?;
    alice
        .wait_for(15, |e| {
            matches!(e, Event::IncomingCall(c) if matches!(c.action, CallAction::Reject { .. }) && c.from.user == BOB)
        })
        .await?;

    alice.stop().await;
    bob.stop().await;
    Ok(())
}
