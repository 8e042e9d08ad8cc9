//! Groups: the `w:g2` IQs (create, metadata, invite link, invite info, join by
//! code, leave, and administration: subject, description, participants and
//! admins, settings, invite reset), group pictures, and the notifications that
//! tell members of every change.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};

use crate::GroupInfo;
use crate::sim::Sim;
use crate::stanza::{self, attr, bytes, child, children, iq_error, iq_result, jid_attr, now_secs};
use crate::state::{Description, Group, State};

fn new_invite_code() -> String {
    let a: u64 = rand::random();
    let b: u64 = rand::random();
    format!("{a:016x}{b:06x}").chars().take(22).collect()
}

fn group_id(group: &str) -> &str {
    group.split('@').next().unwrap_or(group)
}

fn text(node: &Node) -> Option<String> {
    bytes(node).map(|b| String::from_utf8_lossy(b).into_owned())
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
    let created = now_secs();
    st.groups.insert(
        id.clone(),
        Group {
            id: id.clone(),
            subject: subject.to_string(),
            subject_by: creator.to_string(),
            subject_at: created,
            creator: creator.to_string(),
            created,
            members: map,
            invite_code: new_invite_code(),
            revoked_invites: Vec::new(),
            description: None,
            locked: false,
            announce: false,
            picture: None,
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
        admins: g.members.iter().filter(|(_, admin)| **admin).map(|(phone, _)| phone.clone()).collect(),
        description: g.description.as_ref().map(|d| d.text.clone()),
        announce: g.announce,
        locked: g.locked,
        has_picture: g.picture.is_some(),
        invite_code: g.invite_code.clone(),
        invite_link: format!("https://chat.whatsapp.com/{}", g.invite_code),
    })
}

/// `<participant jid lid [type]>`: an account as group metadata and notifications
/// name it, with its role in `g` (none if it is not, or no longer, a member).
fn participant_node(st: &State, g: &Group, phone: &str) -> Node {
    let mut b = NodeBuilder::new("participant").attr("jid", Jid::pn(phone));
    if let Some(acc) = st.accounts.get(phone) {
        b = b.attr("lid", acc.lid_jid());
    }
    if g.members.get(phone) == Some(&true) {
        b = b.attr("type", if phone == g.creator { "superadmin" } else { "admin" });
    }
    b.build()
}

/// `<group>` as metadata queries and creation answer it.
fn group_node(st: &State, g: &Group) -> Node {
    let mut kids: Vec<Node> = g.members.keys().map(|phone| participant_node(st, g, phone)).collect();
    if let Some(d) = &g.description {
        kids.push(
            NodeBuilder::new("description")
                .attr("id", d.id.clone())
                .attr("participant", Jid::pn(d.by.as_str()))
                .attr("t", d.at.to_string())
                .children([NodeBuilder::new("body").string_content(d.text.clone()).build()])
                .build(),
        );
    }
    if g.locked {
        kids.push(NodeBuilder::new("locked").build());
    }
    if g.announce {
        kids.push(NodeBuilder::new("announcement").build());
    }
    NodeBuilder::new("group")
        .attr("id", g.id.clone())
        .attr("subject", g.subject.clone())
        .attr("s_t", g.subject_at.to_string())
        .attr("s_o", Jid::pn(g.subject_by.as_str()))
        .attr("creation", g.created.to_string())
        .attr("creator", Jid::pn(g.creator.as_str()))
        .attr("addressing_mode", "pn")
        .attr("size", g.members.len().to_string())
        .children(kids)
        .build()
}

/// Hands `node` to every device of every member of `g` — the author's own
/// included, as the real server does: that is how a linked device learns of a
/// change another device of its account made. The simulated phones (device 0)
/// are left out: they act on no group notification.
fn tell_members(sim: &Sim, st: &mut State, g: &Group, node: Node) {
    let members: Vec<String> = g.members.keys().cloned().collect();
    for m in members {
        for d in st.device_ids(&m) {
            if d != 0 {
                sim.deliver(st, &m, d, node.clone());
            }
        }
    }
}

/// `<notification type="w:gp2">` telling members about a change `author` made.
fn notify_members(sim: &Sim, st: &mut State, g: &Group, author: &str, change: Node) {
    let node = NodeBuilder::new("notification")
        .attr("from", g.jid())
        .attr("type", "w:gp2")
        .attr("id", stanza::random_id())
        .attr("participant", Jid::pn(author))
        .attr("t", now_secs().to_string())
        .children([change])
        .build();
    tell_members(sim, st, g, node);
}

