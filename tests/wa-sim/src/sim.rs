//! The simulator core: sessions (registration and login), pairing, and the
//! dispatch of client stanzas to the IQ and routing handlers.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{anyhow, bail};
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};
use waproto::whatsapp::ClientPayload;

use crate::noise::ServerIdentity;
use crate::phone::{Phone, QrCode};
use crate::stanza::{self, attr, child, server_jid};
use crate::state::{
    Account, AckKey, AwaitingSign, Companion, ConnHandle, Held, Out, PendingPairing, Received, SignedPreKey, State,
};

/// The locked state; dropping it tells the watchers of [`Sim::changes`].
pub struct StateGuard<'a> {
    guard: MutexGuard<'a, State>,
    changes: &'a tokio::sync::watch::Sender<u64>,
}

impl Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        // Sent while the lock is still held; a woken watcher locks after us.
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[derive(Debug, Clone)]
pub enum Session {
    /// A new device showing QR codes.
    Unpaired,
    /// A linked device that logged in.
    Device { phone: String, device: u16 },
}

pub struct Sim {
    pub identity: ServerIdentity,
    state: Mutex<State>,
    /// Bumped whenever the state may have changed (every [`Sim::state`] lock
    /// released), so a test can wait for a condition without polling.
    changes: tokio::sync::watch::Sender<u64>,
    conn_ids: AtomicU64,
    /// `host:port` of the media HTTP endpoint, set once it is bound.
    pub media_host: OnceLock<String>,
}

impl Sim {
    pub fn new() -> Self {
        Self {
            identity: ServerIdentity::generate(),
            state: Mutex::new(State {
                next_lid: 100_000_000_000_000,
                next_group: 120_363_000_000_000_000,
                ..Default::default()
            }),
            changes: tokio::sync::watch::Sender::new(0),
            conn_ids: AtomicU64::new(1),
            media_host: OnceLock::new(),
        }
    }

