//! Linking by phone number ("pair code"). The companion shows an 8-character
//! code; the user types it on the phone; the two sides derive the companion's
//! ADV secret through a key exchange the server only relays:
//!
//! 1. `companion_hello` (companion → server IQ): the companion's ephemeral
//!    public key, AES-CTR-encrypted under a PBKDF2 key from the code. The
//!    server keeps it under the phone number and answers with a pairing ref.
//! 2. `primary_hello` (phone → companion notification): the phone decrypts
//!    that key with the code the user typed and sends its own ephemeral key
//!    wrapped the same way, with its identity key.
//! 3. `companion_finish` (companion → server IQ, relayed to the phone): both
//!    identity keys and 32 random bytes, AES-GCM-encrypted under a key from the
//!    ephemeral DH. A mistyped code leaves the two sides with different
//!    ephemeral keys, so this is where the phone finds out: the bundle does not
//!    open. Otherwise the ADV secret is HKDF(ephemeral DH ‖ identity DH ‖ random).
//! 4. `pair-success`, signed and HMAC-ed with that secret exactly as after a
//!    QR scan.
//!
//! Wrapping a key with a code is the same operation on both ends, so the
//! phone uses wacore's `PairCodeUtils` for it, from the primary's side.

use std::time::Duration;

use anyhow::{anyhow, bail};
use wacore::crypto::hkdf_sha256_into;
use wacore::libsignal::crypto::aes_256_gcm_decrypt;
use wacore::libsignal::protocol::{KeyPair, PublicKey};
use wacore::pair_code::PairCodeUtils;
use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node};

use crate::phone::pub_bytes;
use crate::sim::Sim;
use crate::stanza::{self, attr, bytes, child, iq_error, iq_result, jid_attr, server_jid};
use crate::state::{CodePairing, CompanionFinish, ConnHandle};

/// salt (32) ‖ IV (12) ‖ AES-GCM(companion identity ‖ primary identity ‖ random, 96) ‖ tag (16)
const KEY_BUNDLE_LEN: usize = 32 + 12 + 96 + 16;

/// A `<link_code_companion_reg>` IQ from a device that is not linked yet.
pub fn companion_iq(sim: &Sim, conn: &ConnHandle, req: &Node, reg: &Node) -> Node {
    let field = |tag: &str| child(reg, tag).and_then(bytes);
    match attr(reg, "stage").as_deref() {
        Some("companion_hello") => {
            let (Some(phone), Some(wrapped), Some(auth_key)) = (
                jid_attr(reg, "jid").map(|j| j.user.to_string()),
                field("link_code_pairing_wrapped_companion_ephemeral_pub").filter(|w| w.len() == 80),
                field("companion_server_auth_key_pub"),
            ) else {
                return iq_error(req, 400, "bad-request");
            };
            let mut st = sim.state();
            if !st.accounts.contains_key(&phone) {
                log::info!("wa-sim: pair code requested for {phone}, which has no account");
                return iq_error(req, 400, "bad-request");
            }
            // The key the device names must be the one it did its Noise handshake with.
            if !st.pending_pairings.values().any(|p| p.conn.id == conn.id && p.noise_pub[..] == *auth_key) {
                return iq_error(req, 400, "bad-request");
            }
            let pairing_ref = stanza::random_id().into_bytes();
            st.code_pairings.insert(
                phone,
                CodePairing {
                    conn: conn.clone(),
                    pairing_ref: pairing_ref.clone(),
                    wrapped_ephemeral: wrapped.to_vec(),
                },
            );
            iq_result(
                req,
                vec![
                    NodeBuilder::new("link_code_companion_reg")
                        .children([NodeBuilder::new("link_code_pairing_ref").bytes(pairing_ref).build()])
                        .build(),
                ],
            )
        }
        Some("companion_finish") => {
            let (Some(pairing_ref), Some(bundle), Some(identity_pub)) = (
                field("link_code_pairing_ref"),
                field("link_code_pairing_wrapped_key_bundle"),
                field("companion_identity_public").and_then(|b| <[u8; 32]>::try_from(b).ok()),
            ) else {
                return iq_error(req, 400, "bad-request");
            };
            let Some(phone) = sim.state().awaiting_finish.remove(pairing_ref) else {
                return iq_error(req, 400, "bad-request");
            };
            // The server acknowledges the relay; whether the phone can open the
            // bundle is never reported back to the companion.
            let _ = phone.send(CompanionFinish { wrapped_key_bundle: bundle.to_vec(), identity_pub });
            iq_result(req, Vec::new())
        }
        _ => iq_error(req, 400, "bad-request"),
    }
}

