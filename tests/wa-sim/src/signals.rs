//! `<chatstate>`, `<presence>` and `<call>` signalling: what a device shows besides
//! messages. The simulator relays them only to devices online now (a typing
//! indicator delivered later would be a lie) and never queues them; the real server
//! replays a call offer to a device that comes online while it rings, marked
//! `offline`, which no story needs.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent, Server};

use crate::sim::Sim;
use crate::stanza::{attr, jid_attr, now_secs};
use crate::state::State;

/// Sends `node` to `phone`'s `device` if it is online and has had its backlog;
/// drops it otherwise.
fn relay_live(sim: &Sim, st: &mut State, phone: &str, device: u16, node: Node) {
    let Some(conn) = st.online.get(&(phone.to_owned(), device)).map(|c| c.id) else { return };
    let companion = st.accounts.get(phone).and_then(|a| a.companions.get(&device));
    if companion.is_some_and(|c| c.flushed_on == Some(conn)) {
        sim.deliver(st, phone, device, node);
    }
}

/// `<chatstate to=chat><composing/></chatstate>` from a device: the other side
/// of a direct chat, or every other member of a group, gets it `from` the
/// sender (in a group, `from` the group with the sender as `participant`).
pub fn chatstate(sim: &Sim, phone: &str, device: u16, node: &Node) {
    let Some(to) = jid_attr(node, "to") else { return };
    let mut st = sim.state();
    let Some(sender) = st.accounts.get(phone).map(|a| Jid::pn(a.phone_number.as_str())) else { return };
    let kids = match &node.content {
        Some(NodeContent::Nodes(kids)) => kids.clone(),
        _ => Vec::new(),
    };
    let (recipients, relayed) = if to.server == Server::Group {
        let members: Vec<String> =
            st.groups.get(to.user.as_str()).map(|g| g.members.keys().cloned().collect()).unwrap_or_default();
        let relayed = NodeBuilder::new("chatstate").attr("from", to.clone()).attr("participant", sender);
        (members.into_iter().filter(|m| m != phone).collect::<Vec<_>>(), relayed)
    } else {
        let recipients: Vec<String> = st.phone_of(&to).into_iter().collect();
        (recipients, NodeBuilder::new("chatstate").attr("from", sender))
    };
    let relayed = relayed.children(kids).build();
    for recipient in recipients {
        for target_device in st.device_ids(&recipient) {
            if recipient == phone && target_device == device {
                continue;
            }
            relay_live(sim, &mut st, &recipient, target_device, relayed.clone());
        }
    }
}

/// `<presence type="subscribe" to=…/>` follows an account's presence (and gets
/// the last one it showed at once); `<presence type="available|unavailable"/>`
/// shows the sender's to every device following it.
pub fn presence(sim: &Sim, phone: &str, device: u16, node: &Node) {
    let kind = attr(node, "type").unwrap_or_else(|| "available".into());
    let mut st = sim.state();
    // `<presence name=…/>` without a type renames the account (its push name).
    if let (Some(name), None) = (attr(node, "name"), attr(node, "type")) {
        if let Some(account) = st.accounts.get_mut(phone) {
            account.push_name = name;
        }
        return;
    }
    match kind.as_str() {
        "subscribe" => {
            let Some(target) = jid_attr(node, "to").and_then(|to| st.phone_of(&to)) else { return };
            st.presence_followers.entry(target.clone()).or_default().insert((phone.to_owned(), device));
            if let Some(last) = st.presence.get(&target).cloned() {
                let shown = NodeBuilder::new("presence").attr("from", Jid::pn(target.as_str())).attr("type", last);
                relay_live(sim, &mut st, phone, device, shown.build());
            }
        }
        "unsubscribe" => {
            let Some(target) = jid_attr(node, "to").and_then(|to| st.phone_of(&to)) else { return };
            if let Some(followers) = st.presence_followers.get_mut(&target) {
                followers.remove(&(phone.to_owned(), device));
            }
        }
        "available" | "unavailable" => {
            st.presence.insert(phone.to_owned(), kind.clone());
            let followers: Vec<(String, u16)> =
                st.presence_followers.get(phone).map(|f| f.iter().cloned().collect()).unwrap_or_default();
            let shown = NodeBuilder::new("presence").attr("from", Jid::pn(phone)).attr("type", kind).build();
            for (follower, follower_device) in followers {
                relay_live(sim, &mut st, &follower, follower_device, shown.clone());
            }
        }
        other => log::debug!("wa-sim: ignoring <presence type={other}> from {phone}:{device}"),
    }
}

/// `<call to=peer><offer|reject|terminate …/></call>` from a device: every device of
/// the peer online now gets the action `from` the sender's device, as the real server
/// routes call signalling (the media never passes through it). The caller was acked.
pub fn call(sim: &Sim, phone: &str, device: u16, node: &Node) {
    let Some(to) = jid_attr(node, "to") else { return };
    let mut st = sim.state();
    let Some(peer) = st.phone_of(&to) else { return };
    let Some(account) = st.accounts.get(phone) else { return };
    let from = Jid::pn_device(account.phone_number.as_str(), device);
    let kids = match &node.content {
        Some(NodeContent::Nodes(kids)) => kids.clone(),
        _ => Vec::new(),
    };
    let relayed = NodeBuilder::new("call")
        .attr("from", from)
        .attr("id", attr(node, "id").unwrap_or_default())
        .attr("t", now_secs().to_string())
        .children(kids)
        .build();
    for target_device in st.device_ids(&peer) {
        if peer == phone && target_device == device {
            continue;
        }
        relay_live(sim, &mut st, &peer, target_device, relayed.clone());
    }
}
