//! A WhatsApp Web server simulator for tests.
//!
//! Unmodified whatsapp-rust clients connect to it through
//! `TokioWebSocketTransportFactory::new().with_url(sim.ws_url())` (built with
//! whatsapp-rust's `danger-skip-cert-chain-verify`: the simulator cannot sign
//! with WhatsApp's root key), pair with a simulated phone (QR code or pair
//! code), log in, exchange pre-keys and device lists, and relay end-to-end
//! encrypted messages to each other; the phone can also unlink them. See README.md for what of the protocol is covered.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = wa_sim::WaSim::start().await?;
//! sim.create_account("15550001111", "Alice")?;
//! // …a client connects to sim.ws_url() and shows a QR code…
//! # let qr = String::new();
//! let device = sim.scan_qr("15550001111", &qr)?;
//! # Ok(()) }
//! ```

mod api;
mod conn;
mod groups;
mod iq;
mod media;
mod noise;
mod pair_code;
mod phone;
mod routing;
mod signals;
mod sim;
mod stanza;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::any;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use media::MediaHttpClient;
pub use state::Received;

/// An account as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountInfo {
    /// The phone number, digits only (`15550001111`).
    pub phone_number: String,
    /// `15550001111@s.whatsapp.net`
    pub jid: String,
    /// `100000000000001@lid`
    pub lid: String,
    /// Linked companion device ids (the phone is device 0 and not listed).
    pub devices: Vec<u16>,
}

/// A group as the simulator knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupInfo {
    /// `120363000000000001@g.us`
    pub jid: String,
    pub subject: String,
    /// Member phone numbers.
    pub members: Vec<String>,
    /// The members who are admins (the creator among them unless demoted).
    pub admins: Vec<String>,
    /// The description's text, if the group has one.
    pub description: Option<String>,
    /// Announcement mode: only admins may send (the simulator does not enforce it).
    pub announce: bool,
    /// Only admins may change the subject, description and picture.
    pub locked: bool,
    pub has_picture: bool,
    pub invite_code: String,
    /// `https://chat.whatsapp.com/<code>`
    pub invite_link: String,
}

