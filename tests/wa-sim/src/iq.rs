//! `<iq>` requests from logged-in devices, by namespace.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, Server};

use crate::sim::Sim;
use crate::stanza::{attr, bytes, child, children, iq_error, iq_result, jid_attr};
use crate::state::{ConnHandle, SignedPreKey, State};

/// Answers one IQ. `None` when the answer was already sent (or none is due).
pub fn handle(sim: &Sim, phone: &str, device: u16, conn: &ConnHandle, req: &Node) -> Option<Node> {
    let xmlns = attr(req, "xmlns").unwrap_or_default();
    match xmlns.as_str() {
        "passive" => {
            conn.send(iq_result(req, Vec::new()));
            if child(req, "active").is_some() {
                sim.flush_offline(phone, device, conn);
            }
            None
        }
        "encrypt" => Some(encrypt(sim, phone, device, req)),
        "usync" => Some(usync(sim, phone, req)),
        "w:sync:app:state" => Some(app_state(req)),
        "w:g2" => Some(crate::groups::iq(sim, phone, device, req)),
        "w:m" => Some(media_conn(sim, req)),
        "blocklist" => Some(iq_result(req, vec![NodeBuilder::new("list").build()])),
        "privacy" => Some(iq_result(req, vec![privacy()])),
        "md" => match child(req, "remove-companion-device").and_then(|r| jid_attr(r, "jid")) {
            Some(jid) => {
                let own = sim.state().phone_of(&jid).is_some_and(|p| p == phone) && jid.device == device;
                if !own {
                    // Only the phone may unlink other devices; a companion logs out itself.
                    return Some(iq_error(req, 403, "forbidden"));
                }
                sim.logout(phone, device, conn, req);
                None
            }
            None => Some(iq_result(req, Vec::new())),
        },
        "status" => Some(set_about(sim, phone, req)),
        "w:profile:picture" => Some(picture(sim, phone, req)),
        "w" | "abt" if child(req, "props").is_some() => Some(iq_result(
            req,
            vec![
                NodeBuilder::new("props").attr("protocol", "1").attr("hash", "wa-sim").attr("refresh", "86400").build(),
            ],
        )),
        _ => {
            log::debug!("wa-sim: default answer to {}", crate::stanza::brief(req));
            Some(iq_result(req, Vec::new()))
        }
    }
}

// ---- pre-keys -----------------------------------------------------------

