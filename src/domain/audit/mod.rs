//! The audit trail: who did what to which resource, with what outcome. Records form a hash
//! chain, so a changed byte, a deleted line or a reordered line is detected at the line where it
//! happened.
//!
//! # Record format
//!
//! One record per line: compact JSON (no whitespace) ending in `\n`, with members in this order:
//!
//! ```text
//! {"seq":1,"time":"…","subject":…,"action":"…","resource":"…","outcome":"…","status":201,"request_id":…,"client_ip":…,["count":…,]["money":{…},]["reason":"…",]["subject_index":"…",]["key_id":"…",]"prev_hash":"…","hash":"…"}
//! ```
//!
//! - `seq` starts at 1 and grows by one per record, continuous across rotated files;
//! - `time` is RFC 3339 in UTC with a `Z` suffix and 0, 3, 6 or 9 fractional digits (as chrono
//!   writes it);
//! - absent optional members up to `client_ip` are written as `null`, never left out;
//! - `count` is present only on a record that stands for several denied requests (see
//!   [`DenialAggregator`]), `money` only on a money movement ([`MoneyMovement`]: transaction id,
//!   kind, amount, currency, from and to wallets), `key_id` only on a keyed record;
//! - strings are escaped as serde_json escapes them.
//!
//! # Hash
//!
//! `hash` is computed over the UTF-8 bytes of the record's canonical form without its `hash`
//! member: `{"seq":…,…,"prev_hash":"…"}`, which is the line with `,"hash":"…"` taken out. A
//! keyed record (one with `key_id`) carries the lowercase hex HMAC-SHA256 of those bytes under the
//! key of that id (see [`AuditKey`]); an unkeyed record, as written before keys existed or by a
//! service without a key outside production, carries their plain SHA-256. Once a chain holds a
//! keyed record, an unkeyed one after it is a break: it could have been written by anyone. The
//! first record's `prev_hash` is [`GENESIS_HASH`] (64 zeros); every later record carries the `hash`
//! of the record before it.
//!
//! A line is accepted only if it is, byte for byte, the canonical form of the record it parses to,
//! so an edit that parses to the same values (the `T` of the time turned into a space, say) is
//! caught as well.
//!
//! # Limits
//!
//! A chain cannot show that records were cut off its end: deleting the last lines of the live file
//! leaves a valid, shorter chain. The writer therefore records each log's head (seq and hash) in
//! PostgreSQL as it goes (`audit_chain_heads`), and `audit verify` compares the file with it. The
//! head is also logged at open, at every rotation and at shutdown, and exported as the
//! `beryl_audit_last_seq` gauge.

mod aggregate;
mod chain;
pub mod verify;

mod key;

pub use aggregate::{DenialAggregator, DenialKey};
pub use chain::{check_bytes, ChainBreak, ChainVerifier, LineProblem};
pub use key::{AuditKey, AuditKeys};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Field (the associated data's) of a record's sealed subject.
pub const SEALED_SUBJECT: &str = "audit.subject";
/// Field of a record's sealed client address.
pub const SEALED_CLIENT_IP: &str = "audit.client_ip";

/// Outcome of an action that was carried out.
pub const OUTCOME_SUCCESS: &str = "success";
/// Outcome of an action refused for lack of authentication or authorization.
pub const OUTCOME_DENIED: &str = "denied";
/// Outcome of an action that was allowed but failed.
pub const OUTCOME_FAILURE: &str = "failure";

/// Something worth a line in the audit trail: an action on a resource and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Who acted (the token's subject); `None` when the caller was not authenticated.
    pub subject: Option<String>,
    /// What was attempted, e.g. `POST /api/v1/wallets/{id}/transfers`.
    pub action: String,
    /// What it was attempted on, e.g. the request path.
    pub resource: String,
    /// How it ended: [`OUTCOME_SUCCESS`], [`OUTCOME_DENIED`] or [`OUTCOME_FAILURE`].
    pub outcome: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Correlation id of the request.
    pub request_id: Option<String>,
    /// Client address as the service saw it.
    pub client_ip: Option<String>,
    /// How many requests this record stands for, when several denials of one client were
    /// aggregated into it; absent for a single request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// What moved, for a money movement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money: Option<MoneyMovement>,
    /// Why an administrator read or erased another subject's personal data, as they gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The blind index of the subject (hex), by which a subject's records are found while
    /// `subject` and `client_ip` are sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_index: Option<String>,
}

