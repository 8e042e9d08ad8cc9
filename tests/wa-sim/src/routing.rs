//! Relaying `<message>` and `<receipt>` stanzas between devices, as the real
//! server does: per-device ciphertexts are split out of `<participants>`,
//! group ciphertexts are fanned out to every member device, and nothing is
//! ever decrypted.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent, Server};

use crate::sim::Sim;
use crate::stanza::{attr, child, children, jid_attr, now_secs};
use crate::state::{ConnHandle, State};

/// The server's `<ack>` of a stanza a client sent.
pub fn server_ack(node: &Node) -> Node {
    let mut b =
        NodeBuilder::new("ack").attr("id", attr(node, "id").unwrap_or_default()).attr("class", node.tag.to_string());
    if let Some(to) = jid_attr(node, "to") {
        b = b.attr("from", to);
    }
    if let Some(kind) = attr(node, "type") {
        b = b.attr("type", kind);
    }
    b.attr("t", now_secs().to_string()).build()
}

/// The sender's device address in the same addressing domain (PN or LID) as
/// the address it wrote to.
fn sender_address(st: &State, phone: &str, device: u16, lid_domain: bool) -> (Jid, Jid) {
    let acc = &st.accounts[phone];
    let pn = Jid::pn_device(acc.phone_number.as_str(), device);
    let lid = Jid::lid_device(acc.lid.as_str(), device);
    if lid_domain { (lid, pn) } else { (pn, lid) }
}

/// Copies the payload-bearing attributes of a client's `<message>`.
fn copy_message_attrs(from: &Node, mut b: NodeBuilder) -> NodeBuilder {
    for key in ["id", "type", "edit", "category", "addressing_mode"] {
        if let Some(v) = attr(from, key) {
            b = b.attr(key, v);
        }
    }
    b
}

/// The top-level children every recipient gets (everything but the per-device
/// `<participants>` and the group-wide `<enc>`, which are handled separately).
fn shared_children(msg: &Node) -> Vec<Node> {
    msg.children().unwrap_or(&[]).iter().filter(|c| c.tag != "participants" && c.tag != "enc").cloned().collect()
}

