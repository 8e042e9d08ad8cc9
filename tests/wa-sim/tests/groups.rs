//! Groups with real clients: one made by a client and joined by another
//! through its invite link, messages fanning out with sender keys both ways;
//! and one its admins run (participants, admins, subject, description,
//! settings, invite link, picture) while a member watches every change.

mod common;

use std::time::Duration;

use common::Device;
use whatsapp_rust::features::{
    GroupCreateOptions, GroupDescription, GroupError, GroupParticipantOptions, GroupSubject, ParticipantType,
    PreviousDescription,
};
use whatsapp_rust::wacore::stanza::groups::{GroupNotificationAction as Action, GroupParticipantType};
use whatsapp_rust::wacore::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust::{IqError, Jid};

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

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";
const CAROL: &str = "15550003333";

/// Waits until `device` sees a `GroupUpdate` of `group` by `author` whose action
/// `pick` takes, and returns what it took.
async fn group_update<T>(
    device: &Device,
    group: &Jid,
    author: &str,
    mut pick: impl FnMut(&Action) -> Option<T>,
) -> anyhow::Result<T> {
    let mut picked = None;
    device
        .wait_for(15, |e| match e {
            Event::GroupUpdate(u) if &u.group_jid == group => {
                picked = pick(&u.action);
                picked.is_some() && u.participant.as_ref().is_some_and(|p| p.user == author)
            }
            _ => false,
        })
        .await?;
    picked.ok_or_else(|| anyhow::anyhow!("no update picked"))
}