/// What a money movement moved, from the ledger's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyMovement {
    /// Ledger transaction id.
    pub transaction_id: String,
    /// `deposit`, `withdrawal` or `transfer`.
    pub kind: String,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Wallet debited; `None` for a deposit.
    pub from_wallet: Option<String>,
    /// Wallet credited; `None` for a withdrawal.
    pub to_wallet: Option<String>,
}

impl From<&crate::domain::fintech::Transaction> for MoneyMovement {
    fn from(t: &crate::domain::fintech::Transaction) -> Self {
        Self {
            transaction_id: t.id.to_string(),
            kind: t.kind.as_str().to_string(),
            amount: t.amount,
            currency: t.currency.code().to_string(),
            from_wallet: t.from.map(|w| w.to_string()),
            to_wallet: t.to.map(|w| w.to_string()),
        }
    }
}

impl MoneyMovement {
    /// What a payout moves: its amount out of its wallet, by the withdrawal that posts its hold
    /// once the provider paid it (held until then); none for a payout that failed.
    pub fn of_payout(p: &crate::domain::payments::Payout) -> Option<Self> {
        (p.status != crate::domain::payments::PayoutStatus::Failed).then(|| Self {
            transaction_id: p.withdrawal_transaction().to_string(),
            kind: "withdrawal".to_string(),
            amount: p.amount,
            currency: p.currency.code().to_string(),
            from_wallet: Some(p.wallet.to_string()),
            to_wallet: None,
        })
    }
}

/// An event in the chain: one line of an audit file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, continuous across rotated files.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// Id of the key that sealed this record; `None` for an unkeyed (plain SHA-256) record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// `hash` of the previous record; [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// HMAC-SHA256 under `key_id`'s key, or SHA-256 when unkeyed, of this record's canonical
    /// form without `hash` (lowercase hex).
    pub hash: String,
}

/// The canonical form that is hashed: the record without `hash`, members in record order.
struct Unsealed<'a> {
    seq: u64,
    event: &'a AuditEvent,
    key_id: Option<&'a str>,
    prev_hash: &'a str,
}

// Written out rather than derived with `flatten`, which goes through a map serializer: this is
// the writer's hot path. `a_sealed_line_is_the_sealed_record_encoded` keeps the two identical.
impl Serialize for Unsealed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let e = self.event;
        let mut st = serializer.serialize_struct("AuditRecord", 12)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("time", &e.time)?;
        st.serialize_field("subject", &e.subject)?;
        st.serialize_field("action", &e.action)?;
        st.serialize_field("resource", &e.resource)?;
        st.serialize_field("outcome", &e.outcome)?;
        st.serialize_field("status", &e.status)?;
        st.serialize_field("request_id", &e.request_id)?;
        st.serialize_field("client_ip", &e.client_ip)?;
        if let Some(count) = &e.count {
            st.serialize_field("count", count)?;
        }
        if let Some(money) = &e.money {
            st.serialize_field("money", money)?;
        }
        if let Some(reason) = &e.reason {
            st.serialize_field("reason", reason)?;
        }
        if let Some(index) = &e.subject_index {
            st.serialize_field("subject_index", index)?;
        }
        if let Some(key_id) = self.key_id {
            st.serialize_field("key_id", key_id)?;
        }
        st.serialize_field("prev_hash", self.prev_hash)?;
        st.end()
    }
}

/// The hash of a canonical form: HMAC under `key`, or plain SHA-256 without one.
fn hash_of(canonical: &[u8], key: Option<&AuditKey>) -> String {
    match key {
        Some(key) => key.seal(canonical),
        None => hex::encode(Sha256::digest(canonical)),
    }
}

impl AuditRecord {
    /// The hash this record must carry, computed from its other members with `key` (the key
    /// named by its `key_id`; `None` for an unkeyed record).
    pub fn expected_hash(&self, key: Option<&AuditKey>) -> Result<String, serde_json::Error> {
        let canonical = serde_json::to_vec(&Unsealed {
            seq: self.seq,
            event: &self.event,
            key_id: self.key_id.as_deref(),
            prev_hash: &self.prev_hash,
        })?;
        Ok(hash_of(&canonical, key))
    }