/// Who may make a change to a group.
#[derive(Clone, Copy)]
enum Who {
    Members,
    Admins,
    /// Any member while the group is unlocked, admins once it is locked.
    AdminsIfLocked,
}

/// The group `group`, if `phone` may make a change to it that needs `who`;
/// otherwise the iq error code and text to answer: 404 for an unknown group,
/// 403 for a non-member or a member who is not admin enough.
fn permitted(st: &State, phone: &str, group: Option<&str>, who: Who) -> Result<Group, (u16, &'static str)> {
    let Some(g) = group.and_then(|id| st.groups.get(id)) else {
        return Err((404, "item-not-found"));
    };
    let needs_admin = match who {
        Who::Members => false,
        Who::Admins => true,
        Who::AdminsIfLocked => g.locked,
    };
    match g.members.get(phone) {
        Some(admin) if *admin || !needs_admin => Ok(g.clone()),
        _ => Err((403, "forbidden")),
    }
}

/// A change to a group by a member allowed to make it: `(sim, state, author, iq,
/// the iq's operation, the group as it was)` → the answer.
type Change = fn(&Sim, &mut State, &str, &Node, &Node, Group) -> Node;

pub fn iq(sim: &Sim, phone: &str, _device: u16, req: &Node) -> Node {
    let mut st = sim.state();
    let to = jid_attr(req, "to");
    let group = to.as_ref().filter(|j| j.server == Server::Group).map(|j| j.user.to_string());
    let group = group.as_deref();
    let kids = req.children().unwrap_or(&[]);
    let Some(op) = kids.first() else {
        return iq_error(req, 400, "bad-request");
    };
    let (who, change): (Who, Change) = match op.tag.as_ref() {
        "create" => return create_iq(sim, &mut st, phone, req, op),
        "query" => {
            return match permitted(&st, phone, group, Who::Members) {
                Ok(g) => iq_result(req, vec![group_node(&st, &g)]),
                Err((code, text)) => iq_error(req, code, text),
            };
        }
        "participating" => {
            let groups: Vec<Node> =
                st.groups.values().filter(|g| g.members.contains_key(phone)).map(|g| group_node(&st, g)).collect();
            return iq_result(req, vec![NodeBuilder::new("groups").children(groups).build()]);
        }
        "invite" => return invite(sim, &mut st, phone, req, op, group),
        "leave" => return leave(sim, &mut st, phone, req, op),
        "subject" => (Who::AdminsIfLocked, set_subject),
        "description" => (Who::AdminsIfLocked, set_description),
        "add" | "remove" | "promote" | "demote" => (Who::Admins, change_participants),
        "locked" | "unlocked" | "announcement" | "not_announcement" => (Who::Admins, set_setting),
        other => {
            log::debug!("wa-sim: unsupported group operation <{other}>");
            return iq_error(req, 501, "feature-not-implemented");
        }
    };
    match permitted(&st, phone, group, who) {
        Ok(g) => change(sim, &mut st, phone, req, op, g),
        Err((code, text)) => iq_error(req, code, text),
    }
}

/// `<create subject><participant jid/>…</create>`: a group with the asker as its
/// superadmin; unknown participants are left out.
fn create_iq(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node) -> Node {
    let subject = attr(op, "subject").unwrap_or_default();
    let members: Vec<String> =
        children(op, "participant").filter_map(|p| jid_attr(p, "jid")).filter_map(|j| st.phone_of(&j)).collect();
    match create_locked(st, phone, &subject, &members) {
        Ok(id) => {
            let g = st.groups[&id].clone();
            let node = group_node(st, &g);
            let create = NodeBuilder::new("create").attr("type", "new").children([node.clone()]).build();
            notify_members(sim, st, &g, phone, create);
            iq_result(req, vec![node])
        }
        Err(e) => iq_error(req, 400, &format!("{e:#}")),
    }
}

