//! The signed completion record of an erasure: what was erased, when, at whose request and what
//! each domain removed, signed (HMAC-SHA256 under a key derived from the master key, named by the
//! master key's id) so that the record handed to the caller and the one kept can be checked.
//!
//! It names the subject by its blind index only: the record outlives the subject's data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BlindIndex, MasterKey, MasterKeys};

/// Purpose of the signing key derived from the master key.
const PURPOSE: &[u8] = b"erasure-record";

/// Who asked for an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Requester {
    /// The subject, for themself.
    Subject,
    /// An administrator, for a subject, with the reason given.
    Admin {
        /// Why.
        reason: String,
    },
}

/// A completed erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureRecord {
    /// Identity of the erasure.
    pub id: Uuid,
    /// The subject's blind index (hex).
    pub subject: String,
    /// Who asked.
    pub requested_by: Requester,
    /// The id of the subject key deleted, if the subject had one.
    pub key_id: Option<String>,
    /// What each holder of personal data removed, by holder and kind.
    pub removed: BTreeMap<String, u64>,
    /// When it completed.
    pub completed_at: DateTime<Utc>,
    /// Id of the master key whose derived key signed it.
    pub signed_with: String,
    /// Hex HMAC-SHA256 of the record without its signature.
    pub signature: String,
}

impl ErasureRecord {
    /// A record of the erasure of `subject`, signed with the current master key.
    pub fn sign(
        subject: &BlindIndex,
        requested_by: Requester,
        key_id: Option<String>,
        removed: BTreeMap<String, u64>,
        completed_at: DateTime<Utc>,
        keys: &MasterKeys,
    ) -> Self {
        let mut record = Self {
            id: Uuid::now_v7(),
            subject: subject.hex(),
            requested_by,
            key_id,
            removed,
            completed_at,
            signed_with: keys.current.id().to_owned(),
            signature: String::new(),
        };
        record.signature = record.expected(&keys.current);
        record
    }

    fn expected(&self, key: &MasterKey) -> String {
        let unsigned = Self { signature: String::new(), ..self.clone() };
        // A struct of plain fields and a BTreeMap: its JSON is the same every time.
        let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
        hex::encode(key.sign(PURPOSE, &bytes))
    }

    /// Whether the signature holds under the master key it names (current or previous).
    pub fn verify(&self, keys: &MasterKeys) -> bool {
        keys.find(&self.signed_with).is_some_and(|key| self.expected(key) == self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::privacy::BlindIndexKey;

    #[test]
    fn a_record_verifies_until_altered_and_across_a_rotation() {
        let old = MasterKey::new(b"master-secret-a-0123456789abcdef0123");
        let keys = MasterKeys { current: old.clone(), previous: None };
        let subject = BlindIndexKey::new(b"index-secret-0123456789abcdef012345").subject("alice");
        let removed = BTreeMap::from([("fintech.idempotency_keys".to_owned(), 3)]);
        let record = ErasureRecord::sign(&subject, Requester::Subject, Some("ab".into()), removed, Utc::now(), &keys);
        assert!(record.verify(&keys));
        assert!(!serde_json::to_string(&record).unwrap().contains("alice"));
        let mut altered = record.clone();
        altered.removed.insert("fintech.idempotency_keys".into(), 0);
        assert!(!altered.verify(&keys));
        let rotated =
            MasterKeys { current: MasterKey::new(b"master-secret-b-0123456789abcdef0123"), previous: Some(old) };
        assert!(record.verify(&rotated));
        let forgotten = MasterKeys { current: rotated.current.clone(), previous: None };
        assert!(!record.verify(&forgotten));
    }
}
