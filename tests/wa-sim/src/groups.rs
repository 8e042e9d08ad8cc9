//! Groups: the `w:g2` IQs (create, metadata, invite link, invite info, join by
//! code) and the bookkeeping behind them.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};

use crate::GroupInfo;
use crate::sim::Sim;
use crate::stanza::{self, attr, child, children, iq_error, iq_result, jid_attr, now_secs};
use crate::state::{Group, State};

fn new_invite_code() -> String {
    let a: u64 = rand::random();
    let b: u64 = rand::random();
    format!("{a:016x}{b:06x}").chars().take(22).collect()
}

fn group_id(group: &str) -> &str {
    group.split('@').next().unwrap_or(group)
}

pub fn create(sim: &Sim, creator: &str, subject: &str, members: &[String]) -> anyhow::Result<String> {
    let mut st = sim.state();
    create_locked(&mut st, creator, subject, members)
}

fn create_locked(st: &mut State, creator: &str, subject: &str, members: &[String]) -> anyhow::Result<String> {
    if !st.accounts.contains_key(creator) {
        bail!("no account {creator}");
    }
    for m in members {
        if !st.accounts.contains_key(m) {
            bail!("no account {m}");
        }
    }
    st.next_group += 1;
    let id = st.next_group.to_string();
    let mut map = BTreeMap::new();
    map.insert(creator.to_string(), true);
    for m in members {
        map.entry(m.clone()).or_insert(false);
    }
    st.groups.insert(
        id.clone(),
        Group {
            id: id.clone(),
            subject: subject.to_string(),
            creator: creator.to_string(),
            created: now_secs(),
            members: map,
            invite_code: new_invite_code(),
        },
    );
    Ok(id)
}

pub fn info(sim: &Sim, group: &str) -> anyhow::Result<GroupInfo> {
    let st = sim.peek();
    let g = st.groups.get(group_id(group)).ok_or_else(|| anyhow!("no group {group}"))?;
    Ok(GroupInfo {
        jid: g.jid().to_string(),
        subject: g.subject.clone(),
        members: g.members.keys().cloned().collect(),
        invite_code: g.invite_code.clone(),
        invite_link: format!("https://chat.whatsapp.com/{}", g.invite_code),
    })
}

/// `<group>` as metadata queries and creation answer it.
fn group_node(st: &State, g: &Group) -> Node {
    let participants = g.members.iter().map(|(phone, admin)| {
        let mut b = NodeBuilder::new("participant").attr("jid", Jid::pn(phone.as_str()));
        if let Some(acc) = st.accounts.get(phone) {
            b = b.attr("lid", acc.lid_jid());
        }
        if *admin {
            b = b.attr("type", if *phone == g.creator { "superadmin" } else { "admin" });
        }
        b.build()
    });
    NodeBuilder::new("group")
        .attr("id", g.id.clone())
        .attr("subject", g.subject.clone())
        .attr("s_t", g.created.to_string())
        .attr("s_o", Jid::pn(g.creator.as_str()))
        .attr("creation", g.created.to_string())
        .attr("creator", Jid::pn(g.creator.as_str()))
        .attr("addressing_mode", "pn")
        .attr("size", g.members.len().to_string())
        .children(participants)
        .build()
}

/// `<notification type="w:gp2">` telling members about a change.
fn notify_members(sim: &Sim, st: &mut State, g: &Group, author: &str, change: Node) {
    let node = NodeBuilder::new("notification")
        .attr("from", g.jid())
        .attr("type", "w:gp2")
        .attr("id", stanza::random_id())
        .attr("participant", Jid::pn(author))
        .attr("t", now_secs().to_string())
        .children([change])
        .build();
    let members: Vec<String> = g.members.keys().cloned().collect();
    for m in members {
        for d in st.device_ids(&m) {
            if d != 0 {
                sim.deliver(st, &m, d, node.clone());
            }
        }
    }
}

pub fn iq(sim: &Sim, phone: &str, _device: u16, req: &Node) -> Node {
    let mut st = sim.state();
    let to = jid_attr(req, "to");
    let group = to.as_ref().filter(|j| j.server == Server::Group).map(|j| j.user.to_string());
    let kids = req.children().unwrap_or(&[]);
    let Some(op) = kids.first() else {
        return iq_error(req, 400, "bad-request");
    };
    match op.tag.as_ref() {
        "create" => {
            let subject = attr(op, "subject").unwrap_or_default();
            let members: Vec<String> = children(op, "participant")
                .filter_map(|p| jid_attr(p, "jid"))
                .filter_map(|j| st.phone_of(&j))
                .collect();
            match create_locked(&mut st, phone, &subject, &members) {
                Ok(id) => {
                    let g = st.groups[&id].clone();
                    let node = group_node(&st, &g);
                    let create = NodeBuilder::new("create").attr("type", "new").children([node.clone()]).build();
                    notify_members(sim, &mut st, &g, phone, create);
                    iq_result(req, vec![node])
                }
                Err(e) => iq_error(req, 400, &format!("{e:#}")),
            }
        }
        "query" => match group.as_deref().and_then(|id| st.groups.get(id)) {
            Some(g) if g.members.contains_key(phone) => iq_result(req, vec![group_node(&st, g)]),
            Some(_) => iq_error(req, 403, "forbidden"),
            None => iq_error(req, 404, "item-not-found"),
        },
        "participating" => {
            let groups: Vec<Node> =
                st.groups.values().filter(|g| g.members.contains_key(phone)).map(|g| group_node(&st, g)).collect();
            iq_result(req, vec![NodeBuilder::new("groups").children(groups).build()])
        }
        "invite" => {
            // With a code: invite info (get) or join (set). Without: the group's link.
            if let Some(code) = attr(op, "code") {
                let Some(g) = st.groups.values().find(|g| g.invite_code == code).cloned() else {
                    return iq_error(req, 404, "item-not-found");
                };
                if attr(req, "type").as_deref() == Some("set") {
                    if !g.members.contains_key(phone) {
                        st.groups.get_mut(&g.id).expect("found above").members.insert(phone.to_string(), false);
                        let add = NodeBuilder::new("add")
                            .attr("reason", "invite")
                            .children([NodeBuilder::new("participant").attr("jid", Jid::pn(phone)).build()])
                            .build();
                        let g = st.groups[&g.id].clone();
                        notify_members(sim, &mut st, &g, phone, add);
                    }
                    return iq_result(req, vec![NodeBuilder::new("group").attr("jid", g.jid()).build()]);
                }
                return iq_result(req, vec![group_node(&st, &g)]);
            }
            match group.as_deref().and_then(|id| st.groups.get(id)) {
                Some(g) if g.members.contains_key(phone) => {
                    iq_result(req, vec![NodeBuilder::new("invite").attr("code", g.invite_code.clone()).build()])
                }
                Some(_) => iq_error(req, 403, "forbidden"),
                None => iq_error(req, 404, "item-not-found"),
            }
        }
        "leave" => {
            for g in children(op, "group").filter_map(|n| jid_attr(n, "id")) {
                if let Some(group) = st.groups.get_mut(g.user.as_str()) {
                    group.members.remove(phone);
                }
            }
            iq_result(req, Vec::new())
        }
        other => {
            log::debug!("wa-sim: unsupported group operation <{other}>");
            let _ = child(op, "");
            iq_error(req, 501, "feature-not-implemented")
        }
    }
}
