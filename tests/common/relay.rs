//! The appservice URLs Synapse knows. Synapse learns each registration's URL once, at
//! start-up, so every registration port is bound for the whole run and handed from test
//! to test. While a test's mxgate holds the slot, the port is a plain TCP pipe to it: Synapse
//! meets mxgate's own answers, timeouts and failures (a stopped mxgate refuses, and
//! Synapse backs off and replays as in production). Only a slot no test holds answers
//! `{}` itself, so the events of a finished test's rooms do not put the registration into
//! back-off for the next test. A story may also have a slot lose what Synapse pushes
//! (answered `{}`, kept for the story to read), as a homeserver that never pushes would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Relay port → the mxgate address it pipes to, if a test holds the slot.
fn targets() -> &'static Mutex<HashMap<u16, watch::Sender<Option<SocketAddr>>>> {
    static TARGETS: OnceLock<Mutex<HashMap<u16, watch::Sender<Option<SocketAddr>>>>> = OnceLock::new();
    TARGETS.get_or_init(Default::default)
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a registration URL ends in a port")
}

fn target(port: u16) -> watch::Receiver<Option<SocketAddr>> {
    targets().lock().unwrap().entry(port).or_insert_with(|| watch::channel(None).0).subscribe()
}

fn set(url: &str, target: Option<SocketAddr>) {
    targets().lock().unwrap().entry(port(url)).or_insert_with(|| watch::channel(None).0).send_replace(target);
}

/// Relay port → the bodies answered `{}` while the story has that slot lose its pushes.
fn losing() -> &'static Mutex<HashMap<u16, Vec<String>>> {
    static LOSING: OnceLock<Mutex<HashMap<u16, Vec<String>>>> = OnceLock::new();
    LOSING.get_or_init(Default::default)
}

pub fn point(url: &str, target: SocketAddr) {
    losing().lock().unwrap().remove(&port(url));
    set(url, Some(target));
}

/// Synapse's pushes to `url` are answered `{}` and reach no mxgate, until [`point`].
#[allow(dead_code)]
pub fn lose(url: &str) {
    losing().lock().unwrap().insert(port(url), Vec::new());
    set(url, None);
}

/// The bodies of the pushes lost since [`lose`].
#[allow(dead_code)]
pub fn lost(url: &str) -> Vec<String> {
    losing().lock().unwrap().get(&port(url)).cloned().unwrap_or_default()
}

pub fn unpoint(url: &str) {
    losing().lock().unwrap().remove(&port(url));
    set(url, None);
}

/// Serves every registration URL from its bound socket on a thread of their own, so the
/// relays outlive the test that happened to start Synapse.
pub fn start(relays: Vec<(String, std::net::TcpListener)>) {
    let (ready, started) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            for (url, listener) in relays {
                listener.set_nonblocking(true).unwrap();
                let listener = TcpListener::from_std(listener).unwrap();
                let port = port(&url);
                tokio::spawn(async move {
                    while let Ok((inbound, _)) = listener.accept().await {
                        tokio::spawn(relay(inbound, target(port)));
                    }
                });
            }
            ready.send(()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    started.recv().unwrap();
}

async fn relay(mut inbound: TcpStream, mut target: watch::Receiver<Option<SocketAddr>>) {
    let Some(addr) = *target.borrow_and_update() else {
        let port = inbound.local_addr().map(|a| a.port()).unwrap_or_default();
        if let Some(body) = answer_empty(inbound).await
            && let Some(lost) = losing().lock().unwrap().get_mut(&port)
        {
            lost.push(body);
        }
        return;
    };
    // A refused connection closes Synapse's too: it sees mxgate down, as it would be.
    let Ok(mut outbound) = TcpStream::connect(addr).await else { return };
    tokio::select! {
        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
        // The slot changed hands: a kept-alive connection must not reach the next test's mxgate.
        _ = target.changed() => {}
    }
}

/// Reads one HTTP request and answers `200 {}`, closing the connection; returns the body.
async fn answer_empty(mut stream: TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let body_start = loop {
        let n = stream.read(&mut buffer).await.ok().filter(|n| *n > 0)?;
        request.extend_from_slice(&buffer[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while request.len() < body_start + length {
        let n = stream.read(&mut buffer).await.ok().filter(|n| *n > 0)?;
        request.extend_from_slice(&buffer[..n]);
    }
    let answer =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
    Some(String::from_utf8_lossy(&request[body_start..]).into_owned())
}
