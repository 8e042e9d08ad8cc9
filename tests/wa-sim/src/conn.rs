//! One client connection: WebSocket bytes → Noise handshake → login or
//! registration → a loop of decrypted stanzas handed to the simulator.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use wacore_binary::Node;
use wacore_binary::builder::NodeBuilder;
use waproto::buffa::Message as _;
use waproto::whatsapp::ClientPayload;

use crate::noise::{self, Accepted};
use crate::sim::Sim;
use crate::stanza::brief;
use crate::state::{ConnHandle, Out};

pub async fn serve(sim: Arc<Sim>, socket: WebSocket) {
    let (mut ws_tx, mut ws_rx) = socket.split();
    let mut buf = Vec::new();

    // Bytes until the connection header and the ClientHello frame are in.
    let mut header_seen = false;
    let hello = loop {
        match next_binary(&mut ws_rx).await {
            Some(bytes) => buf.extend_from_slice(&bytes),
            None => return,
        }
        if !header_seen {
            match noise::strip_connection_header(&mut buf) {
                Ok(true) => header_seen = true,
                Ok(false) => continue,
                Err(e) => {
                    log::warn!("wa-sim: {e:#}");
                    return;
                }
            }
        }
        if let Some(frame) = noise::take_frame(&mut buf) {
            break frame;
        }
    };

    let accepted = match noise::accept(&sim.identity, &hello) {
        Ok(a) => a,
        Err(e) => {
            log::warn!("wa-sim: handshake failed: {e:#}");
            return;
        }
    };
    let (mut transport, result) = match accepted {
        Accepted::Done(mut transport, result) => {
            let reply = transport.pending_reply.take().unwrap_or_default();
            if ws_tx.send(Message::Binary(noise::frame(&reply).into())).await.is_err() {
                return;
            }
            (transport, result)
        }
        Accepted::AwaitFinish { reply, pending } => {
            if ws_tx.send(Message::Binary(noise::frame(&reply).into())).await.is_err() {
                return;
            }
            let finish = loop {
                if let Some(frame) = noise::take_frame(&mut buf) {
                    break frame;
                }
                match next_binary(&mut ws_rx).await {
                    Some(bytes) => buf.extend_from_slice(&bytes),
                    None => return,
                }
            };
            match pending.finish(&finish) {
                Ok(done) => done,
                Err(e) => {
                    log::warn!("wa-sim: handshake finish failed: {e:#}");
                    return;
                }
            }
        }
    };

    let payload = match ClientPayload::decode_from_slice(&result.client_payload) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("wa-sim: client payload undecodable: {e}");
            return;
        }
    };

    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let conn = ConnHandle { id: sim.next_conn_id(), tx };
    let session = match sim.open_session(conn.clone(), &payload, result.client_static) {
        Ok(s) => s,
        Err(e) => {
            log::info!("wa-sim: login refused: {e:#}");
            let failure = NodeBuilder::new("failure").attr("reason", "401").build();
            if let Ok(bytes) = encode(&mut transport, &failure)
                && ws_tx.send(Message::Binary(bytes.into())).await.is_ok()
            {
                linger(&mut ws_rx).await;
                let _ = ws_tx.close().await;
            }
            return;
        }
    };
    log::debug!("wa-sim: conn {} opened as {session:?}", conn.id);

    let label = format!("{session:?}");
    let mut session = session;
    // A stream error held until the client has had its turn (see
    // `Out::StreamErrorOnTurn`), and how long it is held at most.
    let mut on_turn: Option<(Node, tokio::time::Instant)> = None;
    loop {
        let deadline = on_turn.as_ref().map(|(_, at)| *at);
        let (node, close) = tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                match out {
                    Out::Node(node) => (node, false),
                    Out::StreamError(node) => (node, true),
                    Out::StreamErrorOnTurn(node) => {
                        on_turn = Some((node, tokio::time::Instant::now() + TURN_BOUND));
                        continue;
                    }
                    Out::CloseGently => {
                        linger(&mut ws_rx).await;
                        let _ = ws_tx.close().await;
                        break;
                    }
                    Out::Close => break,
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                let Some((node, _)) = on_turn.take() else { continue };
                (node, true)
            }
            bytes = next_binary(&mut ws_rx) => {
                let Some(bytes) = bytes else { break };
                buf.extend_from_slice(&bytes);
                let mut failed = false;
                let mut handled = false;
                while let Some(frame) = noise::take_frame(&mut buf) {
                    match decode(&mut transport, &frame) {
                        Ok(node) => {
                            log::trace!("wa-sim <- {label}: {}", brief(&node));
                            sim.handle(&mut session, &conn, node);
                            handled = true;
                        }
                        Err(e) => {
                            log::warn!("wa-sim: bad frame from {label}: {e:#}");
                            failed = true;
                            break;
                        }
                    }
                }
                if failed {
                    break;
                }
                match on_turn.take() {
                    Some((node, _)) if handled => (node, true),
                    held => {
                        on_turn = held;
                        continue;
                    }
                }
            }
        };
        log::trace!("wa-sim -> {label}: {}", brief(&node));
        match encode(&mut transport, &node) {
            Ok(bytes) => {
                if ws_tx.send(Message::Binary(bytes.into())).await.is_err() {
                    break;
                }
            }
            Err(e) => log::warn!("wa-sim: cannot encode {}: {e:#}", brief(&node)),
        }
        if close {
            linger(&mut ws_rx).await;
            let _ = ws_tx.close().await;
            break;
        }
    }
    sim.close_session(&session, &conn);
    log::debug!("wa-sim: conn {} closed ({label})", conn.id);
}

/// How long a stream error sent "on the client's turn" waits for the client's
/// next stanza.
const TURN_BOUND: Duration = Duration::from_secs(1);

/// How long a connection that ends stays open for the client to read the
/// last stanza (a `<stream:error>`, `<failure>`, or the answer to its logout)
/// and close it itself.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// After the last stanza of a stream: waits for the client to close the
/// socket (whatever else it still sends is ignored), at most
/// [`CLOSE_GRACE`]. Closing at once would let a client that decodes frames
/// asynchronously see the close before the stanza that says why.
async fn linger(rx: &mut futures::stream::SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async { while next_binary(rx).await.is_some() {} }).await;
}

async fn next_binary(rx: &mut futures::stream::SplitStream<WebSocket>) -> Option<Vec<u8>> {
    loop {
        match rx.next().await? {
            Ok(Message::Binary(b)) => return Some(b.to_vec()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

fn encode(transport: &mut noise::Transport, node: &Node) -> anyhow::Result<Vec<u8>> {
    let plain = wacore_binary::marshal(node).map_err(|e| anyhow!("marshal: {e}"))?;
    Ok(noise::frame(&transport.encrypt(&plain)?))
}

fn decode(transport: &mut noise::Transport, frame: &[u8]) -> anyhow::Result<Node> {
    let plain = transport.decrypt(frame)?;
    let unpacked = wacore_binary::util::unpack(&plain).map_err(|e| anyhow!("unpack: {e}"))?;
    let node = wacore_binary::marshal::unmarshal_ref(&unpacked)
        .map_err(|e| anyhow!("unmarshal: {e}"))
        .context("stanza")?
        .to_owned();
    Ok(node)
}