    /// The line as written: the canonical form followed by `\n`.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }

    /// Parse one line (without its `\n`) and check it against itself: its hash (under the key
    /// among `keys` that its `key_id` names) and its canonical form. Whether it follows the
    /// previous record is [`ChainHead::check_next`]'s job.
    pub fn parse(line: &[u8], keys: &AuditKeys) -> Result<Self, ChainBreak> {
        let text = std::str::from_utf8(line).map_err(|_| ChainBreak::Invalid("not UTF-8".into()))?;
        let record: Self = serde_json::from_str(text).map_err(|e| ChainBreak::Invalid(e.to_string()))?;
        let key = match &record.key_id {
            Some(id) => Some(keys.find(id).ok_or_else(|| ChainBreak::UnknownKey { key_id: id.clone() })?),
            None => None,
        };
        let expected = record.expected_hash(key).map_err(|e| ChainBreak::Invalid(e.to_string()))?;
        if expected != record.hash {
            return Err(ChainBreak::Hash { expected, found: record.hash });
        }
        let canonical = serde_json::to_string(&record).map_err(|e| ChainBreak::Invalid(e.to_string()))?;
        if canonical != text {
            return Err(ChainBreak::NotCanonical);
        }
        Ok(record)
    }
}

/// Where a chain ends: the seq and hash of its last record (seq 0 and [`GENESIS_HASH`] before the
/// first record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Seq of the last record; 0 for an empty chain.
    pub seq: u64,
    /// Hash of the last record; [`GENESIS_HASH`] for an empty chain.
    pub hash: String,
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::genesis()
    }
}

impl ChainHead {
    /// The head of an empty chain.
    pub fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS_HASH.into() }
    }

    /// The head of a chain that ends with `record`.
    pub fn of(record: &AuditRecord) -> Self {
        Self { seq: record.seq, hash: record.hash.clone() }
    }

    /// The record that continues this chain with `event`, sealed with `key` (unkeyed without
    /// one); the head itself does not move.
    pub fn seal(&self, event: &AuditEvent, key: Option<&AuditKey>) -> Result<AuditRecord, serde_json::Error> {
        let mut record = AuditRecord {
            seq: self.seq.saturating_add(1),
            event: event.clone(),
            key_id: key.map(|k| k.id().to_string()),
            prev_hash: self.hash.clone(),
            hash: String::new(),
        };
        record.hash = record.expected_hash(key)?;
        Ok(record)
    }

    /// The line that continues this chain with `event` (the same bytes as
    /// `self.seal(event, key)?.to_line()`, encoded once) and the head after it.
    pub fn seal_line(
        &self,
        event: &AuditEvent,
        key: Option<&AuditKey>,
    ) -> Result<(String, ChainHead), serde_json::Error> {
        let seq = self.seq.saturating_add(1);
        let unsealed = Unsealed { seq, event, key_id: key.map(AuditKey::id), prev_hash: &self.hash };
        let mut line = serde_json::to_string(&unsealed)?;
        let hash = hash_of(line.as_bytes(), key);
        // The canonical form is the record without its last member, `hash`: put it back.
        line.pop();
        line.push_str(",\"hash\":\"");
        line.push_str(&hash);
        line.push_str("\"}\n");
        Ok((line, ChainHead { seq, hash }))
    }

    /// Whether `record` directly follows this head.
    pub fn check_next(&self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let expected = self.seq.saturating_add(1);
        if record.seq != expected {
            return Err(ChainBreak::Seq { expected, found: record.seq });
        }
        if record.prev_hash != self.hash {
            return Err(ChainBreak::PrevHash { expected: self.hash.clone(), found: record.prev_hash.clone() });
        }
        Ok(())
    }
}

