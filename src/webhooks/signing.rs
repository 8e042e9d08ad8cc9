//! How a delivery is signed: the [Standard Webhooks](https://www.standardwebhooks.com/)
//! headers, which the spec's libraries verify in any language, and `X-Mxgate-Signature`
//! for receivers written before them. Both cover the timestamp, so a captured delivery
//! cannot be replayed later under a fresh one, and both carry one signature per secret
//! that is signing (two during a rotation's grace period).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use standardwebhooks::Webhook;

use crate::secret::Secret;

const PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and the base64 of 32 random bytes, as the spec's
/// libraries take it.
pub fn new_secret() -> Secret {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    Secret::new(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The Standard Webhooks key of `secret`: the bytes a `whsec_` secret encodes; for a
/// secret from before them (not `whsec_`), its own bytes, which receivers pass to the
/// libraries as `whsec_` and their base64.
fn standard_key(secret: &Secret) -> Webhook {
    let text = secret.expose();
    let decoded = text.strip_prefix(PREFIX).and_then(|key| STANDARD.decode(key).ok());
    Webhook::from_bytes(decoded.unwrap_or_else(|| text.as_bytes().to_vec())).expect("any key is accepted")
}

/// The signing headers of one attempt of delivery `id`, sent at `timestamp` (unix seconds).
pub fn headers(secrets: &[&Secret], id: &str, timestamp: i64, body: &str) -> [(&'static str, String); 5] {
    let standard = secrets
        .iter()
        .map(|secret| standard_key(secret).sign(id, timestamp, body.as_bytes()).expect("the body is UTF-8"))
        .collect::<Vec<_>>()
        .join(" ");
    let legacy = secrets.iter().map(|secret| legacy_signature(secret, timestamp, body)).collect::<Vec<_>>().join(" ");
    [
        (standardwebhooks::HEADER_WEBHOOK_ID, id.to_owned()),
        (standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string()),
        (standardwebhooks::HEADER_WEBHOOK_SIGNATURE, standard),
        ("X-Mxgate-Timestamp", timestamp.to_string()),
        ("X-Mxgate-Signature", legacy),
    ]
}

/// `sha256=<hex HMAC-SHA256 of "timestamp.body">`, keyed with the secret's text.
fn legacy_signature(secret: &Secret, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn header_map(headers: &[(&'static str, String)]) -> HeaderMap {
        headers.iter().map(|(name, value)| (name.parse().unwrap(), value.parse().unwrap())).collect()
    }

    #[test]
    fn the_spec_library_verifies_with_either_secret_of_a_rotation() {
        let (old, new) = (new_secret(), new_secret());
        let now = chrono::Utc::now().timestamp();
        let body = r#"{"type":"m.text","message":"hello"}"#;
        let headers = header_map(&headers(&[&new, &old], "delivery-1", now, body));
        for secret in [&new, &old] {
            Webhook::new(secret.expose()).unwrap().verify(body.as_bytes(), &headers).unwrap();
        }
        let other = new_secret();
        assert!(Webhook::new(other.expose()).unwrap().verify(body.as_bytes(), &headers).is_err());
        assert!(Webhook::new(new.expose()).unwrap().verify(b"{}", &headers).is_err(), "the body is signed");
    }

    #[test]
    fn the_timestamp_is_signed_and_checked() {
        let secret = new_secret();
        let body = "{}";
        let stale = chrono::Utc::now().timestamp() - 3600;
        let headers = header_map(&headers(&[&secret], "delivery-1", stale, body));
        let verifier = Webhook::new(secret.expose()).unwrap();
        assert!(verifier.verify(body.as_bytes(), &headers).is_err(), "an hour-old delivery is refused");
        // A replay under a fresh timestamp fails the signature, in both schemes.
        let fresh = chrono::Utc::now().timestamp();
        let mut replayed = headers.clone();
        replayed.insert("webhook-timestamp", fresh.to_string().parse().unwrap());
        assert!(verifier.verify(body.as_bytes(), &replayed).is_err());
        assert_ne!(legacy_signature(&secret, fresh, body), legacy_signature(&secret, stale, body));
    }

    #[test]
    fn a_secret_from_before_whsec_signs_with_its_own_bytes() {
        let legacy = Secret::new("Zm9vYmFyLWJhc2U2NHVybC1ub3QtcGFkZGVk_-");
        let now = chrono::Utc::now().timestamp();
        let headers = header_map(&headers(&[&legacy], "d", now, "{}"));
        let as_documented = format!("whsec_{}", STANDARD.encode(legacy.expose()));
        Webhook::new(&as_documented).unwrap().verify(b"{}", &headers).unwrap();
    }
}