    /// The state, to read or change; releasing it wakes [`Self::changes`]'
    /// watchers.
    pub fn state(&self) -> StateGuard<'_> {
        StateGuard { guard: self.peek(), changes: &self.changes }
    }

    /// The state, to read only: releasing it wakes nobody, so a watcher may
    /// read through it without waking itself.
    pub fn peek(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.conn_ids.fetch_add(1, Ordering::Relaxed)
    }

    // ---- accounts and pairing -------------------------------------------

    pub fn create_account(&self, phone_number: &str, push_name: &str) -> anyhow::Result<(String, String)> {
        if phone_number.is_empty() || !phone_number.bytes().all(|b| b.is_ascii_digit()) {
            bail!("a phone number is digits only, without '+': {phone_number:?}");
        }
        let mut st = self.state();
        if let Some(acc) = st.accounts.get(phone_number) {
            return Ok((acc.phone_number.clone(), acc.lid.clone()));
        }
        st.next_lid += 1;
        let lid = st.next_lid.to_string();
        st.lid_to_phone.insert(lid.clone(), phone_number.to_string());
        st.accounts.insert(
            phone_number.to_string(),
            Account {
                phone_number: phone_number.to_string(),
                lid: lid.clone(),
                push_name: push_name.to_string(),
                phone: Phone::generate(),
                companions: BTreeMap::new(),
                next_device: 1,
                about: None,
                picture: None,
                created: stanza::now_secs(),
                received: Vec::new(),
            },
        );
        Ok((phone_number.to_string(), lid))
    }

    /// The phone of `phone_number` scans `qr`: the waiting device is linked
    /// as a new companion and receives `<pair-success>`.
    /// `phone_number` is a WhatsApp Business account from now on.
    pub fn make_business(&self, phone_number: &str) {
        self.state().business.insert(phone_number.to_owned());
    }

    /// How many numbers each "who is on WhatsApp" query of `phone_number`'s devices
    /// asked about, oldest first.
    pub fn contact_queries(&self, phone_number: &str) -> Vec<usize> {
        self.state().contact_queries.get(phone_number).cloned().unwrap_or_default()
    }

    pub fn scan_qr(&self, phone_number: &str, qr: &str) -> anyhow::Result<Jid> {
        let qr: QrCode = qr.parse()?;
        let mut st = self.state();
        let pending = st
            .pending_pairings
            .remove(&qr.pairing_ref)
            .ok_or_else(|| anyhow!("no device is showing the QR ref {:?}", qr.pairing_ref))?;
        if pending.noise_pub != qr.noise_pub || pending.identity_pub != qr.identity_pub {
            bail!("the QR code's keys are not those of the device that was given its ref");
        }
        self.link(&mut st, phone_number, pending, &qr.adv_secret)
    }

    /// The phone links the device waiting on `pending`'s connection, having
    /// learnt its ADV secret (from a QR code or a pair-code key exchange): the
    /// companion's identity is signed and sent in `<pair-success>`; the device
    /// is listed once it countersigns (`pair-device-sign`).
    pub fn link(
        &self,
        st: &mut State,
        phone_number: &str,
        pending: PendingPairing,
        adv_secret: &[u8],
    ) -> anyhow::Result<Jid> {
        // Every ref the device was given is spent, whichever way it links.
        let conn_id = pending.conn.id;
        st.pending_pairings.retain(|_, p| p.conn.id != conn_id);

        let acc =
            st.accounts.get_mut(phone_number).ok_or_else(|| anyhow!("no account {phone_number}; create it first"))?;
        let device = acc.next_device;
        acc.next_device += 1;
        let key_index = u32::from(device);
        let device_identity = acc.phone.sign_companion(&pending.identity_pub, adv_secret, key_index);
        acc.companions.insert(
            device,
            Companion {
                noise_pub: pending.noise_pub,
                identity_pub: pending.identity_pub,
                registration_id: pending.registration_id,
                signed_pre_key: pending.signed_pre_key.clone(),
                pre_keys: BTreeMap::new(),
                adv_identity: None,
                key_index,
                queue: Vec::new(),
                flushed_on: None,
            },
        );
        let pn = Jid::pn_device(acc.phone_number.as_str(), device);
        let lid = Jid::lid_device(acc.lid.as_str(), device);
        let push_name = acc.push_name.clone();

        let iq_id = stanza::random_id();
        st.awaiting_sign.insert(iq_id.clone(), AwaitingSign { phone_number: phone_number.to_string(), device });
        let mut success = vec![
            NodeBuilder::new("device-identity").bytes(device_identity).build(),
            NodeBuilder::new("device").attr("jid", pn.clone()).attr("lid", lid).build(),
            NodeBuilder::new("platform").attr("name", "android").build(),
        ];
        if !push_name.is_empty() {
            success.push(NodeBuilder::new("biz").attr("name", push_name).build());
        }
        pending.conn.send(
            NodeBuilder::new("iq")
                .attr("from", server_jid())
                .attr("type", "set")
                .attr("id", iq_id)
                .attr("xmlns", "md")
                .attr("t", stanza::now_secs().to_string())
                .children([NodeBuilder::new("pair-success").children(success).build()])
                .build(),
        );
        Ok(pn)
    }

    /// The phone unlinks one of its companions ("Linked devices" → "Log out"):
    /// the real server ends that device's stream with
    /// `<stream:error code="401"><conflict type="device_removed"/>`, which
    /// whatsapp-rust reports as `Event::LoggedOut` without reconnecting.
    pub fn remove_device(&self, phone_number: &str, device: u16) -> anyhow::Result<()> {
        let mut st = self.state();
        if let Some(conn) = self.unlink(&mut st, phone_number, device)? {
            let removed = NodeBuilder::new("conflict").attr("type", "device_removed").build();
            let _ = conn.tx.send(Out::StreamError(stanza::stream_error("401", Some(removed))));
        }
        Ok(())
    }

    /// A companion deregisters itself (`Client::logout`'s
    /// `<remove-companion-device>`): answered, then unlinked like
    /// [`Self::remove_device`], and its socket closed — the client already
    /// reports its own logout, so it gets no stream error on top.
    pub fn logout(&self, phone_number: &str, device: u16, conn: &ConnHandle, req: &Node) {
        let mut st = self.state();
        match self.unlink(&mut st, phone_number, device) {
            Ok(_) => {
                conn.send(stanza::iq_result(req, Vec::new()));
                let _ = conn.tx.send(Out::CloseGently);
            }
            Err(e) => conn.send(stanza::iq_error(req, 404, &format!("{e:#}"))),
        }
    }

    /// Forgets a companion — its keys, its queue, its place in device lists —
    /// and announces that with a `devices` notification, as the server does,
    /// so other clients drop it from their cached device lists (and its
    /// Signal sessions) without waiting for a usync. Returns the removed
    /// device's connection if it was online.
    fn unlink(&self, st: &mut State, phone_number: &str, device: u16) -> anyhow::Result<Option<ConnHandle>> {
        let acc = st.accounts.get_mut(phone_number).ok_or_else(|| anyhow!("no account {phone_number}"))?;
        if device == 0 {
            bail!("device 0 is the phone itself, not a linked device");
        }
        if acc.companions.remove(&device).is_none() {
            bail!("{phone_number} has no linked device {device}");
        }
        st.awaiting_sign.retain(|_, a| !(a.phone_number == phone_number && a.device == device));
        let conn = st.online.remove(&(phone_number.to_string(), device));
        self.announce_devices(st, phone_number, device, "remove");
        log::info!("wa-sim: {phone_number}:{device} unlinked");
        Ok(conn)
    }

    /// A `devices` notification that `device` of `phone_number` was added or removed
    /// (`operation`), as the server sends. The simulator has no contact lists, so every
    /// companion of every account is told.
    fn announce_devices(&self, st: &mut State, phone_number: &str, device: u16, operation: &'static str) {
        let Some(acc) = st.accounts.get(phone_number) else { return };
        let pn = Jid::pn(acc.phone_number.as_str());
        let lid = acc.lid_jid();
        let changed = NodeBuilder::new("device")
            .attr("jid", Jid::pn_device(acc.phone_number.as_str(), device))
            .attr("lid", Jid::lid_device(acc.lid.as_str(), device))
            .build();
        let now = stanza::now_secs().to_string();
        let notification = NodeBuilder::new("notification")
            .attr("from", pn)
            .attr("lid", lid)
            .attr("type", "devices")
            .attr("id", stanza::random_id())
            .attr("t", now.clone())
            // No signed list is sent, but the list's timestamp is mandatory.
            .children([NodeBuilder::new(operation)
                .children([changed, NodeBuilder::new("key-index-list").attr("ts", now).build()])
                .build()])
            .build();
        let audience: Vec<(String, u16)> =
            st.accounts.values().flat_map(|a| a.companions.keys().map(|d| (a.phone_number.clone(), *d))).collect();
        for (phone, d) in audience {
            self.deliver(st, &phone, d, notification.clone());
        }
    }

    /// After the Noise handshake: a login of a linked device, or a new device
    /// asking to be paired.
    pub fn open_session(
        &self,
        conn: ConnHandle,
        payload: &ClientPayload,
        client_static: [u8; 32],
    ) -> anyhow::Result<Session> {
        if let Some(username) = payload.username {
            let phone = username.to_string();
            let device = payload.device.unwrap_or(0) as u16;
            let mut st = self.state();
            let acc = st.accounts.get(&phone).ok_or_else(|| anyhow!("login for unknown account {phone}"))?;
            let comp =
                acc.companions.get(&device).ok_or_else(|| anyhow!("login for unknown device {phone}:{device}"))?;
            if comp.noise_pub != client_static {
                bail!("{phone}:{device} logged in with a Noise key it did not pair with");
            }
            if comp.adv_identity.is_none() {
                bail!("{phone}:{device} never countersigned its pairing");
            }
            let lid = Jid::lid_device(acc.lid.as_str(), device);
            if let Some(old) = st.online.insert((phone.clone(), device), conn.clone()) {
                *st.takeovers.entry((phone.clone(), device)).or_default() += 1;
                let _ = old.tx.send(Out::Close);
            }
            conn.send(
                NodeBuilder::new("success")
                    .attr("t", stanza::now_secs().to_string())
                    .attr("props", "1")
                    .attr("abprops", "1")
                    .attr("location", "sim")
                    .attr("creation", stanza::now_secs().to_string())
                    .attr("lid", lid)
                    .build(),
            );
            if payload.passive == Some(false) {
                drop(st);
                self.flush_offline(&phone, device, &conn);
            }
            return Ok(Session::Device { phone, device });
        }

        let reg = payload
            .device_pairing_data
            .as_option()
            .ok_or_else(|| anyhow!("client payload has neither a username nor pairing data"))?;
        let identity_pub: [u8; 32] = reg
            .e_ident
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("pairing data without a 32-byte identity key"))?;
        let registration_id =
            reg.e_regid.as_deref().and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_be_bytes).unwrap_or(0);
        let skey_id =
            reg.e_skey_id.as_deref().map(|b| b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))).unwrap_or(0);
        let signed_pre_key = SignedPreKey {
            id: skey_id,
            public: reg
                .e_skey_val
                .as_deref()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow!("pairing data without a signed pre-key"))?,
            signature: reg.e_skey_sig.clone().unwrap_or_default(),
        };
        let refs: Vec<String> = (0..6).map(|_| format!("2@{}", stanza::random_id())).collect();
        let mut st = self.state();
        for r in &refs {
            st.pending_pairings.insert(
                r.clone(),
                PendingPairing {
                    conn: conn.clone(),
                    noise_pub: client_static,
                    identity_pub,
                    registration_id,
                    signed_pre_key: signed_pre_key.clone(),
                },
            );
        }
        conn.send(
            NodeBuilder::new("iq")
                .attr("from", server_jid())
                .attr("type", "set")
                .attr("id", stanza::random_id())
                .attr("xmlns", "md")
                .children([NodeBuilder::new("pair-device")
                    .children(refs.iter().map(|r| NodeBuilder::new("ref").bytes(r.as_bytes().to_vec()).build()))
                    .build()])
                .build(),
        );
        Ok(Session::Unpaired)
    }

    pub fn close_session(&self, session: &Session, conn: &ConnHandle) {
        let mut st = self.state();
        match session {
            Session::Unpaired => {
                st.pending_pairings.retain(|_, p| p.conn.id != conn.id);
                let gone: Vec<Vec<u8>> =
                    st.code_pairings.values().filter(|p| p.conn.id == conn.id).map(|p| p.pairing_ref.clone()).collect();
                st.code_pairings.retain(|_, p| p.conn.id != conn.id);
                // A phone waiting for this device's companion_finish hears it left.
                for r in gone {
                    st.awaiting_finish.remove(&r);
                }
            }
            Session::Device { phone, device } => {
                let key = (phone.clone(), *device);
                if st.online.get(&key).is_some_and(|c| c.id == conn.id) {
                    st.online.remove(&key);
                }
            }
        }
    }

    // ---- stanzas from clients --------------------------------------------

    pub fn handle(&self, session: &mut Session, conn: &ConnHandle, node: Node) {
        match (&*session, node.tag.as_ref()) {
            (Session::Unpaired, "iq") => self.handle_unpaired_iq(conn, &node),
            (Session::Unpaired, _) => {}
            (Session::Device { phone, device }, _) => {
                let (phone, device) = (phone.clone(), *device);
                self.handle_device_stanza(&phone, device, conn, node);
            }
        }
    }

    fn handle_unpaired_iq(&self, conn: &ConnHandle, node: &Node) {
        let id = attr(node, "id").unwrap_or_default();
        let kind = attr(node, "type").unwrap_or_default();
        if kind == "result"
            && let Some(sign) = child(node, "pair-device-sign")
        {
            let mut st = self.state();
            let Some(awaiting) = st.awaiting_sign.remove(&id) else {
                return;
            };
            let identity = child(sign, "device-identity").and_then(stanza::bytes).map(<[u8]>::to_vec);
            if let Some(comp) =
                st.accounts.get_mut(&awaiting.phone_number).and_then(|a| a.companions.get_mut(&awaiting.device))
            {
                comp.adv_identity = identity;
            }
            // Contacts add it to their cached device lists and encrypt to it too.
            self.announce_devices(&mut st, &awaiting.phone_number, awaiting.device, "add");
            drop(st);
            log::info!("wa-sim: {}:{} linked", awaiting.phone_number, awaiting.device);
            // The restart that makes the device log in, once the client is
            // done with pair-success (see `Out::StreamErrorOnTurn`).
            let _ = conn.tx.send(Out::StreamErrorOnTurn(stanza::stream_error("515", None)));
            return;
        }
        if kind == "set"
            && let Some(reg) = child(node, "link_code_companion_reg")
        {
            conn.send(crate::pair_code::companion_iq(self, conn, node, reg));
            return;
        }
        if kind == "error" {
            log::warn!("wa-sim: unpaired device answered with an error: {}", stanza::brief(node));
            return;
        }
        if kind == "get" || kind == "set" {
            conn.send(stanza::iq_result(node, Vec::new()));
        }
    }

    fn handle_device_stanza(&self, phone: &str, device: u16, conn: &ConnHandle, node: Node) {
        match node.tag.as_ref() {
            "iq" => {
                let kind = attr(&node, "type").unwrap_or_default();
                if kind == "get" || kind == "set" {
                    let reply = crate::iq::handle(self, phone, device, conn, &node);
                    if let Some(reply) = reply {
                        conn.send(reply);
                    }
                }
            }
            "message" => crate::routing::message(self, phone, device, conn, &node),
            "receipt" => crate::routing::receipt(self, phone, device, conn, &node),
            "ack" => {
                // Acks of receipts and notifications need nothing; a message
                // ack lets the server forget the message.
                if attr(&node, "class").as_deref() == Some("message")
                    && let Some(id) = attr(&node, "id")
                {
                    let (to, participant) = (stanza::jid_attr(&node, "to"), stanza::jid_attr(&node, "participant"));
                    self.acked(phone, device, &[id], to.as_ref(), participant.as_ref());
                }
            }
            "chatstate" => crate::signals::chatstate(self, phone, device, &node),
            "presence" => crate::signals::presence(self, phone, device, &node),
            "ib" => {}
            "call" => {
                conn.send(crate::routing::server_ack(&node));
                crate::signals::call(self, phone, device, &node);
            }
            "notification" => conn.send(crate::routing::server_ack(&node)),
            other => log::debug!("wa-sim: ignoring <{other}> from {phone}:{device}"),
        }
    }

    // ---- delivery ----------------------------------------------------------

    /// Hands `node` to one device: sent at once if it is online (and has had
    /// its offline backlog); a `<message>` is also held until the device acks
    /// it (and sent again at its next login if it does not), anything else is
    /// held only until it is sent.
    pub fn deliver(&self, st: &mut State, phone: &str, device: u16, node: Node) {
        let received = Received {
            device,
            tag: node.tag.to_string(),
            id: attr(&node, "id").unwrap_or_default(),
            from: attr(&node, "from").unwrap_or_default(),
            participant: attr(&node, "participant"),
            kind: attr(&node, "type"),
            enc: stanza::children(&node, "enc").filter_map(|e| attr(e, "type")).collect(),
            at: stanza::now_secs(),
        };
        let ack = (node.tag == "message").then(|| ack_key(st, &node)).flatten();
        let online = st.online.get(&(phone.to_string(), device)).cloned();
        let Some(acc) = st.accounts.get_mut(phone) else {
            return;
        };
        acc.received.push(received);
        if device == 0 {
            // The phone is simulated: it only keeps the log.
            return;
        }
        let Some(comp) = acc.companions.get_mut(&device) else {
            return;
        };
        // A device gets live stanzas once it has had its backlog, so that
        // everything reaches it in order.
        match online.filter(|conn| comp.flushed_on == Some(conn.id)) {
            Some(conn) => {
                if ack.is_some() {
                    comp.queue.push(Held { node: node.clone(), ack, sent_on: Some(conn.id) });
                }
                conn.send(node);
            }
            None => comp.queue.push(Held { node, ack, sent_on: None }),
        }
    }

    /// Hands a device its backlog, oldest first and marked `offline="1"`:
    /// what was held while it was offline and every message it has not acked
    /// (unless already sent on this connection), then tells it the backlog is
    /// done with `<ib><offline count/>`. Once per connection.
    pub fn flush_offline(&self, phone: &str, device: u16, conn: &ConnHandle) {
        let mut st = self.state();
        let Some(comp) = st.accounts.get_mut(phone).and_then(|a| a.companions.get_mut(&device)) else {
            return;
        };
        if comp.flushed_on == Some(conn.id) {
            return;
        }
        comp.flushed_on = Some(conn.id);
        let mut count = 0usize;
        comp.queue.retain_mut(|held| {
            if held.sent_on != Some(conn.id) {
                let mut node = held.node.clone();
                node.attrs.insert("offline", "1");
                conn.send(node);
                count += 1;
                held.sent_on = Some(conn.id);
            }
            // Only messages wait for an ack.
            held.ack.is_some()
        });
        conn.send(
            NodeBuilder::new("ib")
                .children([NodeBuilder::new("offline").attr("count", count.to_string()).build()])
                .build(),
        );
    }

    /// A device acknowledged messages it received, by `<ack class="message">`
    /// or by a delivery receipt (`ids` are the receipt's `id` and its
    /// `<list><item id/>`s): the server forgets them. `to` and `participant`
    /// are as the device wrote them (the message's `from`/author).
    pub fn acked(&self, phone: &str, device: u16, ids: &[String], to: Option<&Jid>, participant: Option<&Jid>) {
        let mut st = self.state();
        let (sender, group) = match to {
            Some(to) if to.server == wacore_binary::Server::Group => {
                (participant.and_then(|p| st.phone_of(p)), Some(to.user.to_string()))
            }
            Some(to) => (st.phone_of(to), None),
            None => (None, None),
        };
        let Some(comp) = st.accounts.get_mut(phone).and_then(|a| a.companions.get_mut(&device)) else {
            return;
        };
        for id in ids {
            let matches = |k: &AckKey| {
                &k.id == id
                    && k.group == group
                    // A group ack without a (resolvable) participant still names the group and id.
                    && (sender.is_none() && group.is_some() || sender.as_ref() == Some(&k.sender))
            };
            // The oldest one: a resend under the same id (after a retry
            // receipt) is a new delivery with an ack of its own.
            match comp.queue.iter().position(|h| h.ack.as_ref().is_some_and(matches)) {
                Some(i) => {
                    comp.queue.remove(i);
                }
                None => log::debug!("wa-sim: {phone}:{device} acked {id}, which it does not hold"),
            }
        }
    }
}

/// The ack key of a `<message>` the simulator built: `from` is the sender
/// device, or the group with the sender in `participant`.
fn ack_key(st: &State, node: &Node) -> Option<AckKey> {
    let id = attr(node, "id")?;
    let from = stanza::jid_attr(node, "from")?;
    if from.server == wacore_binary::Server::Group {
        let sender = st.phone_of(&stanza::jid_attr(node, "participant")?)?;
        Some(AckKey { id, sender, group: Some(from.user.to_string()) })
    } else {
        Some(AckKey { id, sender: st.phone_of(&from)?, group: None })
    }
}