/// The phone numbers of a notification's participants, with their role.
fn who(
    participants: &[whatsapp_rust::wacore::stanza::groups::GroupParticipantInfo],
) -> Vec<(String, GroupParticipantType)> {
    participants
        .iter()
        .map(|p| (p.jid.user.to_string(), p.r#type.unwrap_or(GroupParticipantType::Participant)))
        .collect()
}

/// The code of the server's refusal, if `result` is one.
fn refusal<T>(result: Result<T, GroupError>) -> Option<u16> {
    match result {
        Err(GroupError::Iq(IqError::ServerError { code, .. })) => Some(code),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_run_a_group_and_a_member_sees_every_change() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    for (phone, name) in [(ALICE, "Alice"), (BOB, "Bob"), (CAROL, "Carol")] {
        sim.create_account(phone, name)?;
    }
    let (alice, bob, carol) =
        tokio::try_join!(common::link(&sim, ALICE), common::link(&sim, BOB), common::link(&sim, CAROL))?;
    let groups = alice.client.groups();

    let options = GroupCreateOptions::builder()
        .subject("Club")
        .participants(vec![GroupParticipantOptions::new(Jid::pn(BOB))])
        .build();
    let group = groups.create_group(options).await?.metadata.id;
    group_update(&bob, &group, ALICE, |a| matches!(a, Action::Create { .. }).then_some(())).await?;

    // Carol by her LID; Bob is in already; nobody has the third number.
    let carol_lid: Jid = sim.account(CAROL)?.lid.parse()?;
    let added = groups.add_participants(&group, &[carol_lid.clone(), Jid::pn(BOB), Jid::pn("15550009999")]).await?;
    let answers: Vec<_> = added.iter().map(|r| (r.jid.to_string(), r.error.as_deref())).collect();
    assert_eq!(
        answers,
        [
            (carol_lid.to_string(), None),
            (Jid::pn(BOB).to_string(), Some("409")),
            (Jid::pn("15550009999").to_string(), Some("404"))
        ]
    );
    assert_eq!(added[0].phone_number, Some(Jid::pn(CAROL)));
    let add = |a: &Action| match a {
        Action::Add { participants, .. } => Some(participants.clone()),
        _ => None,
    };
    let told = group_update(&bob, &group, ALICE, add).await?;
    assert_eq!(who(&told), [(CAROL.to_string(), GroupParticipantType::Participant)]);
    assert_eq!(told[0].lid.as_ref(), Some(&carol_lid));
    // The one added is told too: that is how her client learns of the group.
    group_update(&carol, &group, ALICE, add).await?;

    groups.promote_participants(&group, &[Jid::pn(CAROL)]).await?;
    let promoted = group_update(&bob, &group, ALICE, |a| match a {
        Action::Promote { participants } => Some(who(participants)),
        _ => None,
    })
    .await?;
    assert_eq!(promoted, [(CAROL.to_string(), GroupParticipantType::Admin)]);

    // Carol, an admin now, renames the group.
    carol.client.groups().set_subject(&group, GroupSubject::new("Carol's club")?).await?;
    let (subject, owner) = group_update(&bob, &group, CAROL, |a| match a {
        Action::Subject { subject, subject_owner, .. } => Some((subject.clone(), subject_owner.clone())),
        _ => None,
    })
    .await?;
    assert_eq!((subject.as_str(), owner), ("Carol's club", Some(Jid::pn(CAROL))));

    groups.demote_participants(&group, &[Jid::pn(CAROL)]).await?;
    let demoted = group_update(&bob, &group, ALICE, |a| match a {
        Action::Demote { participants } => Some(who(participants)),
        _ => None,
    })
    .await?;
    assert_eq!(demoted, [(CAROL.to_string(), GroupParticipantType::Participant)]);

    let removed = groups.remove_participants(&group, &[Jid::pn(CAROL), Jid::pn(CAROL)]).await?;
    assert_eq!(removed.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>(), [None, Some("404")]);
    let remove = |a: &Action| match a {
        Action::Remove { participants, .. } => Some(who(participants)),
        _ => None,
    };
    assert_eq!(
        group_update(&bob, &group, ALICE, remove).await?,
        [(CAROL.to_string(), GroupParticipantType::Participant)]
    );
    // Carol learns she is out, and is out.
    group_update(&carol, &group, ALICE, remove).await?;
    assert_eq!(refusal(carol.client.groups().set_subject(&group, GroupSubject::new("Mine")?).await), Some(403));

    let description = |a: &Action| match a {
        Action::Description { id, description } => Some((id.clone(), description.clone())),
        _ => None,
    };
    groups
        .set_description(&group, Some(GroupDescription::new("Meets on Mondays")?), PreviousDescription::Resolve)
        .await?;
    let (_, text) = group_update(&bob, &group, ALICE, description).await?;
    assert_eq!(text.as_deref(), Some("Meets on Mondays"));
    groups
        .set_description(&group, Some(GroupDescription::new("Meets on Tuesdays")?), PreviousDescription::Resolve)
        .await?;
    let (description_id, text) = group_update(&bob, &group, ALICE, description).await?;
    assert_eq!(text.as_deref(), Some("Meets on Tuesdays"));
    // An update that believes there is no description lost a race.
    let stale =
        groups.set_description(&group, Some(GroupDescription::new("Fridays")?), PreviousDescription::Absent).await;
    assert!(matches!(stale, Err(GroupError::DescriptionConflict)), "{stale:?}");

    groups.set_locked(&group, true).await?;
    group_update(&bob, &group, ALICE, |a| matches!(a, Action::Locked { .. }).then_some(())).await?;
    // The author's own device is told as well.
    group_update(&alice, &group, ALICE, |a| matches!(a, Action::Locked { .. }).then_some(())).await?;
    groups.set_announce(&group, true).await?;
    group_update(&bob, &group, ALICE, |a| matches!(a, Action::Announce).then_some(())).await?;

    // Bob is no admin: he may neither add nor, the group being locked, rename.
    let bob_groups = bob.client.groups();
    assert_eq!(refusal(bob_groups.add_participants(&group, &[Jid::pn(CAROL)]).await), Some(403));
    assert_eq!(refusal(bob_groups.set_subject(&group, GroupSubject::new("Bob's")?).await), Some(403));
    assert_eq!(refusal(bob_groups.get_invite_link(&group, true).await), Some(403));

    let old_link = groups.get_invite_link(&group, false).await?;
    let new_link = groups.get_invite_link(&group, true).await?;
    assert_ne!(old_link, new_link);
    group_update(&bob, &group, ALICE, |a| matches!(a, Action::RevokeInvite).then_some(())).await?;
    assert_eq!(refusal(bob_groups.get_invite_info(&old_link).await), Some(410));
    assert_eq!(bob_groups.get_invite_info(&new_link).await?.subject, "Carol's club");

    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
    let picture_id = groups.set_profile_picture(&group, jpeg).await?.id;
    let update = bob.wait_for(15, |e| matches!(e, Event::PictureUpdate(p) if p.jid == group)).await?;
    let Event::PictureUpdate(update) = &*update else { unreachable!() };
    assert_eq!(update.author, Some(Jid::pn(ALICE)));
    assert!(!update.removed);
    assert_eq!(update.picture_id.as_deref(), Some(picture_id.as_str()));
    let shown = bob.client.contacts().get_profile_picture(&group, false).await?.expect("a picture");
    assert_eq!(shown.id, picture_id);

    let meta = bob_groups.get_metadata(&group).await?;
    assert_eq!(meta.subject, "Carol's club");
    assert_eq!(meta.subject_owner, Some(Jid::pn(CAROL)));
    assert_eq!(meta.description.as_deref(), Some("Meets on Tuesdays"));
    assert_eq!(meta.description_id, Some(description_id));
    assert!(meta.is_locked && meta.is_announcement);
    let roles: Vec<_> = meta.participants.iter().map(|p| (p.jid.user.to_string(), p.participant_type)).collect();
    assert_eq!(roles, [(ALICE.to_string(), ParticipantType::SuperAdmin), (BOB.to_string(), ParticipantType::Member)]);

    let info = sim.group(&group.to_string())?;
    assert_eq!(info.members, [ALICE, BOB]);
    assert_eq!(info.admins, [ALICE]);
    assert_eq!(info.description.as_deref(), Some("Meets on Tuesdays"));
    assert!(info.locked && info.announce && info.has_picture);
    assert_eq!(info.invite_link, new_link);

    // Bob leaves; Alice is told.
    bob_groups.leave(&group).await?;
    let left = group_update(&alice, &group, BOB, |a| match a {
        Action::Remove { participants, reason } => Some((who(participants), reason.clone())),
        _ => None,
    })
    .await?;
    assert_eq!(left, (vec![(BOB.to_string(), GroupParticipantType::Participant)], Some("leave".to_string())));
    assert_eq!(sim.group(&group.to_string())?.members, [ALICE]);

    alice.stop().await;
    bob.stop().await;
    carol.stop().await;
    Ok(())
}
