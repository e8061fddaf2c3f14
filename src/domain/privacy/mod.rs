//! Personal data, one way for every domain: each data subject has a key, every personal field is
//! sealed under it ([`Sealed`], bound to its place), searchable fields are found through a keyed
//! [`BlindIndex`], and erasing a subject deletes the key (crypto-shredding), so that every copy of
//! the fields (tables, backups, events retained on the broker, audit files) becomes unreadable.
//!
//! Pure: the keys are stored and cached by `adapters::privacy`.

mod envelope;
mod keys;
mod record;

pub use envelope::{Place, Sealed, VERSION};
pub(crate) use keys::mac;
pub use keys::{BlindIndex, BlindIndexKey, MasterKey, MasterKeys, SubjectKey, KEY_BYTES, NONCE_BYTES};
pub use record::{ErasureRecord, Requester};

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::code::{Coded, ErrorCode};

/// Why a personal field or key could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivacyError {
    /// A sealed field or wrapped key is not in a form this service writes.
    #[error("a sealed field or key is malformed")]
    Malformed,
    /// The ciphertext does not open: altered, moved to another place, or another key's.
    #[error("a sealed field or key does not open: altered or moved")]
    Tampered,
    /// The field was sealed under another key than the one given.
    #[error("the field was sealed under another key")]
    WrongKey,
    /// A wrapped key names a master key this process does not hold.
    #[error("no master key with id {0} is configured")]
    UnknownMasterKey(String),
}

impl Coded for PrivacyError {
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}

/// A data subject, as the holders of personal data are asked about them: by id (a token's `sub`)
/// and by blind index (how stores that seal their fields find the subject's rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The subject's id.
    pub id: String,
    /// Its blind index.
    pub index: BlindIndex,
}

/// A personal field as a reader gets it: its value, or erased (its subject's key was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Personal<T> {
    /// Readable.
    Value(T),
    /// Erased: rendered as `null` beside `erased: true`.
    Erased,
}

impl<T> Personal<T> {
    /// The value, `None` when erased.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            Self::Erased => None,
        }
    }

    /// Whether the field was erased.
    pub fn is_erased(&self) -> bool {
        matches!(self, Self::Erased)
    }

    /// The value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Personal<U> {
        match self {
            Self::Value(v) => Personal::Value(f(v)),
            Self::Erased => Personal::Erased,
        }
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    /// The value, or `null` when erased.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Personal<T> {
    /// `null` is erased.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map_or(Self::Erased, Self::Value))
    }
}

/// A category of personal data with a retention period of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Client IP addresses in the audit trail.
    AuditIp,
    /// Exact ride coordinates (mobility).
    RideCoordinates,
    /// Idempotency keys with the requests and receipts they keep.
    IdempotencyResponses,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 3] = [Self::AuditIp, Self::RideCoordinates, Self::IdempotencyResponses];

    /// Its name, as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuditIp => "audit_ip",
            Self::RideCoordinates => "ride_coordinates",
            Self::IdempotencyResponses => "idempotency_responses",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erased_field_renders_as_null() {
        #[derive(Serialize)]
        struct Row {
            owner: Personal<String>,
            erased: bool,
        }
        let owner = Personal::Erased;
        let row = Row { erased: owner.is_erased(), owner };
        assert_eq!(serde_json::to_value(&row).unwrap(), serde_json::json!({"owner": null, "erased": true}));
        let row = Row { owner: Personal::Value("alice".into()), erased: false };
        assert_eq!(serde_json::to_value(&row).unwrap(), serde_json::json!({"owner": "alice", "erased": false}));
        assert_eq!(serde_json::from_str::<Personal<String>>("null").unwrap(), Personal::Erased);
        assert_eq!(serde_json::from_str::<Personal<String>>("\"a\"").unwrap(), Personal::Value("a".into()));
    }
}
