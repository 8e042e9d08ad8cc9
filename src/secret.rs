//! Secret material: random generation, hashing and constant-time comparison.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use mxgate_bridge::secret::Secret;

/// `bytes` of OS randomness, base64url without padding.
pub fn random_string(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Lower-case hex of `bytes` random bytes, for identifiers that end up in Matrix ids.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Argon2id hash (PHC string) of a low-entropy-capable secret such as a client secret.
pub fn hash_password(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any input")
        .to_string()
}

/// Argon2's verification compares in constant time.
pub fn verify_password(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok())
        .unwrap_or(false)
}

/// SHA-256 hex of a high-entropy secret (an `mt_` token): enough against offline
/// guessing at 256 bits, and deterministic so it can be looked up by index.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
