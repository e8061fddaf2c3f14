//! Verifying audit files on disk: one file or a rotated set. This is the one place in the domain
//! that reads files; `audit verify` and the tests both use it.
//!
//! # Rotated sets
//!
//! The writer renames a full live file `audit.log` to `audit.log.<n>`, with `n` one more than the
//! highest number present (1 for the first), then starts a new `audit.log`. Lower numbers are
//! older, a rotated file is never renamed or written again, and a set reads in chain order:
//! `audit.log.1`, `audit.log.2`, …, then `audit.log`.

use std::{
    fs::File,
    io::{self, BufRead, BufReader},
    path::{Path, PathBuf},
};

use super::{AuditKeys, ChainBreak, ChainVerifier, GENESIS_HASH};

/// Path of rotated file number `n` of the live file `live`: `audit.log` gives `audit.log.<n>`.
pub fn rotated_path(live: &Path, n: u64) -> PathBuf {
    let mut name = live.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    live.with_file_name(name)
}

/// If `path` is named like a rotated file (`<live>.<n>`, `n` without leading zeros), its live
/// file and number.
pub fn rotation_number(path: &Path) -> Option<(PathBuf, u64)> {
    let name = path.file_name()?.to_str()?;
    let (base, digits) = name.rsplit_once('.')?;
    let n: u64 = digits.parse().ok()?;
    (!base.is_empty() && n.to_string() == digits).then(|| (path.with_file_name(base), n))
}

/// Rotated files of `live` that exist, oldest (lowest number) first.
pub fn rotated_files(live: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let Some(name) = live.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match live.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = dir.join(entry.file_name());
        if let Some((base, n)) = rotation_number(&file) {
            if base.file_name().and_then(|b| b.to_str()) == Some(name) && entry.file_type()?.is_file() {
                found.push((n, rotated_path(live, n)));
            }
        }
    }
    found.sort_by_key(|(n, _)| *n);
    Ok(found)
}

/// The files of one audit log, in chain order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSet {
    /// The live file.
    pub live: PathBuf,
    /// Rotated files, oldest first, then the live file if it exists.
    pub files: Vec<PathBuf>,
}

impl LogSet {
    /// The set `path` belongs to: `path` is the live file, or a rotated member (`audit.log.3`
    /// names the set of `audit.log`) unless it has rotated files of its own.
    pub fn of(path: &Path) -> Result<Self, VerifyError> {
        let live = match rotation_number(path) {
            Some((base, _)) if !rotated_path(path, 1).exists() => base,
            _ => path.to_path_buf(),
        };
        let io_error = |source| VerifyError::Io { path: live.clone(), source };
        let mut files: Vec<PathBuf> = match rotated_files(&live) {
            Ok(found) => found.into_iter().map(|(_, p)| p).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(e)),
        };
        if live.exists() {
            files.push(live.clone());
        }
        if files.is_empty() {
            return Err(VerifyError::NotFound(path.to_path_buf()));
        }
        Ok(Self { live, files })
    }
}

/// Where verification starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first record must be seq 1 with the genesis `prev_hash`.
    Genesis,
    /// The first record may continue an older chain whose files are gone.
    Continuing,
}

/// What an intact chain holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Files read, in chain order.
    pub files: Vec<PathBuf>,
    /// Records verified.
    pub records: u64,
    /// Seq of the first record, if any.
    pub first_seq: Option<u64>,
    /// Seq of the last record (0 if none).
    pub last_seq: u64,
    /// Hash of the last record (the genesis hash if none).
    pub last_hash: String,
    /// Unkeyed (plain SHA-256) records among them: written before the chain was keyed, or by a
    /// service without a key.
    pub unkeyed: u64,
    /// Hash of the record at the seq asked for with [`Check::hash_at`], if the set holds it.
    pub hash_at: Option<String>,
}

/// How to check a set.
#[derive(Debug, Clone)]
pub struct Check {
    /// Where verification starts.
    pub start: Start,
    /// Keys for keyed records.
    pub keys: AuditKeys,
    /// A seq whose record's hash to report in [`Summary::hash_at`] (a recorded chain head).
    pub hash_at: Option<u64>,
}

impl Check {
    /// Check from `start` with `keys`.
    pub fn new(start: Start, keys: AuditKeys) -> Self {
        Self { start, keys, hash_at: None }
    }
}

/// The first broken record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// File holding it.
    pub file: PathBuf,
    /// Line number in that file, from 1.
    pub line: u64,
    /// What is wrong.
    pub problem: ChainBreak,
    /// Records verified before it.
    pub verified: u64,
}

/// Why verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A record is broken.
    #[error("{}, line {}: {}", .0.file.display(), .0.line, .0.problem)]
    Broken(Broken),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Neither the file nor any rotated file of it exists.
    #[error("no audit log at {}", .0.display())]
    NotFound(PathBuf),
}

