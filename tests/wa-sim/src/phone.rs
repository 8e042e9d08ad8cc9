//! The simulated primary device ("phone") of an account.
//!
//! A phone owns the account's identity key. Linking a companion is the phone
//! signing that companion's identity (ADV, "Account Device Verification") and
//! HMAC-ing the result with the secret the companion showed in its QR code —
//! what `wacore::pair::PairUtils::do_pair_crypto` verifies on the other side.
//! The phone also publishes a Signal pre-key bundle for device 0, so clients
//! can open sessions with it the normal way; what they send it is recorded,
//! never decrypted.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wacore::libsignal::protocol::KeyPair;
use waproto::buffa::Message as _;
use waproto::whatsapp as wa;

const ADV_PREFIX_ACCOUNT_SIGNATURE: &[u8] = &[6, 0];
const ADV_PREFIX_KEY_INDEX_LIST: &[u8] = &[6, 2];

pub struct Phone {
    pub identity: KeyPair,
    pub registration_id: u32,
    pub signed_pre_key_id: u32,
    pub signed_pre_key: KeyPair,
    pub signed_pre_key_signature: Vec<u8>,
    /// One-time pre-keys not yet handed out.
    pub pre_keys: Vec<(u32, [u8; 32])>,
    /// `rawId` of the account's ADV identities; constant per account.
    pub raw_id: u32,
}

impl Phone {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let identity = KeyPair::generate(&mut rng);
        let signed_pre_key = KeyPair::generate(&mut rng);
        let signed_pre_key_signature = identity
            .private_key
            .calculate_signature(&signed_pre_key.public_key.serialize(), &mut rng)
            .expect("signing with a fresh key")
            .to_vec();
        let pre_keys = (1..=50).map(|id| (id, pub_bytes(&KeyPair::generate(&mut rng)))).collect();
        Self {
            identity,
            registration_id: rand::random::<u32>() & 0x3FFF,
            signed_pre_key_id: 1,
            signed_pre_key,
            signed_pre_key_signature,
            pre_keys,
            raw_id: rand::random::<u32>(),
        }
    }

    pub fn identity_pub(&self) -> [u8; 32] {
        pub_bytes(&self.identity)
    }

    /// Signs a companion's identity key as this account's phone, returning the
    /// `ADVSignedDeviceIdentityHMAC` bytes that go into `<pair-success>`.
    pub fn sign_companion(&self, companion_identity: &[u8; 32], adv_secret: &[u8], key_index: u32) -> Vec<u8> {
        let details = wa::ADVDeviceIdentity {
            raw_id: Some(self.raw_id),
            timestamp: Some(crate::stanza::now_secs()),
            key_index: Some(key_index),
            ..Default::default()
        }
        .encode_to_vec();
        let mut msg = Vec::with_capacity(2 + details.len() + 32);
        msg.extend_from_slice(ADV_PREFIX_ACCOUNT_SIGNATURE);
        msg.extend_from_slice(&details);
        msg.extend_from_slice(companion_identity);
        let account_signature = self
            .identity
            .private_key
            .calculate_signature(&msg, &mut rand::rng())
            .expect("signing with the account key")
            .to_vec();
        let signed = wa::ADVSignedDeviceIdentity {
            details: Some(details),
            account_signature_key: Some(self.identity_pub().to_vec()),
            account_signature: Some(account_signature),
            device_signature: None,
        }
        .encode_to_vec();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(adv_secret).expect("HMAC takes any key length");
        mac.update(&signed);
        wa::ADVSignedDeviceIdentityHMAC {
            details: Some(signed),
            hmac: Some(mac.finalize().into_bytes().to_vec()),
            account_type: None,
        }
        .encode_to_vec()
    }
}

impl Phone {
    /// The account's signed list of valid companion key indexes, as usync's
    /// `<key-index-list>` carries it.
    pub fn key_index_list(&self, valid_indexes: Vec<u32>, timestamp: u64) -> Vec<u8> {
        let details = wa::ADVKeyIndexList {
            raw_id: Some(self.raw_id),
            timestamp: Some(timestamp),
            current_index: valid_indexes.iter().copied().max(),
            valid_indexes,
            ..Default::default()
        }
        .encode_to_vec();
        let mut msg = Vec::with_capacity(2 + details.len());
        msg.extend_from_slice(ADV_PREFIX_KEY_INDEX_LIST);
        msg.extend_from_slice(&details);
        let account_signature = self
            .identity
            .private_key
            .calculate_signature(&msg, &mut rand::rng())
            .expect("signing with the account key")
            .to_vec();
        wa::ADVSignedKeyIndexList {
            details: Some(details),
            account_signature: Some(account_signature),
            account_signature_key: Some(self.identity_pub().to_vec()),
        }
        .encode_to_vec()
    }
}

pub fn pub_bytes(key: &KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.public_key.public_key_bytes());
    out
}

/// What a companion's QR code carries:
/// `ref,base64(noise pub),base64(identity pub),base64(adv secret)[,client type]`.
#[derive(Debug, Clone)]
pub struct QrCode {
    pub pairing_ref: String,
    pub noise_pub: [u8; 32],
    pub identity_pub: [u8; 32],
    pub adv_secret: Vec<u8>,
}

impl std::str::FromStr for QrCode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.trim();
        let body = body.rsplit_once('#').map_or(body, |(_, tail)| tail);
        let parts: Vec<&str> = body.split(',').collect();
        if parts.len() < 4 {
            anyhow::bail!("a QR code has at least 4 comma-separated fields, this one has {}", parts.len());
        }
        let key = |i: usize, what: &str| -> anyhow::Result<[u8; 32]> {
            BASE64_STANDARD
                .decode(parts[i])
                .map_err(|e| anyhow::anyhow!("QR {what} is not base64: {e}"))?
                .try_into()
                .map_err(|_| anyhow::anyhow!("QR {what} is not 32 bytes"))
        };
        Ok(Self {
            pairing_ref: parts[0].to_string(),
            noise_pub: key(1, "noise key")?,
            identity_pub: key(2, "identity key")?,
            adv_secret: BASE64_STANDARD
                .decode(parts[3])
                .map_err(|e| anyhow::anyhow!("QR adv secret is not base64: {e}"))?,
        })
    }
}
