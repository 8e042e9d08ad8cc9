//! A person's phone on the simulated WhatsApp: a real whatsapp-rust client (a linked
//! device of a `wa-sim` account, on an in-memory store) that sends and decrypts for
//! itself.

use std::sync::Arc;
use std::time::Duration;

use wa_sim::{MediaHttpClient, WaSim};
use whatsapp_rust::async_channel::Receiver;
use whatsapp_rust::bot::{Bot, BotHandle};
use whatsapp_rust::http::UreqHttpClient;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::types::events::{ChannelEventHandler, Event, InboundMessage};
use whatsapp_rust::wacore::store::InMemoryBackend;
use whatsapp_rust::{Client, Jid};

pub struct Phone {
    pub number: String,
    pub client: Arc<Client>,
    events: Receiver<Arc<Event>>,
    _handle: BotHandle,
}

impl Phone {
    /// A new account `number` on `sim`, and a client linked to it by a QR scan.
    pub async fn new(sim: &WaSim, number: &str, push_name: &str) -> Self {
        sim.create_account(number, push_name).expect("the simulator makes the account");
        let bot = Bot::builder()
            .with_backend(InMemoryBackend::new())
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(sim.ws_url()))
            .with_http_client(MediaHttpClient::new(UreqHttpClient::new(), &sim.media_host()))
            .build()
            .await
            .expect("a whatsapp-rust client builds");
        let client = bot.client();
        let (handler, events) = ChannelEventHandler::new();
        client.subscribe_handler(handler).detach();
        let phone = Self { number: number.to_owned(), client, events, _handle: bot.spawn() };
        let qr = phone.wait_for("a QR code", |e| matches!(e, Event::PairingQrCode(_))).await;
        let Event::PairingQrCode(qr) = &*qr else { unreachable!() };
        sim.scan_qr(number, &qr.code).expect("the phone scans its own client's code");
        phone.client.wait_for_connected(Duration::from_secs(60)).await.expect("the client logs in");
        phone
    }

    pub fn jid(&self) -> Jid {
        Jid::pn(self.number.as_str())
    }

    pub async fn wait_for(&self, what: &str, mut matches: impl FnMut(&Event) -> bool) -> Arc<Event> {
        let wait = async {
            loop {
                let event = self.events.recv().await.expect("the client runs");
                if matches(&event) {
                    return event;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.unwrap_or_else(|_| panic!("no {what} in 60 s"))
    }

    /// The next message this phone receives.
    pub async fn next_message(&self) -> InboundMessage {
        let event = self.wait_for("message", |e| matches!(e, Event::Messages(_))).await;
        let Event::Messages(batch) = &*event else { unreachable!() };
        batch.first().expect("a batch holds a message").clone()
    }
}
