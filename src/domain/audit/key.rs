//! The keys that seal the chain: HMAC-SHA256 with a secret that only the service holds, so that
//! someone who can write the audit volume but does not hold the key cannot forge a valid chain.
//!
//! A key is named by its id, a fingerprint derived from the key itself (the first 16 hex digits
//! of HMAC-SHA256(key, `beryl-audit-key-id`)), which every keyed record carries: verification
//! finds the key a record was sealed with among the current and the previous key, so that a
//! chain stays verifiable across a rotation.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Message whose MAC gives a key its id.
const KEY_ID_LABEL: &[u8] = b"beryl-audit-key-id";

/// One chain key.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey {
    id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditKey").field("id", &self.id).finish_non_exhaustive()
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail for it, but the fallback
    // keeps this total: a key is never empty once settings are validated.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut m) => {
            for part in parts {
                m.update(part);
            }
            m.finalize().into_bytes().into()
        }
        Err(_) => {
            let mut h = Sha256::new();
            h.update(secret);
            for part in parts {
                h.update(part);
            }
            h.finalize().into()
        }
    }
}

impl AuditKey {
    /// The key whose secret is `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let id = hex::encode(&mac(secret, &[KEY_ID_LABEL])[..8]);
        Self { id, secret: secret.to_vec() }
    }

    /// Its id, as records carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Lowercase hex HMAC-SHA256 of `data`.
    pub fn seal(&self, data: &[u8]) -> String {
        hex::encode(mac(&self.secret, &[data]))
    }
}

/// The keys a chain may be sealed with: the current one (which seals new records) and the one
/// being rotated out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditKeys {
    /// Seals new records; `None` writes unkeyed (plain SHA-256) records, outside production only.
    pub current: Option<AuditKey>,
    /// Still accepted when verifying.
    pub previous: Option<AuditKey>,
}

impl AuditKeys {
    /// Keys from their secrets.
    pub fn from_secrets(current: Option<&str>, previous: Option<&str>) -> Self {
        let key = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(|s| AuditKey::new(s.as_bytes()));
        Self { current: key(current), previous: key(previous) }
    }

    /// The key whose id is `id`.
    pub fn find(&self, id: &str) -> Option<&AuditKey> {
        [&self.current, &self.previous].into_iter().flatten().find(|k| k.id() == id)
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.previous.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_names_the_key_without_revealing_it() {
        let a = AuditKey::new(b"first-audit-key-0123456789abcdef01234");
        let b = AuditKey::new(b"second-audit-key-0123456789abcdef0123");
        assert_eq!(a.id().len(), 16);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), AuditKey::new(b"first-audit-key-0123456789abcdef01234").id());
        assert!(!format!("{a:?}").contains("first-audit-key"));
        let keys = AuditKeys { current: Some(b.clone()), previous: Some(a.clone()) };
        assert_eq!(keys.find(a.id()), Some(&a));
        assert_eq!(keys.find("0000000000000000"), None);
        assert_ne!(a.seal(b"x"), b.seal(b"x"));
    }
}
