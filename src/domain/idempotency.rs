//! Idempotency keys, the same for every domain and both transports: a command sent with a key
//! is applied at most once, and its result is kept under the key. The same key with the same
//! operation and request replays the kept result, whether it first came over REST or GraphQL;
//! the same key with anything else is refused, naming the fields that differ.
//!
//! What a key must always mean is the *operation* (a stable name such as `fintech.transfer`)
//! and its *request* as the domain sees it (typed and normalised, e.g. a currency code in upper
//! case), never a transport's route or body.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::code::{Coded, ErrorCode};

/// Longest accepted key.
pub const KEY_MAX: usize = 255;

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// No key, or not 1 to 255 printable ASCII characters.
    #[error("an idempotency key of 1 to 255 printable ASCII characters is required")]
    Missing,
    /// The key was used for another request; the fields named differ.
    #[error("this idempotency key was used for a different request (differs in: {})", .0.join(", "))]
    Reused(Vec<String>),
    /// Another request holding the key has not finished yet.
    #[error("this idempotency key is in use by a request still in progress; retry")]
    InUse,
    /// The key was kept by an earlier version of the service in a form no longer read: whether
    /// its request was applied is known, but not as a result to replay.
    #[error("this idempotency key was used before an upgrade; its result cannot be replayed")]
    Outdated,
}

impl Coded for IdempotencyError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::IdempotencyKeyMissing,
            Self::Reused(_) | Self::InUse | Self::Outdated => ErrorCode::IdempotencyKeyReused,
        }
    }

    /// The fields in which a reused key's request differs.
    fn extensions(&self) -> Map<String, Value> {
        match self {
            Self::Reused(fields) => Map::from_iter([("fields".to_string(), Value::from(fields.clone()))]),
            _ => Map::new(),
        }
    }
}

/// A client's key, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Check a key as sent (surrounding spaces ignored).
    pub fn parse(raw: &str) -> Result<Self, IdempotencyError> {
        let key = raw.trim();
        if key.is_empty() || key.len() > KEY_MAX || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(IdempotencyError::Missing);
        }
        Ok(Self(key.to_owned()))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A command's claim on a key, stored with what it decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Whose key (the subject): keys of different callers never collide.
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// Hash of the operation and the request.
    pub fingerprint: String,
    /// The request, to name the fields that differ when the key is reused.
    pub request: Value,
    /// When the key may be forgotten.
    pub expires_at: DateTime<Utc>,
}

impl Claim {
    /// The claim of `scope`'s `key` on `operation` with `request` (an object of the command's
    /// fields), kept until `expires_at`.
    pub fn new(scope: &str, key: &IdempotencyKey, operation: &str, request: Value, expires_at: DateTime<Utc>) -> Self {
        Self {
            scope: scope.to_owned(),
            key: key.0.clone(),
            fingerprint: fingerprint(operation, &request),
            request,
            expires_at,
        }
    }
}

/// Whether a key kept until `expires_at` has expired at `now`: an expired key is forgotten, and a
/// request sending it again counts as new.
pub fn expired(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at <= now
}

/// Hash of an operation and its request; serde_json writes an object's fields in a fixed
/// (sorted) order, so equal requests hash equally.
pub fn fingerprint(operation: &str, request: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update(b" ");
    hasher.update(request.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// What a key keeps: the request that claimed it and the result it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    /// Fingerprint of the claiming request.
    pub fingerprint: String,
    /// The claiming request.
    pub request: Value,
    /// Its result, as the domain encoded it; `None` for a key kept in an earlier form.
    pub result: Option<Value>,
}

impl Kept {
    /// The kept result for a request making `claim`: the same request replays it, any other is
    /// refused.
    pub fn replay<T: DeserializeOwned>(&self, claim: &Claim) -> Result<T, IdempotencyError> {
        let result = self.result.as_ref().ok_or(IdempotencyError::Outdated)?;
        if self.fingerprint != claim.fingerprint {
            return Err(IdempotencyError::Reused(differing_fields(&self.request, &claim.request)));
        }
        T::deserialize(result).map_err(|_| IdempotencyError::Outdated)
    }
}

/// Encode a result to keep under a key.
pub fn keep<T: Serialize>(result: &T) -> Value {
    serde_json::to_value(result).unwrap_or(Value::Null)
}

/// Fields whose values differ between two requests (`operation` when none does: the same fields
/// sent to another operation).
pub fn differing_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let (a, b) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut fields: Vec<String> = a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect();
    fields.sort();
    fields.dedup();
    if fields.is_empty() {
        fields.push("operation".into());
    }
    fields
}

/// A result and whether it replays an earlier request's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayable<T> {
    /// The result.
    pub value: T,
    /// Whether an earlier request with the same key produced it.
    pub replayed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(operation: &str, request: Value) -> Claim {
        Claim::new("alice", &IdempotencyKey::parse("k-1").unwrap(), operation, request, Utc::now())
    }

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(IdempotencyKey::parse("  abc-123 ").unwrap().as_str(), "abc-123");
        for bad in ["", "   ", "with space", "é", &"x".repeat(256)] {
            assert_eq!(IdempotencyKey::parse(bad), Err(IdempotencyError::Missing), "{bad:?}");
        }
    }

    #[test]
    fn the_same_request_replays_and_another_names_what_differs() {
        let first = claim("fintech.transfer", json!({"from": "a", "to": "b", "amount": 5}));
        let kept =
            Kept { fingerprint: first.fingerprint.clone(), request: first.request.clone(), result: Some(json!(7)) };
        assert_eq!(kept.replay::<i64>(&first), Ok(7));
        let other = claim("fintech.transfer", json!({"from": "a", "to": "b", "amount": 6}));
        assert_eq!(kept.replay::<i64>(&other), Err(IdempotencyError::Reused(vec!["amount".into()])));
        let elsewhere = claim("fintech.deposit", json!({"from": "a", "to": "b", "amount": 5}));
        assert_eq!(kept.replay::<i64>(&elsewhere), Err(IdempotencyError::Reused(vec!["operation".into()])));
    }

    #[test]
    fn a_key_expires_at_its_expiry_time() {
        let now = Utc::now();
        assert!(!expired(now + chrono::Duration::seconds(1), now));
        assert!(expired(now, now));
        assert!(expired(now - chrono::Duration::seconds(1), now));
    }

    #[test]
    fn field_order_does_not_change_the_fingerprint() {
        let a: Value = serde_json::from_str(r#"{"amount": 5, "to": "b"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"to": "b", "amount": 5}"#).unwrap();
        assert_eq!(fingerprint("op", &a), fingerprint("op", &b));
    }

    #[test]
    fn a_key_kept_in_an_earlier_form_is_never_replayed_as_something_else() {
        let first = claim("fintech.transfer", json!({"amount": 5}));
        let kept = Kept { fingerprint: first.fingerprint.clone(), request: first.request.clone(), result: None };
        assert_eq!(kept.replay::<i64>(&first), Err(IdempotencyError::Outdated));
    }
}
