//! Checking a sequence of audit lines: each must be a valid record that follows the one before.

use super::{AuditKeys, AuditRecord, ChainHead};

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The line does not parse as a record (not UTF-8, not JSON, or not a record's shape).
    #[error("line is not a valid record: {0}")]
    Invalid(String),
    /// The last line has no newline: a write was cut short (a crash or a full disk).
    #[error("truncated final line: {bytes} bytes without a newline, a write was cut short")]
    Truncated {
        /// Length of the partial line.
        bytes: usize,
    },
    /// The line's `seq` is not the next one: a line was deleted, duplicated or moved.
    #[error("expected seq {expected}, found seq {found}")]
    Seq {
        /// Seq that should come next.
        expected: u64,
        /// Seq the line carries.
        found: u64,
    },
    /// The line's `prev_hash` is not the previous record's hash.
    #[error("prev_hash does not match the previous record's hash")]
    PrevHash {
        /// Hash of the previous record.
        expected: String,
        /// `prev_hash` the line carries.
        found: String,
    },
    /// The line's `hash` does not match its content: the line was altered.
    #[error("hash does not match the record's content")]
    Hash {
        /// Hash computed from the line's content.
        expected: String,
        /// `hash` the line carries.
        found: String,
    },
    /// The line has the right values but not the bytes the writer wrote: the line was altered.
    #[error("line is not the canonical form of its record")]
    NotCanonical,
    /// The line was sealed with a key that was not provided: it cannot be checked.
    #[error("sealed with key {key_id}, which was not provided (AUDIT_HMAC_KEY or AUDIT_HMAC_KEY_PREVIOUS)")]
    UnknownKey {
        /// Id of the key the line names.
        key_id: String,
    },
    /// An unkeyed (plain SHA-256) line after keyed ones: anyone can compute it, the writer never
    /// goes back to unkeyed records once it holds a key.
    #[error("unkeyed record after keyed ones: it could have been written without the key")]
    Unkeyed,
}

impl ChainBreak {
    /// Expected and found values, for the problems that compare two.
    pub fn mismatch(&self) -> Option<(String, String)> {
        match self {
            Self::Seq { expected, found } => Some((expected.to_string(), found.to_string())),
            Self::PrevHash { expected, found } | Self::Hash { expected, found } => {
                Some((expected.clone(), found.clone()))
            }
            Self::Invalid(_)
            | Self::Truncated { .. }
            | Self::NotCanonical
            | Self::UnknownKey { .. }
            | Self::Unkeyed => None,
        }
    }
}

/// Checks lines one at a time, in chain order, remembering where the chain has got to.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    keys: AuditKeys,
    head: Option<ChainHead>,
    first_seq: Option<u64>,
    records: u64,
    unkeyed: u64,
    keyed_seen: bool,
    checkpoint: Option<(u64, Option<String>)>,
}

impl ChainVerifier {
    /// The first line must be the first record of a chain (seq 1, genesis `prev_hash`); keyed
    /// lines are checked with `keys`.
    pub fn from_genesis(keys: AuditKeys) -> Self {
        Self::new(keys, Some(ChainHead::genesis()))
    }

    /// The first line may continue an older chain (older files archived or removed after their
    /// retention): its seq and `prev_hash` are taken as given; every later line is checked
    /// against it.
    pub fn continuing(keys: AuditKeys) -> Self {
        Self::new(keys, None)
    }

    fn new(keys: AuditKeys, head: Option<ChainHead>) -> Self {
        Self { keys, head, first_seq: None, records: 0, unkeyed: 0, keyed_seen: false, checkpoint: None }
    }

    /// Remember the hash of the record at `seq` while checking, for [`Self::hash_at`].
    pub fn watch(&mut self, seq: u64) {
        self.checkpoint = Some((seq, None));
    }

    /// The hash of the record at the seq given to [`Self::watch`], once it has been checked.
    pub fn hash_at(&self) -> Option<&str> {
        self.checkpoint.as_ref().and_then(|(_, hash)| hash.as_deref())
    }

    /// Unkeyed (plain SHA-256) records accepted: written before keys existed, or without one.
    pub fn unkeyed(&self) -> u64 {
        self.unkeyed
    }

    /// Check the next line; `line` excludes the newline and `terminated` says whether there was
    /// one. On success the line's record becomes the head.
    pub fn check_line(&mut self, line: &[u8], terminated: bool) -> Result<(), ChainBreak> {
        if !terminated {
            return Err(ChainBreak::Truncated { bytes: line.len() });
        }
        let record = AuditRecord::parse(line, &self.keys)?;
        if let Some(head) = &self.head {
            head.check_next(&record)?;
        }
        match record.key_id {
            Some(_) => self.keyed_seen = true,
            None if self.keyed_seen => return Err(ChainBreak::Unkeyed),
            None => self.unkeyed += 1,
        }
        if let Some((seq, hash)) = &mut self.checkpoint {
            if *seq == record.seq {
                *hash = Some(record.hash.clone());
            }
        }
        self.first_seq.get_or_insert(record.seq);
        self.records += 1;
        self.head = Some(ChainHead::of(&record));
        Ok(())
    }

