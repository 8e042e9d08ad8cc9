//! A group made by one client, joined by another through its invite link;
//! messages fan out with sender keys both ways.

mod common;

use std::time::Duration;

use whatsapp_rust::features::GroupCreateOptions;
use whatsapp_rust::waproto::whatsapp as wa;

fn text(s: &str) -> wa::Message {
    wa::Message { conversation: Some(s.to_string()), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_who_joined_by_invite_link_talks_in_the_group() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account("15550001111", "Alice")?;
    sim.create_account("15550002222", "Bob")?;
    let alice = common::link(&sim, "15550001111").await?;
    let bob = common::link(&sim, "15550002222").await?;

    let created =
        alice.client.groups().create_group(GroupCreateOptions::builder().subject("Sim friends").build()).await?;
    let group = created.metadata.id.clone();
    let link = alice.client.groups().get_invite_link(group.clone(), false).await?;
    assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");

    let info = bob.client.groups().get_invite_info(&link).await?;
    assert_eq!(info.subject, "Sim friends");
    let joined = bob.client.groups().join_with_invite_code(&link).await?;
    assert_eq!(joined.group_jid(), &group);
    assert_eq!(sim.group(&group.to_string())?.members.len(), 2);

    bob.client.send_message(group.clone(), text("hello group")).await?;
    let got = alice.wait_for_text(15, "hello group").await?;
    let m = got.messages().next().expect("message");
    assert_eq!(m.info.source.chat, group);
    assert_eq!(m.info.source.sender.user, "15550002222");

    // The simulator relayed a sender-key ciphertext it cannot read.
    let seen = sim.received("15550001111")?;
    assert!(seen.iter().any(|r| r.from == group.to_string() && r.enc.iter().any(|t| t == "skmsg")), "{seen:#?}");

    alice.client.send_message(group.clone(), text("welcome Bob")).await?;
    bob.wait_for_text(15, "welcome Bob").await?;

    // A group the test made through the simulator's own API works the same.
    let made = sim.create_group("15550001111", "Made by the sim", &["15550002222"])?;
    let jid: whatsapp_rust::Jid = made.jid.parse()?;
    alice.client.send_message(jid.clone(), text("from the sim's group")).await?;
    bob.wait_for_text(15, "from the sim's group").await?;

    // Each device acked every group message it got (its receipt names the
    // group and the author as `participant`): the server holds nothing more.
    let (alice_id, bob_id) = (alice.client.pn().expect("paired").device, bob.client.pn().expect("paired").device);
    sim.wait_until(Duration::from_secs(15), |sim| {
        sim.pending_for("15550001111", alice_id).is_ok_and(|n| n == 0)
            && sim.pending_for("15550002222", bob_id).is_ok_and(|n| n == 0)
    })
    .await?;

    alice.stop().await;
    bob.stop().await;
    Ok(())
}