/// `<invite>`: with a `code`, the group it opens (`get`) or a join by it
/// (`set`); without, the group's own code (`get`, any member) or a new one that
/// voids the old (`set`, admins), which members are told of with `<revoke/>`.
fn invite(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node, group: Option<&str>) -> Node {
    let set = attr(req, "type").as_deref() == Some("set");
    if let Some(code) = attr(op, "code") {
        return by_code(sim, st, phone, req, &code, set);
    }
    let mut g = match permitted(st, phone, group, if set { Who::Admins } else { Who::Members }) {
        Ok(g) => g,
        Err((code, text)) => return iq_error(req, code, text),
    };
    if set {
        let old = std::mem::replace(&mut g.invite_code, new_invite_code());
        g.revoked_invites.push(old);
        st.groups.insert(g.id.clone(), g.clone());
        notify_members(sim, st, &g, phone, NodeBuilder::new("revoke").build());
    }
    iq_result(req, vec![NodeBuilder::new("invite").attr("code", g.invite_code.clone()).build()])
}

/// The group an invite code opens: its metadata, or (`join`) the asker joins it.
fn by_code(sim: &Sim, st: &mut State, phone: &str, req: &Node, code: &str, join: bool) -> Node {
    let Some(mut g) = st.groups.values().find(|g| g.invite_code == code).cloned() else {
        // A code that was reset is "gone" (whatsapp-rust: "invite link was reset").
        if st.groups.values().any(|g| g.revoked_invites.iter().any(|c| c == code)) {
            return iq_error(req, 410, "gone");
        }
        return iq_error(req, 404, "item-not-found");
    };
    if !join {
        return iq_result(req, vec![group_node(st, &g)]);
    }
    if !g.members.contains_key(phone) {
        g.members.insert(phone.to_string(), false);
        st.groups.insert(g.id.clone(), g.clone());
        let add = NodeBuilder::new("add").attr("reason", "invite").children([participant_node(st, &g, phone)]).build();
        notify_members(sim, st, &g, phone, add);
    }
    iq_result(req, vec![NodeBuilder::new("group").attr("jid", g.jid()).build()])
}

/// `<leave><group id/>…</leave>`: the asker leaves each group it is in. The
/// members are told with `<remove reason="leave">` while the leaver still is
/// one, so its other devices learn it left too.
fn leave(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node) -> Node {
    for id in children(op, "group").filter_map(|n| jid_attr(n, "id")) {
        let Some(g) = st.groups.get(id.user.as_str()).filter(|g| g.members.contains_key(phone)).cloned() else {
            continue;
        };
        let mut after = g.clone();
        after.members.remove(phone);
        let remove =
            NodeBuilder::new("remove").attr("reason", "leave").children([participant_node(st, &after, phone)]).build();
        notify_members(sim, st, &g, phone, remove);
        st.groups.insert(after.id.clone(), after);
    }
    iq_result(req, Vec::new())
}

/// `<subject>text</subject>`: the group's new name.
fn set_subject(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node, mut g: Group) -> Node {
    g.subject = text(op).unwrap_or_default();
    g.subject_by = phone.to_string();
    g.subject_at = now_secs();
    st.groups.insert(g.id.clone(), g.clone());
    let change = NodeBuilder::new("subject")
        .attr("subject", g.subject.clone())
        .attr("s_o", Jid::pn(phone))
        .attr("s_t", g.subject_at.to_string())
        .build();
    notify_members(sim, st, &g, phone, change);
    iq_result(req, Vec::new())
}

/// `<description id [prev]><body>text</body></description>`, or `delete="true"`
/// (or no body) to remove it. `prev` must name the current description: a stale
/// one lost a race with another change and gets 409.
fn set_description(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node, mut g: Group) -> Node {
    let Some(id) = attr(op, "id") else {
        return iq_error(req, 400, "bad-request");
    };
    if let Some(current) = &g.description
        && attr(op, "prev").as_deref() != Some(current.id.as_str())
    {
        return iq_error(req, 409, "conflict");
    }
    let deleted = attr(op, "delete").as_deref() == Some("true");
    let body = child(op, "body").and_then(text).filter(|_| !deleted);
    let change = NodeBuilder::new("description").attr("id", id.clone());
    let change = match &body {
        Some(body) => change.children([NodeBuilder::new("body").string_content(body.clone()).build()]),
        None => change.children([NodeBuilder::new("delete").build()]),
    };
    g.description = body.map(|text| Description { id, text, by: phone.to_string(), at: now_secs() });
    st.groups.insert(g.id.clone(), g.clone());
    notify_members(sim, st, &g, phone, change.build());
    iq_result(req, Vec::new())
}

