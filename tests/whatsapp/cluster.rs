//! Scale-out on the real connector: several `mxgate serve` on one PostgreSQL behind nginx,
//! every device run by exactly one of them (its lease), every request and every push of
//! the homeserver free to reach any of them. Skipped on SQLite: processes sharing a store
//! need a server database, and `make test` runs this target again on PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use wa_sim::WaSim;
use whatsapp_rust::Jid;
use whatsapp_rust::types::events::Event;
use whatsapp_rust::waproto::whatsapp as wa;

use crate::common::{
    Cluster, Layout, Options, Phone, WebhookReceiver, expect, link_device_with, patiently, routed, wa_sim_options,
};
use crate::{CONTACT, text_of};

fn device(n: usize) -> String {
    format!("23760010{n:04}")
}

/// A cluster of `members` on a new simulator with `devices` linked through the balancer
/// under one token with a webhook; `None` on SQLite.
async fn linked_cluster(members: &[Layout], devices: usize) -> Option<(WaSim, Cluster, String, WebhookReceiver)> {
    let sim = WaSim::start().await.expect("the simulator starts");
    let options = Options { lease_secs: 6, ..wa_sim_options(&sim) };
    let Some(cluster) = Cluster::start(members, options).await else {
        eprintln!("skipped: a cluster needs MXGATE_TEST_POSTGRES");
        return None;
    };
    let app = &cluster.app;
    let token = app.admin_token(false).await["token"].as_str().unwrap().to_owned();
    let receiver = WebhookReceiver::start().await;
    app.add_webhook(&token, &receiver.url).await;
    for n in 0..devices {
        let phone = device(n);
        sim.create_account(&phone, "Device Owner").unwrap();
        let frames = link_device_with(app, &token, 1, |code| {
            let scanned = sim.scan_qr(&phone, &code);
            async move {
                scanned.expect("the phone scans the code");
            }
        })
        .await;
        assert_eq!(frames.last().unwrap(), &json!({ "type": "success", "device_id": phone }), "{frames:?}");
    }
    Some((sim, cluster, token, receiver))
}

/// Devices per process once every device is held by a live one and connected there;
/// `None` before.
async fn spread(cluster: &Cluster, devices: usize) -> Option<BTreeMap<String, usize>> {
    let owners = cluster.owners().await;
    (owners.len() == devices && owners.values().all(|o| o.state == "connected")).then(|| {
        let mut per_process = BTreeMap::new();
        for owner in owners.values() {
            *per_process.entry(owner.process.clone()).or_default() += 1;
        }
        per_process
    })
}

/// Whether each device has exactly one client online at wa-sim, and none ever replaced
/// another's connection (two processes running one device).
fn one_client_each(sim: &WaSim, devices: usize) -> Result<(), String> {
    for n in 0..devices {
        let phone = device(n);
        let companion = sim.account(&phone).unwrap().devices.into_iter().max().unwrap();
        if !sim.is_online(&phone, companion) {
            return Err(format!("{phone} is not online"));
        }
        let takeovers = sim.takeovers(&phone, companion);
        if takeovers > 0 {
            return Err(format!("{phone} ran twice: {takeovers} connections replaced"));
        }
    }
    Ok(())
}