/// Per-device ciphertexts: `<participants><to jid=…><enc/>…</to>…</participants>`.
fn per_device(msg: &Node) -> Vec<(Jid, Vec<Node>)> {
    child(msg, "participants")
        .map(|p| {
            children(p, "to")
                .filter_map(|to| Some((jid_attr(to, "jid")?, to.children().unwrap_or(&[]).to_vec())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn message(sim: &Sim, phone: &str, device: u16, conn: &ConnHandle, msg: &Node) {
    let Some(to) = jid_attr(msg, "to") else {
        conn.send(server_ack(msg));
        return;
    };
    let mut st = sim.state();
    if to.server == Server::Group {
        group_message(sim, &mut st, phone, device, &to, msg);
    } else {
        direct_message(sim, &mut st, phone, device, &to, msg);
    }
    drop(st);
    conn.send(server_ack(msg));
}

fn direct_message(sim: &Sim, st: &mut State, phone: &str, device: u16, to: &Jid, msg: &Node) {
    let push_name = st.accounts[phone].push_name.clone();
    let shared = shared_children(msg);
    let chat = to.to_non_ad();
    for (target, encs) in per_device(msg) {
        let Some(target_phone) = st.phone_of(&target) else {
            log::debug!("wa-sim: dropping a ciphertext for unknown {target}");
            continue;
        };
        if target_phone == phone && target.device == device {
            continue;
        }
        let lid_domain = target.server == Server::Lid;
        let (from, alt) = sender_address(st, phone, device, lid_domain);
        let mut b = copy_message_attrs(msg, NodeBuilder::new("message"))
            .attr("from", from)
            .attr("t", now_secs().to_string())
            .attr(if lid_domain { "sender_pn" } else { "sender_lid" }, alt.to_non_ad());
        if !push_name.is_empty() {
            b = b.attr("notify", push_name.clone());
        }
        if target_phone == phone {
            // A copy for the sender's own other devices names the chat.
            b = b.attr("recipient", chat.clone());
        }
        let mut kids = encs;
        kids.extend(shared.iter().cloned());
        sim.deliver(st, &target_phone, target.device, b.children(kids).build());
    }
}

fn group_message(sim: &Sim, st: &mut State, phone: &str, device: u16, group: &Jid, msg: &Node) {
    let Some(g) = st.groups.get(group.user.as_str()).cloned() else {
        log::debug!("wa-sim: message to unknown group {group}");
        return;
    };
    if !g.members.contains_key(phone) {
        log::debug!("wa-sim: {phone} is not in {group}");
        return;
    }
    let push_name = st.accounts[phone].push_name.clone();
    let shared = shared_children(msg);
    let group_enc: Vec<Node> = children(msg, "enc").cloned().collect();
    let direct = per_device(msg);
    let (participant, participant_lid) = sender_address(st, phone, device, false);
    for member in g.members.keys() {
        for target_device in st.device_ids(member) {
            if member == phone && target_device == device {
                continue;
            }
            let mut kids: Vec<Node> = direct
                .iter()
                .filter(|(jid, _)| st.phone_of(jid).as_deref() == Some(member) && jid.device == target_device)
                .flat_map(|(_, encs)| encs.iter().cloned())
                .collect();
            kids.extend(group_enc.iter().cloned());
            if kids.is_empty() {
                continue;
            }
            kids.extend(shared.iter().cloned());
            let mut b = copy_message_attrs(msg, NodeBuilder::new("message"))
                .attr("from", group.clone())
                .attr("participant", participant.clone())
                .attr("participant_lid", participant_lid.clone())
                .attr("addressing_mode", "pn")
                .attr("t", now_secs().to_string());
            if !push_name.is_empty() {
                b = b.attr("notify", push_name.clone());
            }
            sim.deliver(st, member, target_device, b.children(kids).build());
        }
    }
}

/// Delivery, read and other receipts travel back to the devices of the
/// account they are addressed to.
pub fn receipt(sim: &Sim, phone: &str, device: u16, conn: &ConnHandle, rcpt: &Node) {
    conn.send(server_ack(rcpt));
    let Some(to) = jid_attr(rcpt, "to") else { return };
    // A receipt for messages the device received (delivery, `inactive`,
    // `sender`, `peer_msg`, read…) also acks them; a retry receipt asks for
    // the message again and comes with a transport `<ack>` of its own.
    if !matches!(attr(rcpt, "type").as_deref(), Some("retry" | "enc_rekey_retry")) {
        let mut ids: Vec<String> = attr(rcpt, "id").into_iter().collect();
        if let Some(list) = child(rcpt, "list") {
            ids.extend(children(list, "item").filter_map(|item| attr(item, "id")));
        }
        sim.acked(phone, device, &ids, Some(&to), jid_attr(rcpt, "participant").as_ref());
    }
    let mut st = sim.state();
    // `read-self` (read receipts turned off) stays within the reader's own devices.
    let own_only = attr(rcpt, "type").as_deref() == Some("read-self");
    // In a group the receipt goes to the message's author.
    let target = if own_only {
        Some(Jid::pn(phone))
    } else if to.server == Server::Group {
        jid_attr(rcpt, "participant")
    } else {
        Some(to.clone())
    };
    let Some(target) = target else { return };
    let Some(target_phone) = st.phone_of(&target) else { return };
    let lid_domain = target.server == Server::Lid;
    let (from, _) = sender_address(&st, phone, device, lid_domain);
    let mut b = NodeBuilder::new("receipt").attr("t", now_secs().to_string());
    for key in ["id", "type"] {
        if let Some(v) = attr(rcpt, key) {
            b = b.attr(key, v);
        }
    }
    if to.server == Server::Group {
        b = b.attr("from", to.clone()).attr("participant", from);
    } else {
        b = b.attr("from", from);
        if target_phone == phone
            && let Some(r) = jid_attr(rcpt, "recipient")
        {
            b = b.attr("recipient", r);
        }
    }
    let node = match &rcpt.content {
        Some(NodeContent::Nodes(kids)) => b.children(kids.clone()).build(),
        _ => b.build(),
    };
    for target_device in st.device_ids(&target_phone) {
        if target_phone == phone && target_device == device {
            continue;
        }
        sim.deliver(&mut st, &target_phone, target_device, node.clone());
    }
}