fn u32_be(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

fn key32(node: Option<&Node>) -> Option<[u8; 32]> {
    node.and_then(bytes).and_then(|b| b.try_into().ok())
}

fn encrypt(sim: &Sim, phone: &str, device: u16, req: &Node) -> Node {
    let mut st = sim.state();
    if child(req, "count").is_some() {
        let count = st.accounts.get(phone).and_then(|a| a.companions.get(&device)).map_or(0, |c| c.pre_keys.len());
        return iq_result(req, vec![NodeBuilder::new("count").attr("value", count.to_string()).build()]);
    }
    if let Some(key) = child(req, "key") {
        let users: Vec<Node> =
            children(key, "user").filter_map(|u| jid_attr(u, "jid")).map(|jid| bundle_for(&mut st, &jid)).collect();
        return iq_result(req, vec![NodeBuilder::new("list").children(users).build()]);
    }
    if child(req, "digest").is_some() {
        // The key-bundle digest is not computed; the client treats 503 as "try later".
        return iq_error(req, 503, "service-unavailable");
    }
    if let Some(rotate) = child(req, "rotate") {
        if let Some(skey) = child(rotate, "skey")
            && let Some(comp) = st.accounts.get_mut(phone).and_then(|a| a.companions.get_mut(&device))
            && let Some(parsed) = signed_pre_key(skey)
        {
            comp.signed_pre_key = parsed;
        }
        return iq_result(req, Vec::new());
    }
    // Upload: <registration/><type/><identity/><list><key/>…</list><skey/>
    let Some(comp) = st.accounts.get_mut(phone).and_then(|a| a.companions.get_mut(&device)) else {
        return iq_error(req, 404, "item-not-found");
    };
    if let Some(reg) = child(req, "registration").and_then(bytes) {
        comp.registration_id = u32_be(reg);
    }
    if let Some(identity) = key32(child(req, "identity")) {
        comp.identity_pub = identity;
    }
    if let Some(list) = child(req, "list") {
        for key in children(list, "key") {
            if let (Some(id), Some(value)) = (child(key, "id").and_then(bytes), key32(child(key, "value"))) {
                comp.pre_keys.insert(u32_be(id), value);
            }
        }
    }
    if let Some(skey) = child(req, "skey").and_then(signed_pre_key) {
        comp.signed_pre_key = skey;
    }
    iq_result(req, Vec::new())
}

fn signed_pre_key(skey: &Node) -> Option<SignedPreKey> {
    Some(SignedPreKey {
        id: u32_be(child(skey, "id").and_then(bytes)?),
        public: key32(child(skey, "value"))?,
        signature: child(skey, "signature").and_then(bytes)?.to_vec(),
    })
}

/// One `<user>` of a pre-key fetch answer: the device's bundle, taking one
/// one-time pre-key if any is left.
fn bundle_for(st: &mut State, jid: &Jid) -> Node {
    let user = NodeBuilder::new("user").attr("jid", jid.clone());
    let not_found = |user: NodeBuilder| {
        user.children([NodeBuilder::new("error").attr("code", "404").attr("text", "item-not-found").build()]).build()
    };
    let Some(phone) = st.phone_of(jid) else {
        return not_found(user);
    };
    let Some(acc) = st.accounts.get_mut(&phone) else {
        return not_found(user);
    };
    let (registration_id, identity, skey, one_time, device_identity) = if jid.device == 0 {
        let p = &mut acc.phone;
        let one_time = if p.pre_keys.is_empty() { None } else { Some(p.pre_keys.remove(0)) };
        (
            p.registration_id,
            p.identity_pub(),
            SignedPreKey {
                id: p.signed_pre_key_id,
                public: crate::phone::pub_bytes(&p.signed_pre_key),
                signature: p.signed_pre_key_signature.clone(),
            },
            one_time,
            None,
        )
    } else {
        let Some(comp) = acc.companions.get_mut(&jid.device).filter(|c| c.adv_identity.is_some()) else {
            return not_found(user);
        };
        let one_time = comp.pre_keys.pop_first();
        (comp.registration_id, comp.identity_pub, comp.signed_pre_key.clone(), one_time, comp.adv_identity.clone())
    };
    let id3 = |id: u32| id.to_be_bytes()[1..].to_vec();
    let mut kids = vec![
        NodeBuilder::new("registration").bytes(registration_id.to_be_bytes().to_vec()).build(),
        NodeBuilder::new("type").bytes(vec![5u8]).build(),
        NodeBuilder::new("identity").bytes(identity.to_vec()).build(),
        NodeBuilder::new("skey")
            .children([
                NodeBuilder::new("id").bytes(id3(skey.id)).build(),
                NodeBuilder::new("value").bytes(skey.public.to_vec()).build(),
                NodeBuilder::new("signature").bytes(skey.signature).build(),
            ])
            .build(),
    ];
    if let Some((id, public)) = one_time {
        kids.push(
            NodeBuilder::new("key")
                .children([
                    NodeBuilder::new("id").bytes(id3(id)).build(),
                    NodeBuilder::new("value").bytes(public.to_vec()).build(),
                ])
                .build(),
        );
    }
    if let Some(di) = device_identity {
        kids.push(NodeBuilder::new("device-identity").bytes(di).build());
    }
    user.children(kids).build()
}

// ---- usync ----------------------------------------------------------------

fn usync(sim: &Sim, asker: &str, req: &Node) -> Node {
    let Some(usync) = child(req, "usync") else {
        return iq_error(req, 400, "bad-request");
    };
    let protocols: Vec<String> =
        child(usync, "query").and_then(Node::children).unwrap_or(&[]).iter().map(|n| n.tag.to_string()).collect();
    let mut st = sim.state();
    let listed = child(usync, "list").map(|l| children(l, "user").collect::<Vec<_>>()).unwrap_or_default();
    if protocols.iter().any(|p| p == "contact") {
        st.contact_queries.entry(asker.to_owned()).or_default().push(listed.len());
    }
    let mut users = Vec::new();
    for user in listed {
        // Either a jid, or a phone number under <contact>.
        let contact = child(user, "contact").and_then(bytes).map(|b| String::from_utf8_lossy(b).to_string());
        let jid = jid_attr(user, "jid")
            .or_else(|| contact.as_deref().map(|c| Jid::pn(c.trim_start_matches('+').to_string())));
        let Some(jid) = jid else { continue };
        let phone = st.phone_of(&jid);
        let mut kids = Vec::new();
        for p in &protocols {
            match p.as_str() {
                "devices" => {
                    let devices = phone.as_deref().map(|p| st.device_ids(p)).unwrap_or_default();
                    let acc = phone.as_deref().and_then(|p| st.accounts.get(p));
                    let list = devices.iter().map(|d| {
                        let mut b = NodeBuilder::new("device").attr("id", d.to_string());
                        if *d != 0
                            && let Some(c) = acc.and_then(|a| a.companions.get(d))
                        {
                            b = b.attr("key-index", c.key_index.to_string());
                        }
                        b.build()
                    });
                    let mut devices_kids = vec![NodeBuilder::new("device-list").children(list).build()];
                    if let Some(acc) = acc {
                        let valid: Vec<u32> = devices
                            .iter()
                            .filter(|d| **d != 0)
                            .filter_map(|d| acc.companions.get(d).map(|c| c.key_index))
                            .collect();
                        let ts = acc.created;
                        devices_kids.push(
                            NodeBuilder::new("key-index-list")
                                .attr("ts", ts.to_string())
                                .bytes(acc.phone.key_index_list(valid, ts))
                                .build(),
                        );
                    }
                    kids.push(NodeBuilder::new("devices").children(devices_kids).build());
                }
                "lid" => {
                    let mut b = NodeBuilder::new("lid");
                    if let Some(acc) = phone.as_deref().and_then(|p| st.accounts.get(p)) {
                        b = b.attr("val", acc.lid_jid());
                    }
                    kids.push(b.build());
                }
                "contact" => {
                    let kind = if phone.is_some() { "in" } else { "out" };
                    let mut b = NodeBuilder::new("contact").attr("type", kind);
                    if let Some(c) = &contact {
                        b = b.string_content(c.as_str());
                    }
                    kids.push(b.build());
                }
                "status" => {
                    let about = phone.as_deref().and_then(|p| st.accounts.get(p)).and_then(|a| a.about.clone());
                    let status = NodeBuilder::new("status").attr("t", crate::stanza::now_secs().to_string());
                    kids.push(match about {
                        Some(about) => status.string_content(about).build(),
                        None => status.build(),
                    });
                }
                // Present for a business account only, as whatsapp-rust reads it.
                "business" if phone.as_ref().is_some_and(|p| st.business.contains(p)) => {
                    kids.push(NodeBuilder::new("business").build())
                }
                _ => {}
            }
        }
        let user_jid = match (&phone, jid.server) {
            (Some(p), Server::Pn) => Jid::pn(p.as_str()),
            _ => jid.to_non_ad(),
        };
        users.push(NodeBuilder::new("user").attr("jid", user_jid).children(kids).build());
    }
    let mut usync_out = NodeBuilder::new("usync");
    for key in ["sid", "index", "last", "mode", "context"] {
        if let Some(v) = attr(usync, key) {
            usync_out = usync_out.attr(key, v);
        }
    }
    iq_result(req, vec![usync_out.children([NodeBuilder::new("list").children(users).build()]).build()])
}

// ---- profile -----------------------------------------------------------------

/// `<iq xmlns="status" type="set"><status>text</status></iq>`: the account's About.
fn set_about(sim: &Sim, phone: &str, req: &Node) -> Node {
    let text = child(req, "status").and_then(bytes).map(|b| String::from_utf8_lossy(b).to_string());
    if let Some(account) = sim.state().accounts.get_mut(phone) {
        account.about = text.filter(|t| !t.is_empty());
    }
    iq_result(req, Vec::new())
}

/// `w:profile:picture`: a `get` of `target`'s picture (its URL on the media host, or
/// 404), or a `set` of the asker's own (a `<picture>` with the bytes; none removes it).
/// A group's picture (`target` a group) is the group's business: members are told.
fn picture(sim: &Sim, phone: &str, req: &Node) -> Node {
    // whatsapp-rust names the group in `target` (`to` is the server); a `to` naming it is taken too.
    let group =
        [jid_attr(req, "target"), jid_attr(req, "to")].into_iter().flatten().find(|j| j.server == Server::Group);
    if let Some(group) = group {
        return crate::groups::picture(sim, phone, req, group.user.as_str());
    }
    let mut st = sim.state();
    if attr(req, "type").as_deref() == Some("set") {
        let (id, stored) = take_picture(&mut st, phone, req);
        if let Some(account) = st.accounts.get_mut(phone) {
            account.picture = stored;
        }
        return iq_result(req, vec![NodeBuilder::new("picture").attr("id", id).build()]);
    }
    let target = jid_attr(req, "target").and_then(|t| st.phone_of(&t));
    let found = target.and_then(|t| st.accounts.get(&t)).and_then(|a| a.picture.clone());
    picture_answer(sim, req, found)
}

/// The picture a `set` carries (a `<picture>` with the bytes; none removes it), kept on
/// the media host under `owner` (an account's phone or a group's id): its new id, and
/// `(id, path)` unless it was a removal.
pub fn take_picture(st: &mut State, owner: &str, req: &Node) -> (String, Option<(String, String)>) {
    let data = child(req, "picture").and_then(bytes).map(<[u8]>::to_vec);
    let id = crate::stanza::now_secs().to_string() + &crate::stanza::random_id()[..6];
    let stored = data.map(|data| {
        let path = format!("/pp/{owner}/{id}");
        st.media.insert(path.clone(), data);
        (id.clone(), path)
    });
    (id, stored)
}

/// The answer to a `get` of a picture: its URL on the media host, or 404 without one.
pub fn picture_answer(sim: &Sim, req: &Node, found: Option<(String, String)>) -> Node {
    let Some((id, path)) = found else {
        let error = NodeBuilder::new("error").attr("code", "404").attr("text", "item-not-found").build();
        return iq_result(req, vec![NodeBuilder::new("picture").children([error]).build()]);
    };
    let host = sim.media_host.get().cloned().unwrap_or_default();
    let picture = NodeBuilder::new("picture")
        .attr("id", id)
        .attr("url", format!("https://{host}{path}"))
        .attr("direct_path", path)
        .build();
    iq_result(req, vec![picture])
}

// ---- app state --------------------------------------------------------------

/// Every collection exists and is empty: nothing to sync, nothing to decrypt.
fn app_state(req: &Node) -> Node {
    let collections: Vec<Node> = child(req, "sync")
        .map(|s| children(s, "collection").collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| attr(c, "name"))
        .map(|name| {
            NodeBuilder::new("collection")
                .attr("name", name)
                .attr("version", "0")
                .attr("has_more_patches", "false")
                .build()
        })
        .collect();
    iq_result(req, vec![NodeBuilder::new("sync").children(collections).build()])
}

// ---- media ------------------------------------------------------------------

fn media_conn(sim: &Sim, req: &Node) -> Node {
    let host = sim.media_host.get().cloned().unwrap_or_default();
    iq_result(
        req,
        vec![
            NodeBuilder::new("media_conn")
                .attr("auth", "wa-sim")
                .attr("ttl", "3600")
                .attr("auth_ttl", "3600")
                .attr("max_buckets", "1")
                .children([NodeBuilder::new("host").attr("hostname", host).build()])
                .build(),
        ],
    )
}

/// An account's privacy settings as a new account has them: read receipts on, so a
/// client that honours the setting sends `read`, not `read-self`.
fn privacy() -> Node {
    let settings = [
        ("last", "all"),
        ("online", "all"),
        ("profile", "all"),
        ("status", "contacts"),
        ("groupadd", "all"),
        ("readreceipts", "all"),
        ("calladd", "all"),
        ("messages", "all"),
    ];
    let categories =
        settings.map(|(name, value)| NodeBuilder::new("category").attr("name", name).attr("value", value).build());
    NodeBuilder::new("privacy").children(categories.to_vec()).build()
}
