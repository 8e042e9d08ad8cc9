//! The server side of WhatsApp's Noise handshake (XX, IK and XXfallback) and
//! the framed, AES-GCM transport that follows it.
//!
//! The client half lives in `wacore-noise`; this is its mirror image, built on
//! the same `NoiseHandshake` primitive so both ends share one implementation of
//! MixHash / MixKey / the cipher.

use anyhow::{Context, anyhow, bail};
use wacore::handshake::{NoiseCipher, NoiseHandshake};
use wacore::libsignal::protocol::KeyPair;
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER};
use waproto::buffa::Message as _;
use waproto::whatsapp::{self as wa, HandshakeMessage};

/// The simulator's long-term Noise identity and the certificate chain it
/// presents. The chain is signed by the simulator's own root, not WhatsApp's,
/// so clients must be built with `danger-skip-cert-chain-verify`.
pub struct ServerIdentity {
    pub static_key: KeyPair,
    cert_chain: Vec<u8>,
}

impl ServerIdentity {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let static_key = KeyPair::generate(&mut rng);
        let root = KeyPair::generate(&mut rng);
        let intermediate = KeyPair::generate(&mut rng);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (not_before, not_after) = (now.saturating_sub(86_400), now + 10 * 365 * 86_400);

        let intermediate_details = wa::cert_chain::noise_certificate::Details {
            serial: Some(1),
            issuer_serial: Some(0),
            key: Some(intermediate.public_key.public_key_bytes().to_vec()),
            not_before: Some(not_before),
            not_after: Some(not_after),
        }
        .encode_to_vec();
        let leaf_details = wa::cert_chain::noise_certificate::Details {
            serial: Some(2),
            issuer_serial: Some(1),
            key: Some(static_key.public_key.public_key_bytes().to_vec()),
            not_before: Some(not_before),
            not_after: Some(not_after),
        }
        .encode_to_vec();
        let sign = |key: &KeyPair, details: &[u8]| {
            key.private_key
                .calculate_signature(details, &mut rand::rng())
                .map(|s| s.to_vec())
                .unwrap_or_else(|_| vec![0; 64])
        };
        let chain = wa::CertChain {
            intermediate: waproto::buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
                signature: Some(sign(&root, &intermediate_details)),
                details: Some(intermediate_details),
            }),
            leaf: waproto::buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
                signature: Some(sign(&intermediate, &leaf_details)),
                details: Some(leaf_details),
            }),
        };
        Self { static_key, cert_chain: chain.encode_to_vec() }
    }

    fn static_pub(&self) -> [u8; 32] {
        key_bytes(&self.static_key)
    }
}

fn key_bytes(key: &KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.public_key.public_key_bytes());
    out
}

/// Splits the client's very first bytes into the prologue it announced and the
/// first frame: an optional edge-routing pre-intro (`ED\0\1` + 3-byte length +
/// data), then the 4-byte `WA` connection header.
pub fn strip_connection_header(buf: &mut Vec<u8>) -> anyhow::Result<bool> {
    let mut offset = 0;
    if buf.len() >= 2 && &buf[..2] == b"ED" {
        if buf.len() < 7 {
            return Ok(false);
        }
        let len = ((buf[4] as usize) << 16) | ((buf[5] as usize) << 8) | buf[6] as usize;
        offset = 7 + len;
    }
    if buf.len() < offset + 4 {
        return Ok(false);
    }
    if buf[offset..offset + 2] != WA_CONN_HEADER[..2] {
        bail!("connection does not start with the WA header");
    }
    buf.drain(..offset + 4);
    Ok(true)
}

/// Frames a payload with the 3-byte big-endian length prefix.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 3);
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    out.extend_from_slice(payload);
    out
}

/// Takes one complete frame off the front of `buf`, if there is one.
pub fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    if buf.len() < 3 {
        return None;
    }
    let len = ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize;
    if buf.len() < 3 + len {
        return None;
    }
    let frame = buf[3..3 + len].to_vec();
    buf.drain(..3 + len);
    Some(frame)
}

/// Where the handshake stands after the server has read the ClientHello.
pub enum Accepted {
    /// IK succeeded: the transport is ready and the login payload was in the hello.
    Done(Transport, HandshakeResult),
    /// XX or XXfallback: send `reply`, then feed the ClientFinish to `finish`.
    AwaitFinish { reply: Vec<u8>, pending: PendingXx },
}

pub struct HandshakeResult {
    pub client_static: [u8; 32],
    pub client_payload: Vec<u8>,
}

pub struct PendingXx {
    noise: NoiseHandshake,
    server_ephemeral: KeyPair,
}

/// Reads the ClientHello (the frame after the connection header) and answers it.
pub fn accept(identity: &ServerIdentity, hello: &[u8]) -> anyhow::Result<Accepted> {
    let msg = HandshakeMessage::decode_from_slice(hello).context("ClientHello is not a HandshakeMessage")?;
    let client_hello = msg.client_hello.into_option().ok_or_else(|| anyhow!("no ClientHello"))?;
    let client_eph: [u8; 32] = client_hello
        .ephemeral
        .as_deref()
        .and_then(|e| e.try_into().ok())
        .ok_or_else(|| anyhow!("ClientHello ephemeral is not 32 bytes"))?;

    if let (Some(enc_static), Some(enc_payload)) = (&client_hello.r#static, &client_hello.payload) {
        match try_ik(identity, &client_eph, enc_static, enc_payload) {
            Ok(done) => return Ok(done),
            Err(e) => {
                log::info!("wa-sim: IK resume refused ({e:#}); answering with XXfallback");
                let mut noise = NoiseHandshake::new(NOISE_PATTERN_XXFALLBACK, &WA_CONN_HEADER)?;
                noise.authenticate(&client_eph);
                return xx_server_hello(identity, noise, &client_eph);
            }
        }
    }
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER)?;
    noise.authenticate(&client_eph);
    xx_server_hello(identity, noise, &client_eph)
}