/// Verify `files` as one chain, in the order given.
pub fn verify_files(files: &[PathBuf], check: &Check) -> Result<Summary, VerifyError> {
    let mut verifier = match check.start {
        Start::Genesis => ChainVerifier::from_genesis(check.keys.clone()),
        Start::Continuing => ChainVerifier::continuing(check.keys.clone()),
    };
    if let Some(seq) = check.hash_at {
        verifier.watch(seq);
    }
    for path in files {
        let io_error = |source| VerifyError::Io { path: path.clone(), source };
        let mut reader = BufReader::with_capacity(64 * 1024, File::open(path).map_err(io_error)?);
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(io_error)? == 0 {
                break;
            }
            line += 1;
            let terminated = buf.last() == Some(&b'\n');
            let content = if terminated { &buf[..buf.len() - 1] } else { &buf[..] };
            let verified = verifier.records();
            verifier
                .check_line(content, terminated)
                .map_err(|problem| VerifyError::Broken(Broken { file: path.clone(), line, problem, verified }))?;
        }
    }
    let (last_seq, last_hash) = match verifier.head() {
        Some(head) => (head.seq, head.hash.clone()),
        None => (0, GENESIS_HASH.to_string()),
    };
    Ok(Summary {
        files: files.to_vec(),
        records: verifier.records(),
        first_seq: verifier.first_seq(),
        last_seq,
        last_hash,
        unkeyed: verifier.unkeyed(),
        hash_at: verifier.hash_at().map(str::to_string),
    })
}

/// Verify the set `path` belongs to (see [`LogSet::of`]).
pub fn verify(path: &Path, check: &Check) -> Result<Summary, VerifyError> {
    verify_files(&LogSet::of(path)?.files, check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::tests::{chain_text, test_keys};

    fn genesis() -> Check {
        Check::new(Start::Genesis, test_keys())
    }

    /// Split `text` into files of `per_file` lines: `audit.log.1`, …, then the live file.
    fn write_set(dir: &Path, text: &str, per_file: usize) -> PathBuf {
        let live = dir.join("audit.log");
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let chunks: Vec<String> = lines.chunks(per_file).map(|c| c.concat()).collect();
        let (last, rotated) = chunks.split_last().expect("at least one chunk");
        for (i, chunk) in rotated.iter().enumerate() {
            std::fs::write(rotated_path(&live, i as u64 + 1), chunk).expect("write");
        }
        std::fs::write(&live, last).expect("write");
        live
    }

    #[test]
    fn rotated_names_parse_back() {
        let live = Path::new("/var/log/beryl/audit.log");
        assert_eq!(rotated_path(live, 12), Path::new("/var/log/beryl/audit.log.12"));
        assert_eq!(rotation_number(Path::new("/var/log/beryl/audit.log.12")), Some((live.to_path_buf(), 12)));
        assert_eq!(rotation_number(Path::new("/x/audit.log.012")), None);
        assert_eq!(rotation_number(Path::new("/x/audit.log")), None);
        assert_eq!(rotation_number(Path::new("/x/audit.log.torn-17")), None);
    }

    #[test]
    fn a_rotated_set_verifies_as_one_chain_in_numeric_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = write_set(dir.path(), &chain_text(25), 2);
        let summary = verify(&live, &genesis()).expect("intact");
        assert_eq!(summary.files.len(), 13);
        assert_eq!(summary.files[9], rotated_path(&live, 10), "audit.log.10 comes after audit.log.9");
        assert_eq!(summary.files.last(), Some(&live));
        assert_eq!((summary.records, summary.first_seq, summary.last_seq), (25, Some(1), 25));
        // Any member names the same set.
        assert_eq!(verify(&rotated_path(&live, 4), &genesis()).expect("intact"), summary);
    }

    #[test]
    fn the_chain_continues_across_files_and_a_missing_file_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = write_set(dir.path(), &chain_text(9), 3);
        std::fs::remove_file(rotated_path(&live, 2)).expect("remove");
        match verify(&live, &genesis()) {
            Err(VerifyError::Broken(b)) => {
                assert_eq!((b.file, b.line, b.verified), (live.clone(), 1, 3));
                assert_eq!(b.problem, ChainBreak::Seq { expected: 4, found: 7 });
            }
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn a_broken_line_in_a_rotated_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = write_set(dir.path(), &chain_text(9), 3);
        let second = rotated_path(&live, 2);
        let text = std::fs::read_to_string(&second).expect("read");
        std::fs::write(&second, text.replacen("req-5", "req-X", 1)).expect("write");
        match verify(&live, &genesis()) {
            Err(VerifyError::Broken(b)) => {
                assert_eq!((b.file, b.line), (second, 2));
                assert!(matches!(b.problem, ChainBreak::Hash { .. }), "{:?}", b.problem);
            }
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn a_truncated_live_file_is_reported_distinctly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = write_set(dir.path(), &chain_text(4), 3);
        let text = std::fs::read(&live).expect("read");
        std::fs::write(&live, &text[..text.len() - 1]).expect("write");
        match verify(&live, &genesis()) {
            Err(VerifyError::Broken(b)) => {
                assert_eq!((b.file, b.line), (live, 1));
                assert!(matches!(b.problem, ChainBreak::Truncated { .. }), "{:?}", b.problem);
            }
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_log_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(verify(&dir.path().join("audit.log"), &genesis()), Err(VerifyError::NotFound(_))));
        assert!(matches!(verify(&dir.path().join("nowhere/audit.log"), &genesis()), Err(VerifyError::NotFound(_))));
    }
}
