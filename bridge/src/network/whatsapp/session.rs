//! One whatsapp-rust client: started on a device's store, its events delivered in order
//! on a channel, its connection state kept for `GET /devices` and `/health`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{Event, EventHandler};
use whatsapp_rust::{Client, Jid};

use whatsapp_rust::waproto::whatsapp as wa;

use super::http::Rerouted;
use super::messages::{CommitToInbox, Recent};
use super::store::SqlStore;
use crate::config::WhatsAppConfig;
use crate::db::Db;
use crate::ids::PhoneNumber;
use crate::network::{AccountId, ConnectionState, Inbox, NetworkError};

/// whatsapp-rust hands events to handlers synchronously and in order; a channel keeps
/// that order for the task that acts on them.
struct Forward(mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Forward {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

/// A running client and the receiver of its events.
pub struct Started {
    pub handle: BotHandle,
    pub events: mpsc::UnboundedReceiver<Arc<Event>>,
}

/// Starts a client on the store `store_key`; with `pair_code`, a new store links by
/// pairing code instead of QR codes. Received messages are committed to `inbox` before
/// WhatsApp is acked.
pub async fn start(
    db: &Db,
    config: &WhatsAppConfig,
    store_key: &str,
    pair_code: Option<&PhoneNumber>,
    inbox: Inbox,
) -> Result<Started, NetworkError> {
    let (tx, events) = mpsc::unbounded_channel();
    let mut builder = Bot::builder()
        .with_backend(SqlStore::new(db.clone(), store_key))
        .with_event_handler(Forward(tx))
        .with_inbound_durability_hook(CommitToInbox(inbox, SqlStore::new(db.clone(), store_key)))
        // mxgate bridges what arrives from now on; the phone's history stays on the phone.
        .skip_history_sync();
    if let Some(url) = &config.url {
        builder = builder.with_transport_factory(TokioWebSocketTransportFactory::new().with_url(url.clone()));
    }
    builder = builder.with_http_client(Rerouted::new(config.http_url.as_deref()));
    if let Some(phone) = pair_code {
        builder = builder.with_pair_code(PairCodeOptions { phone_number: phone.to_string(), ..Default::default() });
    }
    let bot =
        builder.build().await.map_err(|e| NetworkError::Refused(format!("cannot start a WhatsApp client: {e}")))?;
    Ok(Started { handle: bot.spawn(), events })
}

/// A linked device's client.
pub struct Session {
    pub account: AccountId,
    pub store_key: String,
    pub client: Arc<Client>,
    handle: std::sync::Mutex<Option<BotHandle>>,
    state: std::sync::Mutex<ConnectionState>,
    /// Set once mxgate itself ends the session, so the log-out it causes is not taken
    /// for one from the phone.
    closing: AtomicBool,
    pacer: Pacer,
    recent: std::sync::Mutex<Recent>,
}

/// Spaces one device's sends: each waits until the slot the previous one booked.
#[derive(Debug)]
pub struct Pacer {
    next: tokio::sync::Mutex<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self { next: tokio::sync::Mutex::new(Instant::now()) }
    }
}

impl Pacer {
    /// Waits until this device may send again, then books the next slot.
    pub async fn pace(&self, interval: Duration) {
        let mut next = self.next.lock().await;
        tokio::time::sleep_until(*next).await;
        *next = Instant::now() + interval;
    }
}

impl Session {
    pub fn new(account: AccountId, store_key: String, handle: BotHandle, state: ConnectionState) -> Self {
        Self {
            account,
            store_key,
            client: handle.client(),
            handle: std::sync::Mutex::new(Some(handle)),
            state: std::sync::Mutex::new(state),
            closing: AtomicBool::new(false),
            pacer: Pacer::default(),
            recent: Default::default(),
        }
    }

    pub fn state(&self) -> ConnectionState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_state(&self, state: ConnectionState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Moves from `Connecting` to `Error` only: a later connect or failure has its say.
    pub fn report_slow_connect(&self, waited: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *state == ConnectionState::Connecting {
            *state = ConnectionState::Error(format!(
                "not connected to WhatsApp after {} s; retrying with backoff",
                waited.as_secs()
            ));
        }
    }

    pub fn remember(&self, id: &str, sender: Jid, message: Arc<wa::Message>) {
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).remember(id, sender, message);
    }

    pub fn recalled(&self, id: &str) -> Option<(Jid, Arc<wa::Message>)> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner()).recall(id)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub async fn pace(&self, interval: Duration) {
        self.pacer.pace(interval).await;
    }

    /// Logs the device out of WhatsApp (when `remove` is set) and stops its client.
    pub async fn close(&self, remove: bool) {
        self.closing.store(true, Ordering::SeqCst);
        if remove {
            self.client.logout().await;
        }
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            handle.shutdown().await;
        }
    }
}

/// The JID of a person, from their number.
pub fn person(phone: &PhoneNumber) -> Jid {
    Jid::pn(phone.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    // On tokio's paused clock, time moves only when every task waits: the elapsed virtual
    // time is exactly what the pacer imposed.
    #[tokio::test(start_paused = true)]
    async fn sends_of_one_device_are_spaced_by_the_interval() {
        let pacer = Pacer::default();
        let interval = Duration::from_millis(1_500);
        let start = Instant::now();
        pacer.pace(interval).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the first send goes at once");
        pacer.pace(interval).await;
        pacer.pace(interval).await;
        assert_eq!(start.elapsed(), interval * 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        let later = Instant::now();
        pacer.pace(interval).await;
        assert_eq!(later.elapsed(), Duration::ZERO, "an idle device sends at once");
    }
}