/// Applies one participant change of `action` to `g`; `Err` with the code the
/// server answers for it.
fn apply(g: &mut Group, action: &str, phone: &str) -> Result<(), &'static str> {
    let member = g.members.contains_key(phone);
    match action {
        "add" if member => Err("409"),
        "add" => {
            g.members.insert(phone.to_string(), false);
            Ok(())
        }
        _ if !member => Err("404"),
        "remove" => {
            g.members.remove(phone);
            Ok(())
        }
        _ => {
            g.members.insert(phone.to_string(), action == "promote");
            Ok(())
        }
    }
}

/// `<add|remove|promote|demote>` with `<participant jid>`s, each a PN or a LID.
/// Each is answered on its own, by the JID it was asked by, with `error` where it
/// failed (add: 409 already a member, 404 no such account; the others: 404 not a
/// member); the members are told of those that succeeded, the removed included.
fn change_participants(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node, g: Group) -> Node {
    let action = op.tag.to_string();
    let mut after = g.clone();
    let mut answers = Vec::new();
    let mut done = Vec::new();
    for asked in children(op, "participant").filter_map(|p| jid_attr(p, "jid")) {
        let result = st.phone_of(&asked).ok_or("404").and_then(|p| apply(&mut after, &action, &p).map(|()| p));
        let mut answer = NodeBuilder::new("participant").attr("jid", asked.clone());
        match result {
            // Asked by LID, the number comes along, as whatsapp-rust keeps both.
            Ok(p) if asked.server == Server::Lid => {
                answer = answer.attr("phone_number", Jid::pn(p.as_str()));
                done.push(p);
            }
            Ok(p) => done.push(p),
            Err(code) => answer = answer.attr("error", code),
        }
        answers.push(answer.build());
    }
    if !done.is_empty() {
        let change = NodeBuilder::new_dynamic(action.clone())
            .children(done.iter().map(|p| participant_node(st, &after, p)))
            .build();
        // The removed are told too, before they are out: that is how they learn it.
        let told = if action == "remove" { g } else { after.clone() };
        notify_members(sim, st, &told, phone, change);
        st.groups.insert(after.id.clone(), after);
    }
    iq_result(req, vec![NodeBuilder::new_dynamic(action).children(answers).build()])
}

/// `<locked/>`, `<unlocked/>`, `<announcement/>`, `<not_announcement/>`: members
/// are told with the same tag.
fn set_setting(sim: &Sim, st: &mut State, phone: &str, req: &Node, op: &Node, mut g: Group) -> Node {
    let tag = op.tag.to_string();
    match tag.as_str() {
        "locked" => g.locked = true,
        "unlocked" => g.locked = false,
        "announcement" => g.announce = true,
        _ => g.announce = false,
    }
    st.groups.insert(g.id.clone(), g.clone());
    notify_members(sim, st, &g, phone, NodeBuilder::new_dynamic(tag).build());
    iq_result(req, Vec::new())
}

/// `w:profile:picture` about group `group`: a `get` answers its picture as a
/// user's is answered; a `set` (by whoever may change the subject) replaces it
/// — or removes it, without `<picture>` bytes — and members get a `picture`
/// notification with `<set jid author id/>` or `<delete jid author/>`.
pub fn picture(sim: &Sim, phone: &str, req: &Node, group: &str) -> Node {
    let mut st = sim.state();
    if attr(req, "type").as_deref() != Some("set") {
        let found = st.groups.get(group).and_then(|g| g.picture.clone());
        return crate::iq::picture_answer(sim, req, found);
    }
    let mut g = match permitted(&st, phone, Some(group), Who::AdminsIfLocked) {
        Ok(g) => g,
        Err((code, text)) => return iq_error(req, code, text),
    };
    let (id, stored) = crate::iq::take_picture(&mut st, group, req);
    let change = match stored {
        Some(_) => NodeBuilder::new("set").attr("id", id.clone()),
        None => NodeBuilder::new("delete"),
    };
    let change = change.attr("jid", g.jid()).attr("author", Jid::pn(phone)).build();
    g.picture = stored;
    st.groups.insert(g.id.clone(), g.clone());
    let node = NodeBuilder::new("notification")
        .attr("from", g.jid())
        .attr("type", "picture")
        .attr("id", stanza::random_id())
        .attr("t", now_secs().to_string())
        .children([change])
        .build();
    tell_members(sim, &mut st, &g, node);
    iq_result(req, vec![NodeBuilder::new("picture").attr("id", id).build()])
}