/// The phone of `phone_number` takes the code the user typed: `primary_hello`
/// to the device that asked for a code for this number, then — once its
/// `companion_finish` opens — the same linking as a QR scan.
pub async fn enter(sim: &Sim, phone_number: &str, code: &str) -> anyhow::Result<Jid> {
    // WhatsApp shows codes as `ABCD-EFGH`; the phone takes them either way.
    let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_uppercase();
    if !PairCodeUtils::validate_code(&code) {
        bail!("{code:?} is not a pair code: 8 characters of 1-9 and A-Z without I, O and U");
    }
    let (pairing, identity) = {
        let st = sim.state();
        let acc = st.accounts.get(phone_number).ok_or_else(|| anyhow!("no account {phone_number}; create it first"))?;
        let pairing = st
            .code_pairings
            .get(phone_number)
            .cloned()
            .ok_or_else(|| anyhow!("no device asked for a pair code for {phone_number}"))?;
        (pairing, acc.phone.identity.clone())
    };

    // Two PBKDF2 derivations of 2^17 rounds each: off the async workers.
    let wrapped = pairing.wrapped_ephemeral.clone();
    let hello = tokio::task::spawn_blocking(move || PrimaryHello::new(&code, &wrapped)).await??;

    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel();
    sim.state().awaiting_finish.insert(pairing.pairing_ref.clone(), finish_tx);
    pairing.conn.send(
        NodeBuilder::new("notification")
            .attr("from", server_jid())
            .attr("type", "link_code_companion_reg")
            .attr("id", stanza::random_id())
            .attr("t", stanza::now_secs().to_string())
            .children([NodeBuilder::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children([
                    NodeBuilder::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                        .bytes(hello.wrapped.to_vec())
                        .build(),
                    NodeBuilder::new("primary_identity_pub").bytes(pub_bytes(&identity).to_vec()).build(),
                    NodeBuilder::new("link_code_pairing_ref").bytes(pairing.pairing_ref.clone()).build(),
                ])
                .build()])
            .build(),
    );

    // The companion itself writes the code off after this long without
    // pair-success, so waiting longer would link a device that gave up.
    let window: Duration = PairCodeUtils::primary_hello_pair_success_timeout();
    let finish = match tokio::time::timeout(window, finish_rx).await {
        Ok(Ok(finish)) => finish,
        Ok(Err(_)) => bail!("the device left before it answered the phone"),
        Err(_) => {
            sim.state().awaiting_finish.remove(&pairing.pairing_ref);
            bail!("the device did not answer the phone within {window:?}");
        }
    };
    // A wrong code fails here; the request stays, so the user may type it again.
    let adv_secret = hello.open(&identity, &finish)?;

    let mut st = sim.state();
    if st.code_pairings.get(phone_number).is_none_or(|p| p.pairing_ref != pairing.pairing_ref) {
        bail!("the device asked for a new code while the phone was linking it");
    }
    st.code_pairings.remove(phone_number);
    let pending = st
        .pending_pairings
        .iter()
        .find(|(_, p)| p.conn.id == pairing.conn.id)
        .map(|(r, _)| r.clone())
        .and_then(|r| st.pending_pairings.remove(&r))
        .ok_or_else(|| anyhow!("the device is no longer waiting to be linked"))?;
    if pending.identity_pub != finish.identity_pub {
        bail!("the key bundle carries another identity key than the device registered with");
    }
    sim.link(&mut st, phone_number, pending, &adv_secret)
}

/// The phone's half of the exchange for one typed code.
struct PrimaryHello {
    ephemeral: KeyPair,
    /// The companion's ephemeral key — garbage if the code was mistyped.
    companion_ephemeral: [u8; 32],
    /// The phone's ephemeral key, wrapped with the typed code.
    wrapped: [u8; 80],
}

impl PrimaryHello {
    fn new(code: &str, companion_wrapped: &[u8]) -> anyhow::Result<Self> {
        let companion_ephemeral = PairCodeUtils::decrypt_primary_ephemeral_pub(companion_wrapped, code)
            .map_err(|e| anyhow!("companion ephemeral key: {e}"))?;
        let ephemeral = KeyPair::generate(&mut rand::rng());
        let wrapped = PairCodeUtils::encrypt_ephemeral_pub(&pub_bytes(&ephemeral), code);
        Ok(Self { ephemeral, companion_ephemeral, wrapped })
    }

    /// Opens the companion's key bundle and derives its ADV secret.
    fn open(&self, phone_identity: &KeyPair, finish: &CompanionFinish) -> anyhow::Result<[u8; 32]> {
        let sealed = &finish.wrapped_key_bundle;
        if sealed.len() != KEY_BUNDLE_LEN {
            bail!("a key bundle is {KEY_BUNDLE_LEN} bytes, this one {}", sealed.len());
        }
        let (salt, rest) = sealed.split_at(32);
        let (iv, ciphertext) = rest.split_at(12);
        let companion_ephemeral = PublicKey::from_djb_public_key_bytes(&self.companion_ephemeral)?;
        let ephemeral_shared = self.ephemeral.private_key.calculate_agreement(&companion_ephemeral)?;
        let mut key = [0u8; 32];
        hkdf_sha256_into(&ephemeral_shared, Some(salt), b"link_code_pairing_key_bundle_encryption_key", &mut key)
            .map_err(|e| anyhow!("bundle key: {e:?}"))?;
        let mut bundle = Vec::with_capacity(96);
        aes_256_gcm_decrypt(&key, iv.try_into()?, b"", ciphertext, &mut bundle)
            .map_err(|_| anyhow!("the code typed on the phone is not the one the device shows"))?;

        let (companion_identity, rest) = bundle.split_at(32);
        let (primary_identity, random) = rest.split_at(32);
        if companion_identity != finish.identity_pub || primary_identity != pub_bytes(phone_identity) {
            bail!("the key bundle names other identity keys than those of this exchange");
        }
        let identity_shared = phone_identity
            .private_key
            .calculate_agreement(&PublicKey::from_djb_public_key_bytes(companion_identity)?)?;
        let secret_material = [&ephemeral_shared[..], &identity_shared[..], random].concat();
        let mut adv_secret = [0u8; 32];
        hkdf_sha256_into(&secret_material, None, b"adv_secret", &mut adv_secret)
            .map_err(|e| anyhow!("ADV secret: {e:?}"))?;
        Ok(adv_secret)
    }
}