/// A running simulator. Dropping it (or [`WaSim::shutdown`]) stops it.
pub struct WaSim {
    sim: Arc<sim::Sim>,
    ws_addr: SocketAddr,
    api_addr: SocketAddr,
    media_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl WaSim {
    /// Binds the WebSocket, test-API and media endpoints on free loopback ports.
    pub async fn start() -> anyhow::Result<Self> {
        let sim = Arc::new(sim::Sim::new());
        let ws = TcpListener::bind("127.0.0.1:0").await?;
        let api = TcpListener::bind("127.0.0.1:0").await?;
        let media = TcpListener::bind("127.0.0.1:0").await?;
        let (ws_addr, api_addr, media_addr) = (ws.local_addr()?, api.local_addr()?, media.local_addr()?);
        let _ = sim.media_host.set(media_addr.to_string());

        let ws_app = Router::new().route("/ws/chat", any(upgrade)).with_state(sim.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(ws, ws_app).await;
            }),
            tokio::spawn({
                let app = api::router(sim.clone());
                async move {
                    let _ = axum::serve(api, app).await;
                }
            }),
            tokio::spawn({
                let app = media::router(sim.clone());
                async move {
                    let _ = axum::serve(media, app).await;
                }
            }),
        ];
        Ok(Self { sim, ws_addr, api_addr, media_addr, tasks })
    }

    /// `ws://127.0.0.1:<port>/ws/chat`, for `TokioWebSocketTransportFactory::with_url`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.ws_addr)
    }

    /// `http://127.0.0.1:<port>`, the JSON test API (see README.md).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// `127.0.0.1:<port>`, the media host the simulator hands out in `media_conn`.
    pub fn media_host(&self) -> String {
        self.media_addr.to_string()
    }

    /// Creates the account of `phone_number` (digits only) with its simulated
    /// phone; idempotent.
    pub fn create_account(&self, phone_number: &str, push_name: &str) -> anyhow::Result<AccountInfo> {
        self.sim.create_account(phone_number, push_name)?;
        self.account(phone_number)
    }

    pub fn account(&self, phone_number: &str) -> anyhow::Result<AccountInfo> {
        api::account_info(&self.sim, phone_number)
    }

    /// The phone of `phone_number` scans a QR code shown by a new device.
    /// Returns the device's JID (`<phone>:<device>@s.whatsapp.net`).
    /// `phone_number` is a WhatsApp Business account from now on.
    pub fn make_business(&self, phone_number: &str) {
        self.sim.make_business(phone_number);
    }

    /// How many numbers each "who is on WhatsApp" query (usync with the `contact`
    /// protocol) of `phone_number`'s devices asked about, oldest first.
    pub fn contact_queries(&self, phone_number: &str) -> Vec<usize> {
        self.sim.contact_queries(phone_number)
    }

    pub fn scan_qr(&self, phone_number: &str, qr_code: &str) -> anyhow::Result<String> {
        Ok(self.sim.scan_qr(phone_number, qr_code)?.to_string())
    }

    /// The user types `code` (shown by a device that asked to link with this
    /// number, `Event::PairingCode`) on the phone of `phone_number`: the phone
    /// answers the device's key exchange and links it as after a QR scan.
    /// Returns the device's JID once `pair-success` is sent. A wrong code is an
    /// error and links nothing; the device keeps waiting and the code may be
    /// typed again. Async because the phone only learns whether the code was
    /// right from the device's answer (`companion_finish`).
    pub async fn enter_pair_code(&self, phone_number: &str, code: &str) -> anyhow::Result<String> {
        Ok(pair_code::enter(&self.sim, phone_number, code).await?.to_string())
    }

    /// The phone of `phone_number` unlinks its companion `device`: a connected
    /// client is logged out (`Event::LoggedOut`), a later login with that
    /// device's store is refused (`<failure reason="401">`), and the device
    /// leaves usync device lists and [`AccountInfo::devices`].
    pub fn remove_device(&self, phone_number: &str, device: u16) -> anyhow::Result<()> {
        self.sim.remove_device(phone_number, device)
    }

    /// Creates a group owned by `creator` with `members` (phone numbers).
    pub fn create_group(&self, creator: &str, subject: &str, members: &[&str]) -> anyhow::Result<GroupInfo> {
        let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        let id = groups::create(&self.sim, creator, subject, &members)?;
        self.group(&id)
    }

    /// A group by its id or JID.
    pub fn group(&self, group: &str) -> anyhow::Result<GroupInfo> {
        groups::info(&self.sim, group)
    }

    /// Everything delivered to (or queued for) the devices of an account,
    /// the phone included, oldest first.
    pub fn received(&self, phone_number: &str) -> anyhow::Result<Vec<Received>> {
        api::received(&self.sim, phone_number)
    }

    /// How many `<message>` stanzas the simulator holds for companion `device`
    /// of `phone_number` that the device has not acked yet — delivered and
    /// not yet acknowledged, or waiting for the device to come online. The
    /// server forgets a message only once the device acks it (`<ack
    /// class="message">` or a delivery receipt) and sends the unacked ones
    /// again, `offline="1"`, at the device's next login.
    pub fn pending_for(&self, phone_number: &str, device: u16) -> anyhow::Result<usize> {
        api::pending_for(&self.sim, phone_number, device)
    }

    /// Whether companion `device` of `phone_number` has a logged-in
    /// connection. It turns false once the simulator has handled everything
    /// the device sent on it and seen it close.
    pub fn is_online(&self, phone_number: &str, device: u16) -> bool {
        api::online(&self.sim, phone_number, device)
    }

    /// How many logins of companion `device` of `phone_number` found it online already
    /// and replaced that connection: more than one client running the same device.
    pub fn takeovers(&self, phone_number: &str, device: u16) -> usize {
        self.sim.peek().takeovers.get(&(phone_number.to_string(), device)).copied().unwrap_or(0)
    }

    /// Waits until `condition` holds, re-evaluating it whenever the
    /// simulator's state changes (a stanza handled, delivered, acked, a
    /// connection opened or closed) — no polling. Fails after `timeout`.
    /// `condition` should read the simulator only (`pending_for`,
    /// `is_online`, `account`, `received`…).
    ///
    /// ```no_run
    /// # async fn demo(sim: &wa_sim::WaSim) -> anyhow::Result<()> {
    /// # use std::time::Duration;
    /// sim.wait_until(Duration::from_secs(10), |sim| sim.pending_for("15550002222", 1).is_ok_and(|n| n == 0)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_until(
        &self,
        timeout: std::time::Duration,
        mut condition: impl FnMut(&WaSim) -> bool,
    ) -> anyhow::Result<()> {
        let mut changes = self.sim.changes();
        tokio::time::timeout(timeout, async {
            loop {
                changes.borrow_and_update();
                if condition(self) {
                    return Ok(());
                }
                changes.changed().await.map_err(|_| anyhow::anyhow!("the simulator is gone"))?;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("the simulator did not reach the awaited state within {timeout:?}"))?
    }

    /// Stops accepting connections and drops every open one.
    pub fn shutdown(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let mut st = self.sim.state();
        for (_, conn) in st.online.drain() {
            let _ = conn.tx.send(state::Out::Close);
        }
        for (_, p) in st.pending_pairings.drain() {
            let _ = p.conn.tx.send(state::Out::Close);
        }
    }
}

impl Drop for WaSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn upgrade(State(sim): State<Arc<sim::Sim>>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.max_message_size(64 << 20).on_upgrade(move |socket| conn::serve(sim, socket))
}