fn xx_server_hello(
    identity: &ServerIdentity,
    mut noise: NoiseHandshake,
    client_eph: &[u8; 32],
) -> anyhow::Result<Accepted> {
    let server_ephemeral = KeyPair::generate(&mut rand::rng());
    let eph_pub = key_bytes(&server_ephemeral);
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(server_ephemeral.private_key.serialize(), client_eph)?;
    let enc_static = noise.encrypt(&identity.static_pub())?;
    noise.mix_shared_secret(identity.static_key.private_key.serialize(), client_eph)?;
    let enc_cert = noise.encrypt(&identity.cert_chain)?;
    let reply = HandshakeMessage {
        server_hello: waproto::buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(eph_pub.to_vec()),
            r#static: Some(enc_static),
            payload: Some(enc_cert),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    Ok(Accepted::AwaitFinish { reply, pending: PendingXx { noise, server_ephemeral } })
}

fn try_ik(
    identity: &ServerIdentity,
    client_eph: &[u8; 32],
    enc_static: &[u8],
    enc_payload: &[u8],
) -> anyhow::Result<Accepted> {
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
    noise.authenticate(&identity.static_pub());
    noise.authenticate(client_eph);
    noise.mix_shared_secret(identity.static_key.private_key.serialize(), client_eph)?;
    let client_static: [u8; 32] =
        noise.decrypt(enc_static)?.try_into().map_err(|_| anyhow!("client static is not 32 bytes"))?;
    noise.mix_shared_secret(identity.static_key.private_key.serialize(), &client_static)?;
    let client_payload = noise.decrypt(enc_payload)?;

    let server_ephemeral = KeyPair::generate(&mut rand::rng());
    let eph_pub = key_bytes(&server_ephemeral);
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(server_ephemeral.private_key.serialize(), client_eph)?;
    noise.mix_shared_secret(server_ephemeral.private_key.serialize(), &client_static)?;
    let enc_cert = noise.encrypt(&identity.cert_chain)?;
    let reply = HandshakeMessage {
        server_hello: waproto::buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(eph_pub.to_vec()),
            payload: Some(enc_cert),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let (client_write, client_read) = noise.finish()?;
    let mut transport = Transport::new(client_write, client_read);
    transport.pending_reply = Some(reply);
    Ok(Accepted::Done(transport, HandshakeResult { client_static, client_payload }))
}

impl PendingXx {
    /// Reads the ClientFinish and completes the handshake.
    pub fn finish(mut self, finish: &[u8]) -> anyhow::Result<(Transport, HandshakeResult)> {
        let msg = HandshakeMessage::decode_from_slice(finish).context("ClientFinish is not a HandshakeMessage")?;
        let client_finish = msg.client_finish.into_option().ok_or_else(|| anyhow!("no ClientFinish"))?;
        let enc_static = client_finish.r#static.ok_or_else(|| anyhow!("ClientFinish without static"))?;
        let enc_payload = client_finish.payload.ok_or_else(|| anyhow!("ClientFinish without payload"))?;
        let client_static: [u8; 32] =
            self.noise.decrypt(&enc_static)?.try_into().map_err(|_| anyhow!("client static is not 32 bytes"))?;
        self.noise.mix_shared_secret(self.server_ephemeral.private_key.serialize(), &client_static)?;
        let client_payload = self.noise.decrypt(&enc_payload)?;
        let (client_write, client_read) = self.noise.finish()?;
        Ok((Transport::new(client_write, client_read), HandshakeResult { client_static, client_payload }))
    }
}

/// The post-handshake transport: each frame is AES-GCM under a per-direction
/// counter.
pub struct Transport {
    read: NoiseCipher,
    write: NoiseCipher,
    read_counter: u32,
    write_counter: u32,
    /// The IK ServerHello still to be sent in clear before any encrypted frame.
    pub pending_reply: Option<Vec<u8>>,
}

impl Transport {
    /// `client_write`/`client_read` are the keys as the client names them.
    fn new(client_write: NoiseCipher, client_read: NoiseCipher) -> Self {
        Self { read: client_write, write: client_read, read_counter: 0, write_counter: 0, pending_reply: None }
    }

    pub fn decrypt(&mut self, frame: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut buf = frame.to_vec();
        self.read
            .decrypt_in_place_with_counter(self.read_counter, &mut buf)
            .map_err(|e| anyhow!("frame decrypt failed: {e}"))?;
        self.read_counter += 1;
        Ok(buf)
    }

    pub fn encrypt(&mut self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let out = self
            .write
            .encrypt_with_counter(self.write_counter, plaintext)
            .map_err(|e| anyhow!("frame encrypt failed: {e}"))?;
        self.write_counter += 1;
        Ok(out)
    }
}
