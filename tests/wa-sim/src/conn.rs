//! One client connection: WebSocket bytes → Noise handshake → login or
//! registration → a loop of decrypted stanzas handed to the simulator.

use std::sync::Arc;

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
            if let Ok(bytes) = encode(&mut transport, &failure) {
                let _ = ws_tx.send(Message::Binary(bytes.into())).await;
            }
            return;
        }
    };
    log::debug!("wa-sim: conn {} opened as {session:?}", conn.id);

    let label = format!("{session:?}");
    let mut session = session;
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(out) = out else { break };
                let (node, close) = match out {
                    Out::Node(node) => (node, false),
                    Out::StreamError(node) => (node, true),
                    Out::Close => break,
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
                    let _ = ws_tx.close().await;
                    break;
                }
            }
            bytes = next_binary(&mut ws_rx) => {
                let Some(bytes) = bytes else { break };
                buf.extend_from_slice(&bytes);
                let mut failed = false;
                while let Some(frame) = noise::take_frame(&mut buf) {
                    match decode(&mut transport, &frame) {
                        Ok(node) => {
                            log::trace!("wa-sim <- {label}: {}", brief(&node));
                            sim.handle(&mut session, &conn, node);
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
            }
        }
    }
    sim.close_session(&session, &conn);
    log::debug!("wa-sim: conn {} closed ({label})", conn.id);
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