    /// Lines accepted so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Seq of the first line accepted.
    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Where the chain has got to: the last accepted record (or genesis before any, when
    /// starting from genesis).
    pub fn head(&self) -> Option<&ChainHead> {
        self.head.as_ref()
    }
}

/// A problem and the 1-based number of the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// Line number, from 1.
    pub line: u64,
    /// What is wrong with it.
    pub problem: ChainBreak,
}

/// Check every line of `bytes` (the content of one file) in order.
pub fn check_bytes(verifier: &mut ChainVerifier, bytes: &[u8]) -> Result<(), LineProblem> {
    for (i, chunk) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        let (line, terminated) = match chunk.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (chunk, false),
        };
        verifier.check_line(line, terminated).map_err(|problem| LineProblem { line: i as u64 + 1, problem })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{
        tests::{chain_from, chain_text, test_key, test_keys},
        AuditKey,
    };

    fn verify(text: &[u8]) -> Result<u64, LineProblem> {
        let mut verifier = ChainVerifier::from_genesis(test_keys());
        check_bytes(&mut verifier, text)?;
        Ok(verifier.records())
    }

    fn lines(text: &str) -> Vec<&str> {
        text.split_inclusive('\n').collect()
    }

    /// 1-based number of the line holding byte `at`.
    fn line_of(text: &[u8], at: usize) -> u64 {
        text[..at].iter().filter(|b| **b == b'\n').count() as u64 + 1
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(chain_text(12).as_bytes()), Ok(12));
        assert_eq!(verify(b""), Ok(0));
    }

    #[test]
    fn changing_any_single_byte_is_detected_on_its_line() {
        let text = chain_text(5).into_bytes();
        for at in 0..text.len() {
            for replacement in [b'0', b'7', b'a', b'f', b'Z', b' ', b'"', b',', b'}', b'\n', text[at] ^ 0x01] {
                if replacement == text[at] {
                    continue;
                }
                let mut tampered = text.clone();
                tampered[at] = replacement;
                let found = verify(&tampered).expect_err("tampering must be detected");
                assert_eq!(found.line, line_of(&text, at), "byte {at} set to {:?}: {found:?}", char::from(replacement));
            }
        }
    }

    #[test]
    fn a_changed_value_reports_the_expected_and_found_hash() {
        let text = chain_text(4);
        let tampered = text.replacen("req-3", "req-9", 1);
        let found = verify(tampered.as_bytes()).expect_err("detected");
        assert_eq!(found.line, 3);
        let (expected, stored) = found.problem.mismatch().expect("a hash mismatch");
        assert_ne!(expected, stored);
        assert!(lines(&text)[2].contains(&stored), "found is the hash the line carries");
    }

    #[test]
    fn deleting_a_line_is_detected_at_its_place() {
        let text = chain_text(6);
        for deleted in 0..5 {
            let mut kept = lines(&text);
            kept.remove(deleted);
            let found = verify(kept.concat().as_bytes()).expect_err("deletion detected");
            let n = deleted as u64 + 1;
            assert_eq!(found, LineProblem { line: n, problem: ChainBreak::Seq { expected: n, found: n + 1 } });
        }
        // The end of a chain carries no proof of what followed: see the module documentation.
        let mut kept = lines(&text);
        kept.pop();
        assert_eq!(verify(kept.concat().as_bytes()), Ok(5));
    }

    #[test]
    fn reordering_two_lines_is_detected_at_the_first() {
        let text = chain_text(6);
        for first in 0..5 {
            let mut swapped = lines(&text);
            swapped.swap(first, first + 1);
            let found = verify(swapped.concat().as_bytes()).expect_err("reorder detected");
            let n = first as u64 + 1;
            assert_eq!(found, LineProblem { line: n, problem: ChainBreak::Seq { expected: n, found: n + 1 } });
        }
    }

    #[test]
    fn a_forged_record_with_its_own_valid_hash_breaks_the_link_to_the_next() {
        let text = chain_text(3);
        let mut records: Vec<AuditRecord> = lines(&text)
            .iter()
            .map(|l| AuditRecord::parse(l.trim_end().as_bytes(), &test_keys()).expect("valid"))
            .collect();
        records[1].event.outcome = "success".into();
        records[1].event.status = 200;
        records[1].hash = records[1].expected_hash(Some(&test_key())).expect("hash");
        let forged: String = records.iter().map(|r| r.to_line().expect("line")).collect();
        let found = verify(forged.as_bytes()).expect_err("forgery detected");
        assert_eq!(found.line, 3);
        assert!(matches!(found.problem, ChainBreak::PrevHash { .. }), "{found:?}");
    }

    #[test]
    fn a_truncated_tail_is_reported_as_such() {
        let text = chain_text(3);
        let cut = &text.as_bytes()[..text.len() - 10];
        let found = verify(cut).expect_err("truncation detected");
        assert_eq!(found.line, 3);
        assert!(matches!(found.problem, ChainBreak::Truncated { .. }), "{found:?}");
        assert!(found.problem.to_string().contains("truncated"));
    }

    #[test]
    fn a_continuing_chain_starts_where_its_first_line_says() {
        let text = chain_text(6);
        let tail: String = lines(&text)[3..].concat();
        assert!(verify(tail.as_bytes()).is_err(), "from genesis, the first line must be seq 1");
        let mut verifier = ChainVerifier::continuing(test_keys());
        check_bytes(&mut verifier, tail.as_bytes()).expect("valid continuation");
        assert_eq!((verifier.first_seq(), verifier.records()), (Some(4), 3));
        assert_eq!(verifier.head().map(|h| h.seq), Some(6));
    }

    /// Rewrite every line from `from` on as someone without the key would: change a value, then
    /// reseal it and every later line so that the links hold.
    fn forge(text: &str, from: usize, key: Option<&AuditKey>) -> String {
        let mut records: Vec<AuditRecord> = lines(text)
            .iter()
            .map(|l| AuditRecord::parse(l.trim_end().as_bytes(), &test_keys()).expect("valid"))
            .collect();
        records[from].event.outcome = "success".into();
        for i in from..records.len() {
            if i > 0 {
                records[i].prev_hash = records[i - 1].hash.clone();
            }
            records[i].key_id = key.map(|k| k.id().to_string());
            records[i].hash = records[i].expected_hash(key).expect("hash");
        }
        records.iter().map(|r| r.to_line().expect("line")).collect()
    }

    #[test]
    fn a_chain_resealed_without_the_key_does_not_verify() {
        let text = chain_text(6);
        // Resealed as plain SHA-256 records, as the chain was before keys: refused after the
        // first keyed record.
        let found = verify(forge(&text, 2, None).as_bytes()).expect_err("forgery detected");
        assert_eq!(found, LineProblem { line: 3, problem: ChainBreak::Unkeyed });
        // Resealed with a guessed key under the real key id: the MAC does not match.
        let guess = AuditKey::new(b"a-guessed-key-0123456789abcdef01234567");
        let mut forged = forge(&text, 2, Some(&guess));
        forged = forged.replace(guess.id(), test_key().id());
        let found = verify(forged.as_bytes()).expect_err("forgery detected");
        assert_eq!(found.line, 3);
        assert!(matches!(found.problem, ChainBreak::Hash { .. }), "{found:?}");
        // Resealed with a key of its own: not a key the verifier holds.
        let found = verify(forge(&text, 2, Some(&guess)).as_bytes()).expect_err("forgery detected");
        assert_eq!(found, LineProblem { line: 3, problem: ChainBreak::UnknownKey { key_id: guess.id().into() } });
    }

    #[test]
    fn unkeyed_records_written_before_keys_verify_and_are_counted() {
        let mut head = ChainHead::genesis();
        let mut text = chain_from(&mut head, 1, 4, None);
        text.push_str(&chain_from(&mut head, 5, 9, Some(&test_key())));
        let mut verifier = ChainVerifier::from_genesis(test_keys());
        check_bytes(&mut verifier, text.as_bytes()).expect("a legacy prefix then keyed records verify");
        assert_eq!((verifier.records(), verifier.unkeyed()), (9, 4));
    }

    #[test]
    fn a_rotated_key_keeps_the_chain_verifiable() {
        let next = AuditKey::new(b"the-next-audit-key-0123456789abcdef0123");
        let mut head = ChainHead::genesis();
        let mut text = chain_from(&mut head, 1, 3, Some(&test_key()));
        text.push_str(&chain_from(&mut head, 4, 6, Some(&next)));
        let rotated = AuditKeys { current: Some(next.clone()), previous: Some(test_key()) };
        let mut verifier = ChainVerifier::from_genesis(rotated);
        check_bytes(&mut verifier, text.as_bytes()).expect("both keys verify their records");
        let mut verifier = ChainVerifier::from_genesis(AuditKeys { current: Some(next), previous: None });
        let found = check_bytes(&mut verifier, text.as_bytes()).expect_err("the old key is needed");
        assert!(matches!(found.problem, ChainBreak::UnknownKey { .. }) && found.line == 1, "{found:?}");
    }
}
