//! Test harness: real whatsapp-rust clients against a `WaSim`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use wa_sim::{MediaHttpClient, WaSim};
use whatsapp_rust::InboundDurabilityHook;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::client::Client;
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::wacore::store::InMemoryBackend;
use whatsapp_rust::wacore::types::events::{ChannelEventHandler, Event, InboundMessage};
use whatsapp_rust::waproto::whatsapp as wa;
use whatsapp_rust_tokio_transport::TokioWebSocketTransportFactory;
use whatsapp_rust_ureq_http_client::UreqHttpClient;

/// A whatsapp-rust client (a companion device) and what it has seen.
pub struct Device {
    pub client: Arc<Client>,
    pub events: async_channel::Receiver<Arc<Event>>,
    pub backend: Arc<InMemoryBackend>,
    handle: Option<BotHandle>,
}

/// Starts a client on `backend` (a fresh one pairs, a paired one logs in).
pub async fn start_client(sim: &WaSim, backend: Arc<InMemoryBackend>) -> anyhow::Result<Device> {
    start(sim, backend, None, None).await
}

/// Starts a client on `backend` with an `InboundDurabilityHook`: the client
/// acks a message only once `hook` returns `Ok` for it.
pub async fn start_client_with_hook(
    sim: &WaSim,
    backend: Arc<InMemoryBackend>,
    hook: impl InboundDurabilityHook + 'static,
) -> anyhow::Result<Device> {
    start(sim, backend, None, Some(Box::new(hook))).await
}

/// Starts a new client that asks for a code to link with `phone_number`
/// (`Event::PairingCode`) as soon as it is connected.
pub async fn start_client_with_pair_code(sim: &WaSim, phone_number: &str) -> anyhow::Result<Device> {
    let options = PairCodeOptions { phone_number: phone_number.to_string(), ..Default::default() };
    start(sim, Arc::new(InMemoryBackend::new()), Some(options), None).await
}

async fn start(
    sim: &WaSim,
    backend: Arc<InMemoryBackend>,
    pair_code: Option<PairCodeOptions>,
    hook: Option<Box<dyn InboundDurabilityHook>>,
) -> anyhow::Result<Device> {
    init_logging();
    let mut builder = Bot::builder()
        .with_backend_arc(backend.clone())
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.ws_url()))
        .with_http_client(MediaHttpClient::new(UreqHttpClient::new(), &sim.media_host()))
        .with_runtime(whatsapp_rust::TokioRuntime)
        // No `with_version`: the client looks its version up at web.whatsapp.com,
        // which `MediaHttpClient` sends to the simulator.
        ;
    if let Some(options) = pair_code {
        builder = builder.with_pair_code(options);
    }
    if let Some(hook) = hook {
        builder = builder.with_inbound_durability_hook(BoxedHook(hook));
    }
    let bot = builder.build().await?;
    let client = bot.client();
    let (handler, events) = ChannelEventHandler::new();
    client.subscribe_handler(handler).detach();
    let handle = bot.spawn();
    Ok(Device { client, events, backend, handle: Some(handle) })
}

/// `with_inbound_durability_hook` takes a concrete type.
struct BoxedHook(Box<dyn InboundDurabilityHook>);

#[async_trait::async_trait]
impl InboundDurabilityHook for BoxedHook {
    async fn on_messages(&self, client: Arc<Client>, batch: &[InboundMessage]) -> anyhow::Result<()> {
        self.0.on_messages(client, batch).await
    }
}

/// The text of a message (plain or extended), if it has one.
pub fn text_of(m: &wa::Message) -> Option<&str> {
    m.conversation.as_deref().or_else(|| m.extended_text_message.as_option().and_then(|t| t.text.as_deref()))
}

/// A new companion of `phone_number`: the client shows a QR code, the
/// simulated phone scans it, and the client logs in.
pub async fn link(sim: &WaSim, phone_number: &str) -> anyhow::Result<Device> {
    let device = start_client(sim, Arc::new(InMemoryBackend::new())).await?;
    let qr = device.wait_for(20, |e| matches!(e, Event::PairingQrCode(_))).await?;
    let Event::PairingQrCode(qr) = &*qr else { unreachable!() };
    sim.scan_qr(phone_number, &qr.code)?;
    device.wait_connected().await?;
    Ok(device)
}

impl Device {
    pub async fn wait_for(&self, secs: u64, mut pred: impl FnMut(&Event) -> bool) -> anyhow::Result<Arc<Event>> {
        tokio::time::timeout(Duration::from_secs(secs), async {
            loop {
                let e = self.events.recv().await?;
                if pred(&e) {
                    return Ok(e);
                }
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("no matching event within {secs}s"))?
    }

    pub async fn wait_connected(&self) -> anyhow::Result<()> {
        self.client
            .wait_for_connected(Duration::from_secs(60))
            .await
            .map_err(|e| anyhow::anyhow!("client never became ready: {e}"))
    }

    /// Waits for a text message with exactly `text`.
    pub async fn wait_for_text(&self, secs: u64, text: &str) -> anyhow::Result<Arc<Event>> {
        self.wait_for(secs, |e| e.messages().any(|m| text_of(&m.message) == Some(text))).await
    }

    /// Stops the client and waits for its socket to close.
    pub async fn stop(mut self) {
        self.client.disconnect().await;
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
    }
}

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("{:5} {} {}", record.level(), record.target(), record.args());
        }
    }
    fn flush(&self) {}
}

/// `WA_SIM_LOG=debug` (or trace, info…) prints simulator and client logs.
pub fn init_logging() {
    static LOGGER: StderrLog = StderrLog;
    let level = match std::env::var("WA_SIM_LOG").as_deref() {
        Ok("trace") => log::LevelFilter::Trace,
        Ok("debug") => log::LevelFilter::Debug,
        Ok("info") => log::LevelFilter::Info,
        Ok("warn") => log::LevelFilter::Warn,
        _ => return,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
