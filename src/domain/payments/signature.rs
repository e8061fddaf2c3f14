//! The provider's webhook signature, as Stripe documents it: a `Stripe-Signature` header
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` where each `v1` is HMAC-SHA256, keyed by a webhook
//! secret, over `"{t}.{raw body}"`. A delivery is accepted when one `v1` matches one of the
//! secrets in use (several during a rotation), compared in constant time, and its timestamp is
//! within the tolerance of now.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::code::{Coded, ErrorCode};

type HmacSha256 = Hmac<Sha256>;

/// Name of the header carrying the signature.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Longest header accepted (a few signatures during a rotation fit easily).
const HEADER_MAX: usize = 1024;

/// Why a delivery is not accepted as the provider's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header, or one without a timestamp or a `v1` signature.
    #[error("the delivery carries no usable `Stripe-Signature` header")]
    Missing,
    /// No signature matches any webhook secret in use.
    #[error("no signature of the delivery matches a webhook secret")]
    Invalid,
    /// The timestamp is outside the tolerance window.
    #[error("the delivery's timestamp is {age_secs} s away from now, beyond the {tolerance_secs} s tolerance")]
    Stale {
        /// Distance between the timestamp and now, seconds.
        age_secs: i64,
        /// The tolerance, seconds.
        tolerance_secs: i64,
    },
    /// The very same signed delivery was already accepted within the tolerance window.
    #[error("this signed delivery was already received")]
    Replayed,
}

impl SignatureError {
    /// Bounded label: the `outcome` of the webhook deliveries counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Missing => "unsigned",
            Self::Invalid => "bad_signature",
            Self::Stale { .. } => "stale",
            Self::Replayed => "replayed",
        }
    }
}

impl Coded for SignatureError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::WebhookUnsigned,
            Self::Invalid => ErrorCode::WebhookSignatureInvalid,
            Self::Stale { .. } => ErrorCode::WebhookTimestampStale,
            Self::Replayed => ErrorCode::WebhookReplayed,
        }
    }
}

/// A delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The signed timestamp, Unix seconds.
    pub timestamp: i64,
    /// The signature that matched (hex): names this very delivery, for replay detection.
    pub signature: String,
}

/// The `Stripe-Signature` header value for `body` signed at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let signature = mac(secret, timestamp, body).map(|m| hex::encode(m.finalize().into_bytes())).unwrap_or_default();
    format!("t={timestamp},v1={signature}")
}

/// The MAC of one delivery; HMAC takes keys of any length, so it is always `Some`.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Check `header` for `body` against `secrets` at `now` (Unix seconds): the timestamp within
/// `tolerance_secs` either way, and one `v1` signature made with one of the secrets.
pub fn verify<S: AsRef<str>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, SignatureError> {
    let header = header.filter(|h| h.len() <= HEADER_MAX).ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.extend(hex::decode(s).ok().map(|bytes| (s, bytes))),
            // Other schemes (`v0`, test-mode) are not accepted.
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else { return Err(SignatureError::Missing) };
    if signatures.is_empty() {
        return Err(SignatureError::Missing);
    }
    // The signature is checked before the time, so that a forger learns nothing about the
    // window from the answer.
    let matched = signatures.iter().find(|(_, bytes)| {
        secrets
            .iter()
            .any(|secret| mac(secret.as_ref(), timestamp, body).is_some_and(|m| m.verify_slice(bytes).is_ok()))
    });
    let Some((hex, _)) = matched else { return Err(SignatureError::Invalid) };
    let age = now.saturating_sub(timestamp);
    if age.abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age, tolerance_secs });
    }
    Ok(Verified { timestamp, signature: hex.to_ascii_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn a_signed_delivery_verifies_and_names_its_signature() {
        let header = sign("whsec_new", NOW - 10, BODY);
        let verified = verify(Some(&header), BODY, &["whsec_new"], NOW, 300).unwrap();
        assert_eq!(verified.timestamp, NOW - 10);
        assert!(header.ends_with(&verified.signature));
    }

    #[test]
    fn the_signature_matches_the_documented_scheme() {
        // `printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test`
        let expected = "t=1700000000,v1=c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925";
        assert_eq!(sign("whsec_test", NOW, br#"{"id":"evt_1"}"#), expected);
    }

    #[test]
    fn during_a_rotation_both_secrets_verify_and_one_of_several_signatures_suffices() {
        let secrets = ["whsec_new", "whsec_old"];
        let old = sign("whsec_old", NOW, BODY);
        assert!(verify(Some(&old), BODY, &secrets, NOW, 300).is_ok());
        let new_sig = sign("whsec_new", NOW, BODY);
        let both = format!("{},v1={}", old, new_sig.split("v1=").nth(1).unwrap());
        assert!(verify(Some(&both), BODY, &["whsec_new"], NOW, 300).is_ok());
        assert_eq!(verify(Some(&old), BODY, &["whsec_new"], NOW, 300), Err(SignatureError::Invalid));
    }

    #[test]
    fn every_bad_delivery_has_its_reason() {
        let good = sign("s", NOW, BODY);
        let cases: Vec<(Option<String>, &[u8], i64, &str)> = vec![
            (None, BODY, NOW, "unsigned"),
            (Some(String::new()), BODY, NOW, "unsigned"),
            (Some(format!("t={NOW}")), BODY, NOW, "unsigned"),
            (Some(good.split(',').nth(1).unwrap().to_string()), BODY, NOW, "unsigned"),
            (Some(good.replace("v1=", "v0=")), BODY, NOW, "unsigned"),
            (Some(good.clone()), b"{\"id\":\"evt_2\"}", NOW, "bad_signature"),
            (Some(good.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1))), BODY, NOW, "bad_signature"),
            (Some(good.clone()), BODY, NOW + 301, "stale"),
            (Some(good.clone()), BODY, NOW - 301, "stale"),
            (Some("x".repeat(2000)), BODY, NOW, "unsigned"),
        ];
        for (header, body, now, outcome) in cases {
            let got = verify(header.as_deref(), body, &["s"], now, 300).map_err(|e| e.outcome());
            assert_eq!(got.map(|_| ()), Err(outcome), "{header:?}");
        }
        assert!(verify(Some(&good), BODY, &["s"], NOW + 300, 300).is_ok(), "the window's edge is inside");
    }
}