/// Each device sends `text` to the contact through the balancer; every answer says `sent`.
async fn send_from_each(cluster: &Cluster, token: &str, devices: usize, text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..devices {
        let path = format!("/api/v1/devices/{}/message", device(n));
        let body = json!({ "contact": CONTACT, "text": format!("{text} from {}", device(n)) });
        let sent = expect(cluster.app.bearer(Method::POST, &path, token).json(&body), StatusCode::OK).await;
        assert_eq!(sent["results"][0]["status"], "sent", "{sent}");
        ids.insert(sent["results"][0]["message_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The contact writes to each device; returns the WhatsApp ids.
async fn write_to_each(contact: &Phone, devices: usize, text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for n in 0..devices {
        let message = wa::Message { conversation: Some(format!("{text} {n}")), ..Default::default() };
        ids.insert(contact.client.send_message(Jid::pn(device(n)), message).await.expect("wa-sim takes it").message_id);
    }
    ids
}

/// Incoming texts at the webhook: deliveries per WhatsApp message id.
fn deliveries(receiver: &WebhookReceiver) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_message: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for received in receiver.received() {
        let payload = received.json();
        if payload["type"] != "m.text" {
            continue;
        }
        let id = payload["message_id"].as_str().unwrap_or_default().to_owned();
        by_message.entry(id).or_default().insert(received.header("x-mxgate-delivery").to_owned());
    }
    by_message
}

/// How many times wa-sim routed each message of the devices to each of the contact's devices.
fn routed_to_contact(sim: &WaSim, devices: usize) -> BTreeMap<(String, u16), usize> {
    let mut counts = BTreeMap::new();
    for n in 0..devices {
        for (key, times) in routed(sim, &device(n), CONTACT) {
            *counts.entry(key).or_default() += times;
        }
    }
    counts
}

/// Every one of `sent` reached the contact's devices, each exactly once.
fn routed_once(sim: &WaSim, devices: usize, sent: &BTreeSet<String>) {
    let routed = routed_to_contact(sim, devices);
    assert_eq!(&routed.keys().map(|(id, _)| id.clone()).collect::<BTreeSet<_>>(), sent, "{routed:?}");
    assert!(routed.values().all(|&n| n == 1), "wa-sim routed each send once per device: {routed:?}");
}

#[tokio::test]
async fn twenty_devices_behind_the_balancer_run_once_each_and_move_within_the_lease_after_a_kill_9() {
    const DEVICES: usize = 20;
    let Some((sim, mut cluster, token, receiver)) = linked_cluster(&[Layout::Serve, Layout::Serve], DEVICES).await
    else {
        return;
    };
    let contact = Phone::new(&sim, CONTACT, "Contact Person").await;

    let per_process = patiently("the devices spread over both processes", Duration::from_secs(90), || async {
        spread(&cluster, DEVICES).await.filter(|p| p.len() == 2 && p.values().all(|&n| n == DEVICES / 2))
    })
    .await;
    assert_eq!(per_process.len(), 2, "{per_process:?}");
    sim.wait_until(Duration::from_secs(60), |sim| one_client_each(sim, DEVICES).is_ok()).await.unwrap_or_else(|_| {
        panic!("{:?}", one_client_each(&sim, DEVICES));
    });

    // A ticket one process redeemed opens nothing at the other.
    let link = cluster.app.bearer(Method::POST, "/api/v1/devices", &token).json(&json!({ "platform": "wa" }));
    let url = expect(link, StatusCode::OK).await["qr_code_url"].as_str().unwrap().to_owned();
    let at = |member: usize| {
        url.replace(&cluster.app.base.replace("http", "ws"), &cluster.members[member].base.replace("http", "ws"))
    };
    let (first, _) = tokio_tungstenite::connect_async(at(0)).await.expect("one process takes the ticket");
    drop(first);
    let reused = tokio_tungstenite::connect_async(at(1)).await;
    assert!(
        matches!(reused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 401),
        "{reused:?}"
    );

    let mut sent = send_from_each(&cluster, &token, DEVICES, "before").await;
    let mut written = write_to_each(&contact, DEVICES, "before").await;
    patiently("the first messages at the webhook", Duration::from_secs(90), || async {
        (deliveries(&receiver).len() == DEVICES).then_some(())
    })
    .await;

    let killed = cluster.members[0].bridge_url.clone();
    let moving: BTreeSet<String> = cluster
        .owners()
        .await
        .into_iter()
        .filter(|(_, owner)| owner.process == killed)
        .map(|(device, _)| device)
        .collect();
    assert_eq!(moving.len(), DEVICES / 2);
    let started = Instant::now();
    cluster.kill(0);
    let survivor = cluster.members[1].bridge_url.clone();
    patiently("every device connected at the surviving process", Duration::from_secs(60), || async {
        spread(&cluster, DEVICES).await.filter(|p| p.keys().eq([&survivor]))
    })
    .await;
    sim.wait_until(Duration::from_secs(60), |sim| one_client_each(sim, DEVICES).is_ok()).await.unwrap_or_else(|_| {
        panic!("{:?}", one_client_each(&sim, DEVICES));
    });
    eprintln!("failover of {} devices (lease 6 s): {:.1} s", moving.len(), started.elapsed().as_secs_f64());

    sent.extend(send_from_each(&cluster, &token, DEVICES, "after").await);
    written.extend(write_to_each(&contact, DEVICES, "after").await);
    let mut received = BTreeMap::<String, usize>::new();
    while received.len() < sent.len() {
        let event = contact.wait_for("a message", |e| matches!(e, Event::Messages(_))).await;
        let Event::Messages(batch) = &*event else { unreachable!() };
        for message in batch.iter() {
            assert!(text_of(&message.message).is_some(), "a text");
            *received.entry(message.info.id.to_string()).or_default() += 1;
        }
    }
    let arrived = || deliveries(&receiver).keys().cloned().collect::<BTreeSet<_>>();
    patiently("every incoming message at the webhook", Duration::from_secs(120), || async {
        (arrived() == written).then_some(())
    })
    .await;
    cluster.app.quiet().await;

    assert_eq!(received.keys().cloned().collect::<BTreeSet<_>>(), sent, "the contact got every send");
    assert!(received.values().all(|&n| n == 1), "each send once: {received:?}");
    routed_once(&sim, DEVICES, &sent);
    let deliveries = deliveries(&receiver);
    assert_eq!(deliveries.keys().cloned().collect::<BTreeSet<_>>(), written, "every incoming message, no other");
    assert!(deliveries.values().all(|d| d.len() == 1), "each incoming message delivered once: {deliveries:?}");
    one_client_each(&sim, DEVICES).unwrap();
}

#[tokio::test]
async fn a_third_member_split_into_api_and_bridge_gets_its_share_and_a_graceful_stop_hands_it_over() {
    const DEVICES: usize = 6;
    let Some((sim, mut cluster, token, _receiver)) =
        linked_cluster(&[Layout::Serve, Layout::Serve, Layout::Split], DEVICES).await
    else {
        return;
    };
    let _contact = Phone::new(&sim, CONTACT, "Contact Person").await;
    patiently("two devices per process", Duration::from_secs(90), || async {
        spread(&cluster, DEVICES).await.filter(|p| p.len() == 3 && p.values().all(|&n| n == 2))
    })
    .await;

    // SIGTERM frees the leases at once: the others take the devices on their next round,
    // without waiting out the lease.
    cluster.terminate(2);
    let gone = cluster.members[2].bridge_url.clone();
    patiently("three devices per remaining process", Duration::from_secs(60), || async {
        spread(&cluster, DEVICES).await.filter(|p| !p.contains_key(&gone) && p.values().all(|&n| n == 3))
    })
    .await;
    sim.wait_until(Duration::from_secs(60), |sim| one_client_each(sim, DEVICES).is_ok()).await.unwrap_or_else(|_| {
        panic!("{:?}", one_client_each(&sim, DEVICES));
    });

    // Back again, it gets its share back.
    cluster.restart(2).await;
    patiently("two devices per process again", Duration::from_secs(90), || async {
        spread(&cluster, DEVICES).await.filter(|p| p.len() == 3 && p.values().all(|&n| n == 2))
    })
    .await;
    sim.wait_until(Duration::from_secs(60), |sim| one_client_each(sim, DEVICES).is_ok()).await.unwrap_or_else(|_| {
        panic!("{:?}", one_client_each(&sim, DEVICES));
    });
    let sent = send_from_each(&cluster, &token, DEVICES, "after the moves").await;
    cluster.app.quiet().await;
    routed_once(&sim, DEVICES, &sent);
}
