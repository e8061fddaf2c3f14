//! The audit trail: who did what to which resource, with what outcome. Records form a hash
//! chain, so a changed byte, a deleted line or a reordered line is detected at the line where it
//! happened.
//!
//! # Record format
//!
//! One record per line: compact JSON (no whitespace) ending in `\n`, with members in this order:
//!
//! ```text
//! {"seq":1,"time":"…","subject":…,"action":"…","resource":"…","outcome":"…","status":201,"request_id":…,"client_ip":…,"prev_hash":"…","hash":"…"}
//! ```
//!
//! - `seq` starts at 1 and grows by one per record, continuous across rotated files;
//! - `time` is RFC 3339 in UTC with a `Z` suffix and 0, 3, 6 or 9 fractional digits (as chrono
//!   writes it);
//! - absent optional members are written as `null`, never left out;
//! - strings are escaped as serde_json escapes them.
//!
//! # Hash
//!
//! `hash` is the lowercase hex SHA-256 of the UTF-8 bytes of the record's canonical form without
//! its `hash` member: `{"seq":…,"time":…,…,"client_ip":…,"prev_hash":"…"}`, which is the line with
//! `,"hash":"…"` taken out. The first record's `prev_hash` is [`GENESIS_HASH`] (64 zeros); every
//! later record carries the `hash` of the record before it.
//!
//! A line is accepted only if it is, byte for byte, the canonical form of the record it parses to,
//! so an edit that parses to the same values (the `T` of the time turned into a space, say) is
//! caught as well.
//!
//! # Limits
//!
//! A chain cannot show that records were cut off its end: deleting the last lines of the live file
//! leaves a valid, shorter chain. Compare the last seq that verification reports with one kept
//! elsewhere: the writer logs the head at open, at every rotation and at shutdown, and exports it
//! as the `beryl_audit_last_seq` gauge.

mod chain;
pub mod verify;

pub use chain::{check_bytes, ChainBreak, ChainVerifier, LineProblem};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
}

/// An event in the chain: one line of an audit file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1, continuous across rotated files.
    pub seq: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// `hash` of the previous record; [`GENESIS_HASH`] for the first.
    pub prev_hash: String,
    /// SHA-256 (lowercase hex) of this record's canonical form without `hash`.
    pub hash: String,
}

/// The canonical form that is hashed: the record without `hash`, members in record order.
struct Unsealed<'a> {
    seq: u64,
    event: &'a AuditEvent,
    prev_hash: &'a str,
}

// Written out rather than derived with `flatten`, which goes through a map serializer: this is
// the writer's hot path. `a_sealed_line_is_the_sealed_record_encoded` keeps the two identical.
impl Serialize for Unsealed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let e = self.event;
        let mut st = serializer.serialize_struct("AuditRecord", 10)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("time", &e.time)?;
        st.serialize_field("subject", &e.subject)?;
        st.serialize_field("action", &e.action)?;
        st.serialize_field("resource", &e.resource)?;
        st.serialize_field("outcome", &e.outcome)?;
        st.serialize_field("status", &e.status)?;
        st.serialize_field("request_id", &e.request_id)?;
        st.serialize_field("client_ip", &e.client_ip)?;
        st.serialize_field("prev_hash", self.prev_hash)?;
        st.end()
    }
}

fn digest(seq: u64, event: &AuditEvent, prev_hash: &str) -> Result<String, serde_json::Error> {
    let canonical = serde_json::to_vec(&Unsealed { seq, event, prev_hash })?;
    Ok(hex::encode(Sha256::digest(&canonical)))
}

impl AuditRecord {
    /// The hash this record must carry, computed from its other members.
    pub fn expected_hash(&self) -> Result<String, serde_json::Error> {
        digest(self.seq, &self.event, &self.prev_hash)
    }

    /// The line as written: the canonical form followed by `\n`.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }

    /// Parse one line (without its `\n`) and check it against itself: its hash and its
    /// canonical form. Whether it follows the previous record is [`ChainHead::check_next`]'s job.
    pub fn parse(line: &[u8]) -> Result<Self, ChainBreak> {
        let text = std::str::from_utf8(line).map_err(|_| ChainBreak::Invalid("not UTF-8".into()))?;
        let record: Self = serde_json::from_str(text).map_err(|e| ChainBreak::Invalid(e.to_string()))?;
        let expected = record.expected_hash().map_err(|e| ChainBreak::Invalid(e.to_string()))?;
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

    /// The record that continues this chain with `event`; the head itself does not move.
    pub fn seal(&self, event: &AuditEvent) -> Result<AuditRecord, serde_json::Error> {
        let seq = self.seq.saturating_add(1);
        let hash = digest(seq, event, &self.hash)?;
        Ok(AuditRecord { seq, event: event.clone(), prev_hash: self.hash.clone(), hash })
    }

    /// The line that continues this chain with `event` (the same bytes as
    /// `self.seal(event)?.to_line()`, encoded once) and the head after it.
    pub fn seal_line(&self, event: &AuditEvent) -> Result<(String, ChainHead), serde_json::Error> {
        let seq = self.seq.saturating_add(1);
        let mut line = serde_json::to_string(&Unsealed { seq, event, prev_hash: &self.hash })?;
        let hash = hex::encode(Sha256::digest(line.as_bytes()));
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
        }
    }

    /// `n` records from genesis, as the writer would write them.
    pub(crate) fn chain_text(n: u64) -> String {
        let mut head = ChainHead::genesis();
        let mut text = String::new();
        for i in 1..=n {
            let record = head.seal(&event(i)).expect("seal");
            text.push_str(&record.to_line().expect("line"));
            head = ChainHead::of(&record);
        }
        text
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
            "prev_hash",
            "hash",
        ]
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k} missing in {line}")))
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(line.contains(&format!("\"prev_hash\":\"{GENESIS_HASH}\"")));
        assert!(line.contains("\"subject\":\"user-1\"") && line.contains("\"client_ip\":null"));
    }

    #[test]
    fn the_hash_covers_the_line_without_its_hash_member() {
        let line = chain_text(1);
        let record = AuditRecord::parse(line.trim_end().as_bytes()).expect("valid");
        let without = line.trim_end().replace(&format!(",\"hash\":\"{}\"", record.hash), "");
        assert_eq!(record.hash, hex::encode(Sha256::digest(without.as_bytes())));
        assert_eq!(record.hash.len(), 64);
        assert!(record.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn a_sealed_line_is_the_sealed_record_encoded() {
        let head = ChainHead::genesis();
        let e = event(3);
        let (line, next) = head.seal_line(&e).unwrap();
        let record = head.seal(&e).unwrap();
        assert_eq!(line, record.to_line().unwrap());
        assert_eq!(next, ChainHead::of(&record));
    }

    #[test]
    fn sealing_chains_each_record_to_the_previous_one() {
        let head = ChainHead::genesis();
        let first = head.seal(&event(1)).expect("seal");
        let second = ChainHead::of(&first).seal(&event(2)).expect("seal");
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
        assert_eq!(AuditRecord::parse(edited.as_bytes()), Err(ChainBreak::NotCanonical));
        let spaced = line.trim_end().replacen(":", ": ", 1);
        assert_eq!(AuditRecord::parse(spaced.as_bytes()), Err(ChainBreak::NotCanonical));
    }
}