/// Why the audit writer could not take or keep a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The audit log cannot be written now (open, write, fsync or rotation failed); queued records
    /// stay queued and the writer retries.
    #[error("the audit log cannot be written: {0}")]
    Unavailable(String),
    /// Too many records are waiting for the log; this one was dropped.
    #[error("the audit backlog is full ({0} records waiting); the record was dropped")]
    BacklogFull(usize),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_payouts_record_carries_its_withdrawal_unless_it_failed() {
        use crate::domain::{
            fintech::{Currency, WalletId},
            payments::{Payout, PayoutStatus},
        };
        let p = Payout {
            id: uuid::Uuid::now_v7(),
            wallet: WalletId(uuid::Uuid::now_v7()),
            amount: 10,
            currency: Currency::parse("EUR").unwrap(),
            destination: "ba_1".into(),
            provider_id: None,
            status: PayoutStatus::Pending,
            failure: None,
        };
        let money = MoneyMovement::of_payout(&p).unwrap();
        assert_eq!(
            (money.transaction_id, money.kind.as_str(), money.amount, money.from_wallet, money.to_wallet),
            (p.withdrawal_transaction().to_string(), "withdrawal", 10, Some(p.wallet.to_string()), None)
        );
        let failed = Payout { status: PayoutStatus::Failed, ..p.clone() };
        assert!(MoneyMovement::of_payout(&failed).is_none());
    }

    /// The key test chains are sealed with.
    pub(crate) fn test_key() -> AuditKey {
        AuditKey::new(b"audit-test-key-0123456789abcdef0123456789")
    }

    /// The keys that verify test chains.
    pub(crate) fn test_keys() -> AuditKeys {
        AuditKeys { current: Some(test_key()), previous: None }
    }

    pub(crate) fn event(i: u64) -> AuditEvent {
        AuditEvent {
            time: Utc.timestamp_opt(1_700_000_000 + i as i64, 123_456_789).single().expect("valid time"),
            subject: (i % 3 != 0).then(|| format!("user-{i}")),
            action: "POST /api/v1/wallets/{id}/transfers".into(),
            resource: format!("/api/v1/wallets/w-{i}/transfers"),
            outcome: if i % 5 == 0 { OUTCOME_DENIED } else { OUTCOME_SUCCESS }.into(),
            status: if i % 5 == 0 { 403 } else { 201 },
            request_id: Some(format!("req-{i}")),
            client_ip: (i % 2 == 0).then(|| "203.0.113.7".to_string()),
            count: (i % 5 == 0).then_some(i),
            money: (i % 5 != 0).then(|| MoneyMovement {
                transaction_id: format!("0192f0c1-7a4b-7cc2-9d1e-{i:012}"),
                kind: "transfer".into(),
                amount: 100 * i as i64,
                currency: "EUR".into(),
                from_wallet: Some(format!("w-{i}")),
                to_wallet: Some(format!("w-{}", i + 1)),
            }),
            reason: None,
            subject_index: None,
        }
    }

    /// Records `from..=to` continuing `head`, sealed with `key`.
    pub(crate) fn chain_from(head: &mut ChainHead, from: u64, to: u64, key: Option<&AuditKey>) -> String {
        let mut text = String::new();
        for i in from..=to {
            let record = head.seal(&event(i), key).expect("seal");
            text.push_str(&record.to_line().expect("line"));
            *head = ChainHead::of(&record);
        }
        text
    }

    /// `n` records from genesis, sealed with [`test_key`], as the writer would write them.
    pub(crate) fn chain_text(n: u64) -> String {
        chain_from(&mut ChainHead::genesis(), 1, n, Some(&test_key()))
    }

    #[test]
    fn a_record_is_one_line_with_members_in_the_documented_order() {
        let line = chain_text(1);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let keys: Vec<_> = [
            "seq",
            "time",
            "subject",
            "action",
            "resource",
            "outcome",
            "status",
            "request_id",
            "client_ip",
            "money",
            "key_id",
            "prev_hash",
            "hash",
        ]
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} missing in {line}")))
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(line.contains(&format!("\"prev_hash\":\"{GENESIS_HASH}\"")));
        assert!(line.contains("\"subject\":\"user-1\"") && line.contains("\"client_ip\":null"));
        assert!(!line.contains("\"count\""), "count only on aggregated records: {line}");
        assert!(line.contains(&format!("\"key_id\":\"{}\"", test_key().id())), "{line}");
    }

    #[test]
    fn a_money_movement_record_says_what_moved() {
        let line = chain_text(1);
        let money = r#""money":{"transaction_id":"0192f0c1-7a4b-7cc2-9d1e-000000000001","kind":"transfer","amount":100,"currency":"EUR","from_wallet":"w-1","to_wallet":"w-2"}"#;
        assert!(line.contains(money), "{line}");
        let record = AuditRecord::parse(line.trim_end().as_bytes(), &test_keys()).expect("valid");
        assert_eq!(record.event.money.map(|m| m.amount), Some(100));
        // An edit of what moved breaks the record.
        let edited = line.trim_end().replacen("\"amount\":100", "\"amount\":900", 1);
        assert!(matches!(AuditRecord::parse(edited.as_bytes(), &test_keys()), Err(ChainBreak::Hash { .. })));
    }

    #[test]
    fn the_hash_is_the_keyed_mac_of_the_line_without_its_hash_member() {
        let line = chain_text(1);
        let record = AuditRecord::parse(line.trim_end().as_bytes(), &test_keys()).expect("valid");
        let without = line.trim_end().replace(&format!(",\"hash\":\"{}\"", record.hash), "");
        assert_eq!(record.hash, test_key().seal(without.as_bytes()));
        assert_ne!(record.hash, hex::encode(Sha256::digest(without.as_bytes())), "not a plain SHA-256");
        assert_eq!(record.hash.len(), 64);
        assert!(record.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn an_unkeyed_record_is_the_plain_sha256_of_its_line_as_before() {
        let line = chain_from(&mut ChainHead::genesis(), 1, 1, None);
        assert!(!line.contains("key_id"), "{line}");
        let record = AuditRecord::parse(line.trim_end().as_bytes(), &AuditKeys::default()).expect("valid");
        let without = line.trim_end().replace(&format!(",\"hash\":\"{}\"", record.hash), "");
        assert_eq!(record.hash, hex::encode(Sha256::digest(without.as_bytes())));
    }

    #[test]
    fn without_its_key_a_keyed_record_cannot_be_checked() {
        let line = chain_text(1);
        let other =
            AuditKeys { current: Some(AuditKey::new(b"some-other-key-0123456789abcdef012345")), previous: None };
        assert_eq!(
            AuditRecord::parse(line.trim_end().as_bytes(), &other),
            Err(ChainBreak::UnknownKey { key_id: test_key().id().to_string() })
        );
        // The previous key still verifies what it sealed.
        let rotated = AuditKeys { current: other.current.clone(), previous: Some(test_key()) };
        assert!(AuditRecord::parse(line.trim_end().as_bytes(), &rotated).is_ok());
    }

    #[test]
    fn a_sealed_line_is_the_sealed_record_encoded() {
        let head = ChainHead::genesis();
        for (e, key) in [(event(3), Some(test_key())), (event(5), Some(test_key())), (event(4), None)] {
            let (line, next) = head.seal_line(&e, key.as_ref()).unwrap();
            let record = head.seal(&e, key.as_ref()).unwrap();
            assert_eq!(line, record.to_line().unwrap());
            assert_eq!(next, ChainHead::of(&record));
        }
    }

    #[test]
    fn sealing_chains_each_record_to_the_previous_one() {
        let head = ChainHead::genesis();
        let key = test_key();
        let first = head.seal(&event(1), Some(&key)).expect("seal");
        let second = ChainHead::of(&first).seal(&event(2), Some(&key)).expect("seal");
        assert_eq!((first.seq, second.seq), (1, 2));
        assert_eq!(second.prev_hash, first.hash);
        assert!(ChainHead::of(&first).check_next(&second).is_ok());
        assert_eq!(head.check_next(&second), Err(ChainBreak::Seq { expected: 1, found: 2 }));
    }

    #[test]
    fn an_edit_that_parses_to_the_same_values_is_still_refused() {
        let line = chain_text(1);
        let edited = line.trim_end().replacen("T", " ", 1);
        assert_ne!(edited, line.trim_end());
        assert_eq!(AuditRecord::parse(edited.as_bytes(), &test_keys()), Err(ChainBreak::NotCanonical));
        let spaced = line.trim_end().replacen(":", ": ", 1);
        assert_eq!(AuditRecord::parse(spaced.as_bytes(), &test_keys()), Err(ChainBreak::NotCanonical));
    }
}
