//! A sealed personal field: a versioned envelope holding the id of the subject key that sealed it,
//! a random nonce and the XChaCha20-Poly1305 ciphertext. Its associated data binds it to its
//! place (table, column and row, such as `wallets.owner/<wallet id>`): a ciphertext moved to
//! another row or column no longer opens.
//!
//! Text form, for text columns, JSON and events: `pd1.<key id>.<base64url(nonce ‖ ciphertext)>`.

use std::{fmt, str::FromStr};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    keys::{decrypt, encrypt, encrypt_with, mac, SubjectKey, NONCE_BYTES},
    PrivacyError,
};

/// Prefix of the current version of the text form.
pub const VERSION: &str = "pd1";

/// Where a field lives: its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'a> {
    /// `table.column` (or `event.field`).
    pub field: &'a str,
    /// The row's (or event's) id.
    pub row: &'a str,
}

impl<'a> Place<'a> {
    /// The field `field` of row `row`.
    pub fn new(field: &'a str, row: &'a str) -> Self {
        Self { field, row }
    }

    fn aad(&self, key_id: &str) -> Vec<u8> {
        let len = |s: &str| (s.len() as u32).to_be_bytes();
        [
            b"beryl-privacy/field/v1|".as_slice(),
            &len(key_id),
            key_id.as_bytes(),
            &len(self.field),
            self.field.as_bytes(),
            &len(self.row),
            self.row.as_bytes(),
        ]
        .concat()
    }
}

/// A sealed field.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    key_id: String,
    body: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).field("bytes", &self.body.len()).finish()
    }
}

impl Sealed {
    /// `plaintext` sealed under `key` for `place`.
    pub fn seal(key: &SubjectKey, place: Place<'_>, plaintext: &str) -> Result<Self, PrivacyError> {
        let body = encrypt(key.bytes(), &place.aad(key.id()), plaintext.as_bytes())?;
        Ok(Self { key_id: key.id().to_owned(), body })
    }

    /// `plaintext` sealed under `key` for `place` with a nonce derived from both (HMAC-SHA256):
    /// the same plaintext at the same place gives the same text, so that equal values can be
    /// grouped (the client address of repeated denials) while nothing else is revealed.
    pub fn seal_deterministic(key: &SubjectKey, place: Place<'_>, plaintext: &str) -> Result<Self, PrivacyError> {
        let aad = place.aad(key.id());
        let derived = mac(key.bytes(), &[b"beryl-privacy/nonce", &aad, plaintext.as_bytes()]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&derived[..NONCE_BYTES]);
        let body = encrypt_with(key.bytes(), nonce, &aad, plaintext.as_bytes())?;
        Ok(Self { key_id: key.id().to_owned(), body })
    }

    /// The plaintext, given the key named by [`Sealed::key_id`] and the place it was sealed for.
    pub fn open(&self, key: &SubjectKey, place: Place<'_>) -> Result<String, PrivacyError> {
        if key.id() != self.key_id {
            return Err(PrivacyError::WrongKey);
        }
        let bytes = decrypt(key.bytes(), &place.aad(&self.key_id), &self.body)?;
        String::from_utf8(bytes).map_err(|_| PrivacyError::Malformed)
    }

    /// The id of the subject key that sealed it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        format!("{VERSION}.{}.{}", self.key_id, URL_SAFE_NO_PAD.encode(&self.body))
    }

    /// Parse the text form.
    pub fn parse(text: &str) -> Result<Self, PrivacyError> {
        let mut parts = text.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(PrivacyError::Malformed);
        };
        if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PrivacyError::Malformed);
        }
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| PrivacyError::Malformed)?;
        if body.len() < NONCE_BYTES + 16 {
            return Err(PrivacyError::Malformed);
        }
        Ok(Self { key_id: key_id.to_owned(), body })
    }
}

impl fmt::Display for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Sealed {
    type Err = PrivacyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_text())
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_field_opens_with_its_key_at_its_place_only() {
        let key = SubjectKey::generate();
        let here = Place::new("wallets.owner", "w-1");
        let sealed = Sealed::seal(&key, here, "alice@example.org").unwrap();
        assert_eq!(sealed.open(&key, here).unwrap(), "alice@example.org");
        assert_eq!(sealed.open(&key, Place::new("wallets.owner", "w-2")), Err(PrivacyError::Tampered));
        assert_eq!(sealed.open(&key, Place::new("journal.reference", "w-1")), Err(PrivacyError::Tampered));
        assert_eq!(sealed.open(&SubjectKey::generate(), here), Err(PrivacyError::WrongKey));
    }

    #[test]
    fn the_text_form_round_trips_and_hides_the_plaintext() {
        let key = SubjectKey::generate();
        let place = Place::new("ledger_transactions.reference", "t-1");
        let sealed = Sealed::seal(&key, place, "invoice 42 for alice").unwrap();
        let text = sealed.to_text();
        assert!(text.starts_with(&format!("pd1.{}.", key.id())));
        assert!(!text.contains("alice"));
        let parsed: Sealed = text.parse().unwrap();
        assert_eq!(parsed, sealed);
        assert_eq!(parsed.open(&key, place).unwrap(), "invoice 42 for alice");
        let json = serde_json::to_string(&sealed).unwrap();
        assert_eq!(serde_json::from_str::<Sealed>(&json).unwrap(), sealed);
    }

    #[test]
    fn nonces_are_fresh_and_tampering_is_detected() {
        let key = SubjectKey::generate();
        let place = Place::new("f", "r");
        let (a, b) = (Sealed::seal(&key, place, "same").unwrap(), Sealed::seal(&key, place, "same").unwrap());
        assert_ne!(a.to_text(), b.to_text());
        let mut flipped = a.clone();
        if let Some(last) = flipped.body.last_mut() {
            *last ^= 1;
        }
        assert_eq!(flipped.open(&key, place), Err(PrivacyError::Tampered));
    }

    #[test]
    fn deterministic_sealing_groups_equal_values_only() {
        let key = SubjectKey::generate();
        let place = Place::new("audit.client_ip", "");
        let a = Sealed::seal_deterministic(&key, place, "203.0.113.7").unwrap();
        assert_eq!(a, Sealed::seal_deterministic(&key, place, "203.0.113.7").unwrap());
        assert_ne!(a, Sealed::seal_deterministic(&key, place, "203.0.113.8").unwrap());
        assert_ne!(a, Sealed::seal_deterministic(&SubjectKey::generate(), place, "203.0.113.7").unwrap());
        assert_eq!(a.open(&key, place).unwrap(), "203.0.113.7");
        assert!(!a.to_text().contains("203.0.113.7"));
    }

    #[test]
    fn malformed_text_is_refused() {
        for text in ["", "pd1", "pd1.abc", "pd2.abc.AAAA", "pd1..AAAA", "pd1.zz.AAAA", "pd1.ab.!!", "pd1.ab.AAAA"] {
            assert_eq!(Sealed::parse(text), Err(PrivacyError::Malformed), "{text}");
        }
    }
}
