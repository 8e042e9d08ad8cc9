//! The server forgets a message only when the receiving device acks it: a
//! client whose application did not commit a message (its
//! `InboundDurabilityHook` failed, so the ack was withheld) gets it again at
//! its next login; a client that acked it does not.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use whatsapp_rust::client::Client;
use whatsapp_rust::wacore::net::{HttpClient, HttpRequest};
use whatsapp_rust::wacore::types::events::{Event, InboundMessage};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{InboundDurabilityHook, Jid};
use whatsapp_rust_ureq_http_client::UreqHttpClient;

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";
const QUIET: Duration = Duration::from_secs(15);

fn text(s: &str) -> wa::Message {
    wa::Message { conversation: Some(s.to_string()), ..Default::default() }
}

/// The application's commit: reports every text it is handed, and fails
/// (so the client withholds the ack) for a message reading `FRAGILE` while
/// `failing` is set.
struct Commit {
    failing: Arc<AtomicBool>,
    seen: async_channel::Sender<String>,
}

const FRAGILE: &str = "commit me";

#[async_trait::async_trait]
impl InboundDurabilityHook for Commit {
    async fn on_messages(&self, _client: Arc<Client>, batch: &[InboundMessage]) -> anyhow::Result<()> {
        let mut fail = false;
        for m in batch {
            if let Some(t) = common::text_of(&m.message) {
                fail |= t == FRAGILE && self.failing.load(Ordering::SeqCst);
                let _ = self.seen.send(t.to_string()).await;
            }
        }
        if fail { Err(anyhow::anyhow!("the database is down")) } else { Ok(()) }
    }
}

async fn next_seen(seen: &async_channel::Receiver<String>, want: &str) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if seen.recv().await? == want {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("the hook never saw {want:?}"))?
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_whose_commit_failed_is_delivered_again_at_the_next_login() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;
    let bob_id = bob.client.pn().expect("paired").device;
    let bob_store = bob.backend.clone();
    // From now on Bob's application commits what his client receives.
    bob.stop().await;
    let failing = Arc::new(AtomicBool::new(true));
    let (seen_tx, seen) = async_channel::unbounded();
    let commit = |failing: &Arc<AtomicBool>| Commit { failing: failing.clone(), seen: seen_tx.clone() };
    let bob = common::start_client_with_hook(&sim, bob_store.clone(), commit(&failing)).await?;
    bob.wait_connected().await?;

    alice.client.send_message(Jid::pn(BOB), text(FRAGILE)).await?;
    next_seen(&seen, FRAGILE).await?;
    // The commit failed, so the client withholds its ack and the server keeps
    // the message. A second message, committed, is the barrier: the client
    // handles one chat's messages in order, so once the server has the ack of
    // the second, the client is done with the first — and still holds it back.
    alice.client.send_message(Jid::pn(BOB), text("barrier")).await?;
    next_seen(&seen, "barrier").await?;
    sim.wait_until(QUIET, |sim| sim.pending_for(BOB, bob_id).is_ok_and(|n| n == 1)).await?;
    bob.stop().await;
    sim.wait_until(QUIET, |sim| !sim.is_online(BOB, bob_id)).await?;
    assert_eq!(sim.pending_for(BOB, bob_id)?, 1);

    // The database is back; a new client on the same store logs in, gets the
    // message again, and this time commits and acks it.
    failing.store(false, Ordering::SeqCst);
    let bob = common::start_client_with_hook(&sim, bob_store, commit(&failing)).await?;
    next_seen(&seen, FRAGILE).await?;
    sim.wait_until(QUIET, |sim| sim.pending_for(BOB, bob_id).is_ok_and(|n| n == 0)).await?;
    // The committed barrier was not delivered again.
    bob.stop().await;
    sim.wait_until(QUIET, |sim| !sim.is_online(BOB, bob_id)).await?;
    drop(seen_tx);
    let mut after = Vec::new();
    while let Ok(t) = seen.try_recv() {
        after.push(t);
    }
    assert_eq!(after, Vec::<String>::new());

    alice.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acked_message_is_not_delivered_again() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account(ALICE, "Alice")?;
    sim.create_account(BOB, "Bob")?;
    let alice = common::link(&sim, ALICE).await?;
    let bob = common::link(&sim, BOB).await?;
    let bob_id = bob.client.pn().expect("paired").device;

    alice.client.send_message(Jid::pn(BOB), text("only once")).await?;
    bob.wait_for_text(15, "only once").await?;
    // Bob's client acks it (with its delivery receipt); the server forgets it.
    sim.wait_until(QUIET, |sim| sim.pending_for(BOB, bob_id).is_ok_and(|n| n == 0)).await?;
    // The same through the HTTP test API.
    let answer = UreqHttpClient::new()
        .execute(HttpRequest::get(format!("{}/accounts/{BOB}/devices/{bob_id}/pending", sim.api_url())))
        .await?;
    assert_eq!(answer.status_code, 200, "{}", answer.body_string()?);
    let pending: serde_json::Value = serde_json::from_slice(&answer.body)?;
    assert_eq!(pending, serde_json::json!({"pending": 0, "online": true}));

    let bob_store = bob.backend.clone();
    bob.stop().await;
    sim.wait_until(QUIET, |sim| !sim.is_online(BOB, bob_id)).await?;
    let bob = common::start_client(&sim, bob_store).await?;
    // Everything the server had for Bob arrives before the end of his
    // offline backlog; nothing of it may be a message.
    let mut redelivered = Vec::new();
    bob.wait_for(30, |e| {
        redelivered.extend(e.messages().filter_map(|m| common::text_of(&m.message).map(str::to_string)));
        matches!(e, Event::OfflineSyncCompleted(_))
    })
    .await?;
    assert_eq!(redelivered, Vec::<String>::new());
    assert_eq!(sim.pending_for(BOB, bob_id)?, 0);

    alice.stop().await;
    bob.stop().await;
    Ok(())
}
