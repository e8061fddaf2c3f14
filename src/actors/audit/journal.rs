//! The audit log on disk as the writer keeps it: opening with recovery of the chain head,
//! appending sealed batches (one write and one `sync_data` each), rotation by size.
//!
//! Plain blocking `std::fs`: the writer is alone on its arbiter thread, and a batch is at most
//! `batch_max` records, so one call holds the thread for one write and one fsync per batch.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::domain::audit::{
    verify::{rotated_files, rotated_path},
    AuditEvent, AuditKeys, AuditRecord, ChainHead,
};

/// The operation that failed; a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Creating the directory or opening the live file.
    Open,
    /// Reading the chain head back, or setting a torn tail aside.
    Recover,
    /// Writing a batch.
    Write,
    /// Fsyncing a batch.
    Sync,
    /// Renaming the live file away.
    Rotate,
    /// Removing rotated files past their retention.
    Prune,
}

impl Stage {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Recover => "recover",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rotate => "rotate",
            Self::Prune => "prune",
        }
    }
}

/// A failed journal operation.
#[derive(Debug, thiserror::Error)]
#[error("audit log {} failed for {}: {detail}", stage.as_str(), path.display())]
pub struct JournalError {
    /// What failed.
    pub stage: Stage,
    /// File concerned.
    pub path: PathBuf,
    /// What happened, for the log.
    pub detail: String,
    /// Short form for health reports: the stage and the I/O error kind.
    pub summary: String,
}

impl JournalError {
    fn io(stage: Stage, path: &Path, error: &io::Error) -> Self {
        Self {
            stage,
            path: path.to_path_buf(),
            detail: error.to_string(),
            summary: format!("{}: {}", stage.as_str(), error.kind()),
        }
    }

    fn chain(path: &Path, detail: String) -> Self {
        Self {
            stage: Stage::Recover,
            path: path.to_path_buf(),
            detail,
            summary: "recover: the chain head on disk is not valid".into(),
        }
    }
}

/// A torn last line found at open and moved out of the live file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Its length.
    pub bytes: u64,
    /// Where it was saved.
    pub saved_to: PathBuf,
}

/// How far a [`Journal::write`] got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Events at the front of the slice that are done with (written and fsynced, or skipped).
    pub consumed: usize,
    /// Of those, records written and fsynced.
    pub written: usize,
    /// Of those, events that could not be encoded and were skipped.
    pub skipped: usize,
}

/// The open audit log and the head of its chain.
pub struct Journal {
    live: PathBuf,
    max_file_bytes: u64,
    batch_max: usize,
    /// `None` after a failure: reopening trims whatever a failed write left behind.
    file: Option<File>,
    /// Bytes of the live file that hold acknowledged records.
    len: u64,
    head: ChainHead,
    next_rotation: u64,
    /// The current key seals new records; both verify the head read back at open.
    keys: AuditKeys,
    /// How long rotated files are kept; `None` keeps them.
    retention: Option<Duration>,
}

impl Journal {
    /// Open (or create) the live file and recover the chain head from the last complete line on
    /// disk: the live file's, or the newest rotated file's when the live one is empty. A torn
    /// last line (no newline: a write cut short) is saved next to the file and cut off; an
    /// invalid last record is an error, since the chain cannot be continued from it.
    pub fn open(
        live: &Path,
        max_file_bytes: u64,
        batch_max: usize,
        keys: &AuditKeys,
    ) -> Result<(Self, Option<TornTail>), JournalError> {
        let open = |e: io::Error| JournalError::io(Stage::Open, live, &e);
        if let Some(dir) = live.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(open)?;
        }
        let file = open_live(live).map_err(open)?;
        sync_dir(live).map_err(open)?;
        let recover = |e: io::Error| JournalError::io(Stage::Recover, live, &e);
        let tail = read_tail(&file).map_err(recover)?;
        let torn = match &tail.torn {
            Some(bytes) => Some(set_aside(live, &file, tail.complete_len, bytes).map_err(recover)?),
            None => None,
        };
        let head = match &tail.last_line {
            Some(line) => head_of(live, line, keys)?,
            None => head_from_rotated(live, keys)?,
        };
        let next_rotation = rotated_files(live).map_err(recover)?.last().map_or(1, |(n, _)| n + 1);
        let journal = Self {
            live: live.to_path_buf(),
            max_file_bytes,
            batch_max: batch_max.max(1),
            file: Some(file),
            len: tail.complete_len,
            head,
            next_rotation,
            keys: keys.clone(),
            retention: None,
        };
        Ok((journal, torn))
    }

    /// Keep rotated files for `retention` (by the time they were rotated), then remove them;
    /// `None` keeps them all.
    pub fn with_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Remove the rotated files older than the retention; returns how many were removed.
    pub fn prune(&self) -> Result<usize, JournalError> {
        let Some(retention) = self.retention else { return Ok(0) };
        let prune = |path: &Path, e: io::Error| JournalError::io(Stage::Prune, path, &e);
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        let mut rotated = rotated_files(&self.live).map_err(|e| prune(&self.live, e))?;
        // The newest rotated file holds the chain head while the live file is still empty.
        rotated.pop();
        for (_, path) in rotated {
            let rotated_at = fs::metadata(&path).and_then(|m| m.modified()).map_err(|e| prune(&path, e))?;
            if now.duration_since(rotated_at).is_ok_and(|age| age > retention) {
                fs::remove_file(&path).map_err(|e| prune(&path, e))?;
                tracing::info!(file = %path.display(), "removed a rotated audit file past its retention");
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.live).map_err(|e| prune(&self.live, e))?;
        }
        Ok(removed)
    }

    /// The last record written and fsynced.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }

    /// Number the next rotated file will get: changes at every rotation.
    pub fn next_rotation(&self) -> u64 {
        self.next_rotation
    }

    /// The live file.
    pub fn live(&self) -> &Path {
        &self.live
    }

    /// Seal `events` onto the chain and write them in order, in batches of at most `batch_max`
    /// records, each written at once and fsynced, rotating first when a batch would take the
    /// live file past `max_file_bytes`. `on_batch` hears of each fsynced batch. Stops at the first
    /// failure; what was fsynced before it stays counted in the progress.
    pub fn write(
        &mut self,
        events: &[AuditEvent],
        mut on_batch: impl FnMut(usize, Duration),
    ) -> (Progress, Result<(), JournalError>) {
        let mut progress = Progress::default();
        let result = self.write_batches(events, &mut progress, &mut on_batch);
        (progress, result)
    }

    fn write_batches(
        &mut self,
        events: &[AuditEvent],
        progress: &mut Progress,
        on_batch: &mut impl FnMut(usize, Duration),
    ) -> Result<(), JournalError> {
        while progress.consumed < events.len() {
            let mut file = match self.file.take() {
                Some(file) => file,
                None => self.reopen()?,
            };
            let mut head = self.head.clone();
            let mut batch = Vec::new();
            let (mut records, mut skipped, mut next) = (0, 0, progress.consumed);
            while next < events.len() && records < self.batch_max {
                let (line, sealed_head) = match head.seal_line(&events[next], self.keys.current.as_ref()) {
                    Ok(sealed) => sealed,
                    Err(e) => {
                        tracing::error!(error = %e, "audit event cannot be encoded; dropped");
                        skipped += 1;
                        next += 1;
                        continue;
                    }
                };
                let fits = self.len + (batch.len() + line.len()) as u64 <= self.max_file_bytes;
                // A record larger than a whole file still goes alone into an empty one.
                if !fits && (self.len > 0 || !batch.is_empty()) {
                    break;
                }
                batch.extend_from_slice(line.as_bytes());
                head = sealed_head;
                records += 1;
                next += 1;
            }
            if batch.is_empty() {
                self.file = Some(file);
                if next == progress.consumed {
                    self.rotate()?;
                }
                progress.consumed = next;
                progress.skipped += skipped;
                continue;
            }
            let started = Instant::now();
            file.write_all(&batch).map_err(|e| JournalError::io(Stage::Write, &self.live, &e))?;
            file.sync_data().map_err(|e| JournalError::io(Stage::Sync, &self.live, &e))?;
            on_batch(records, started.elapsed());
            self.file = Some(file);
            self.len += batch.len() as u64;
            self.head = head;
            progress.consumed = next;
            progress.written += records;
            progress.skipped += skipped;
        }
        Ok(())
    }

    /// Open the live file again after a failure or a rotation, cutting off anything a failed
    /// write left past the acknowledged records.
    fn reopen(&mut self) -> Result<File, JournalError> {
        let open = |e: io::Error| JournalError::io(Stage::Open, &self.live, &e);
        let file = open_live(&self.live).map_err(open)?;
        let len = file.metadata().map_err(open)?.len();
        if len > self.len {
            let write = |e: io::Error| JournalError::io(Stage::Write, &self.live, &e);
            file.set_len(self.len).map_err(write)?;
            file.sync_data().map_err(write)?;
            tracing::warn!(file = %self.live.display(), bytes = len - self.len, "cut off the remains of a failed audit write");
        } else if len < self.len {
            return Err(JournalError::chain(
                &self.live,
                format!(
                    "the live file shrank from {} to {len} bytes while the writer held it; not continuing the chain",
                    self.len
                ),
            ));
        }
        sync_dir(&self.live).map_err(open)?;
        Ok(file)
    }

    /// Rename the live file to the next rotated name; the next write opens a new one.
    fn rotate(&mut self) -> Result<(), JournalError> {
        self.file = None;
        let mut n = self.next_rotation;
        while rotated_path(&self.live, n).exists() {
            n += 1;
        }
        let target = rotated_path(&self.live, n);
        let rotate = |e: io::Error| JournalError::io(Stage::Rotate, &self.live, &e);
        fs::rename(&self.live, &target).map_err(rotate)?;
        self.len = 0;
        self.next_rotation = n + 1;
        sync_dir(&self.live).map_err(rotate)?;
        tracing::info!(
            file = %target.display(),
            last_seq = self.head.seq,
            last_hash = %self.head.hash,
            "audit log rotated"
        );
        Ok(())
    }
}

fn open_live(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).append(true).create(true).open(path)
}

/// Make renames and new files in the file's directory durable.
fn sync_dir(file: &Path) -> io::Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The end of a file: where its complete lines end, its last complete line and what follows it.
struct Tail {
    complete_len: u64,
    last_line: Option<Vec<u8>>,
    torn: Option<Vec<u8>>,
}

/// Read backwards from the end until the last complete line is in hand.
fn read_tail(file: &File) -> io::Result<Tail> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut data = Vec::new();
    loop {
        let done = match data.iter().rposition(|b| *b == b'\n') {
            Some(last) => start == 0 || data[..last].contains(&b'\n'),
            None => start == 0,
        };
        if done {
            break;
        }
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (start - from) as usize];
        file.read_exact_at(&mut chunk, from)?;
        chunk.extend_from_slice(&data);
        data = chunk;
        start = from;
    }
    Ok(match data.iter().rposition(|b| *b == b'\n') {
        None => Tail { complete_len: 0, last_line: None, torn: (!data.is_empty()).then_some(data) },
        Some(last) => {
            let first = data[..last].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            Tail {
                complete_len: start + last as u64 + 1,
                last_line: Some(data[first..last].to_vec()),
                torn: (last + 1 < data.len()).then(|| data[last + 1..].to_vec()),
            }
        }
    })
}

/// Save a torn tail next to the live file, then cut it off.
fn set_aside(live: &Path, file: &File, complete_len: u64, torn: &[u8]) -> io::Result<TornTail> {
    let millis = chrono::Utc::now().timestamp_millis();
    let name = live.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let mut suffix = 0;
    let (mut side, saved_to) = loop {
        let candidate = live.with_file_name(match suffix {
            0 => format!("{name}.torn-{millis}"),
            n => format!("{name}.torn-{millis}-{n}"),
        });
        match OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(side) => break (side, candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => suffix += 1,
            Err(e) => return Err(e),
        }
    };
    side.write_all(torn)?;
    side.sync_all()?;
    file.set_len(complete_len)?;
    file.sync_all()?;
    sync_dir(live)?;
    Ok(TornTail { bytes: torn.len() as u64, saved_to })
}

fn head_of(path: &Path, line: &[u8], keys: &AuditKeys) -> Result<ChainHead, JournalError> {
    let record = AuditRecord::parse(line, keys).map_err(|problem| {
        JournalError::chain(
            path,
            format!("its last record is not valid ({problem}); check it with `beryl-core-api audit verify`"),
        )
    })?;
    // Unkeyed records after a keyed one would break the chain.
    if record.key_id.is_some() && keys.current.is_none() {
        return Err(JournalError::chain(path, "the chain is keyed and no AUDIT_HMAC_KEY is set".into()));
    }
    Ok(ChainHead::of(&record))
}

/// The head from the newest rotated file, for a live file without records; genesis if none.
fn head_from_rotated(live: &Path, keys: &AuditKeys) -> Result<ChainHead, JournalError> {
    let recover = |path: &Path, e: io::Error| JournalError::io(Stage::Recover, path, &e);
    for (_, path) in rotated_files(live).map_err(|e| recover(live, e))?.iter().rev() {
        let tail = File::open(path).and_then(|f| read_tail(&f)).map_err(|e| recover(path, e))?;
        if tail.torn.is_some() {
            return Err(JournalError::chain(path, "a rotated file ends in a truncated line".into()));
        }
        if let Some(line) = tail.last_line {
            return head_of(path, &line, keys);
        }
    }
    Ok(ChainHead::genesis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{
        tests::{event, test_keys},
        verify::{verify, Check, Start},
    };

    fn genesis() -> Check {
        Check::new(Start::Genesis, test_keys())
    }

    fn events(from: u64, n: u64) -> Vec<AuditEvent> {
        (from..from + n).map(event).collect()
    }

    fn write_all(journal: &mut Journal, events: &[AuditEvent]) {
        let (progress, result) = journal.write(events, |_, _| {});
        result.expect("write");
        assert_eq!((progress.consumed, progress.written), (events.len(), events.len()));
    }

    #[test]
    fn a_new_log_starts_at_genesis_and_a_reopened_one_continues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("nested/audit.log");
        let (mut journal, torn) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("open");
        assert_eq!((journal.head().seq, torn), (0, None));
        write_all(&mut journal, &events(1, 3));
        drop(journal);
        let (mut journal, _) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("reopen");
        assert_eq!(journal.head().seq, 3);
        write_all(&mut journal, &events(4, 2));
        assert_eq!(verify(&live, &genesis()).expect("intact").last_seq, 5);
    }

    #[test]
    fn a_torn_last_line_is_set_aside_and_the_chain_continues() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("open");
        write_all(&mut journal, &events(1, 3));
        drop(journal);
        let torn = b"{\"seq\":4,\"time\":\"2023-11";
        fs::OpenOptions::new().append(true).open(&live).and_then(|mut f| f.write_all(torn)).expect("tear");
        let (mut journal, set_aside) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("reopen");
        let set_aside = set_aside.expect("the torn tail is reported");
        assert_eq!(fs::read(&set_aside.saved_to).expect("saved"), torn);
        assert_eq!(journal.head().seq, 3);
        write_all(&mut journal, &events(4, 2));
        assert_eq!(verify(&live, &genesis()).expect("intact").last_seq, 5);
    }

    #[test]
    fn an_invalid_last_record_stops_the_chain_from_being_continued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("open");
        write_all(&mut journal, &events(1, 2));
        drop(journal);
        let text = fs::read_to_string(&live).expect("read");
        fs::write(&live, text.replacen("req-2", "req-9", 1)).expect("tamper");
        let error = Journal::open(&live, 1 << 20, 100, &test_keys()).err().expect("refused");
        assert_eq!(error.stage, Stage::Recover);
        assert!(error.detail.contains("not valid"), "{error}");
    }

    #[test]
    fn rotation_keeps_files_under_the_limit_and_the_chain_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 1500, 4, &test_keys()).expect("open");
        write_all(&mut journal, &events(1, 30));
        let rotated = rotated_files(&live).expect("list");
        assert!(rotated.len() >= 5, "{rotated:?}");
        assert_eq!(verify(&live, &genesis()).expect("intact").last_seq, 30);
        for (_, path) in rotated.iter().chain([(0, live.clone())].iter()) {
            let size = fs::metadata(path).expect("stat").len();
            assert!(size <= 1500, "{} has {size} bytes", path.display());
        }
        drop(journal);
        // The live file may be empty right after a rotation: the head then comes from the newest
        // rotated file.
        fs::write(&live, "").expect("empty the live file");
        let before = verify(&live, &genesis()).expect("intact").last_seq;
        assert!(before > 0);
        let (mut journal, _) = Journal::open(&live, 1500, 4, &test_keys()).expect("reopen");
        assert_eq!(journal.head().seq, before);
        write_all(&mut journal, &events(100, 3));
        let summary = verify(&live, &genesis()).expect("intact");
        assert_eq!(summary.last_seq, before + 3);
    }

    #[test]
    fn the_remains_of_a_failed_write_are_cut_off_before_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 1 << 20, 100, &test_keys()).expect("open");
        write_all(&mut journal, &events(1, 2));
        // A write that failed part-way: bytes on disk, handle dropped, nothing acknowledged.
        fs::OpenOptions::new().append(true).open(&live).and_then(|mut f| f.write_all(b"{\"seq\":3,")).expect("tear");
        journal.file = None;
        write_all(&mut journal, &events(3, 2));
        assert_eq!(verify(&live, &genesis()).expect("intact").last_seq, 4);
    }

    #[test]
    fn batches_hold_at_most_batch_max_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 1 << 20, 4, &test_keys()).expect("open");
        let mut batches = Vec::new();
        let (progress, result) = journal.write(&events(1, 10), |n, _| batches.push(n));
        result.expect("write");
        assert_eq!(progress.written, 10);
        assert_eq!(batches, vec![4, 4, 2]);
    }

    #[test]
    fn rotated_files_past_their_retention_are_removed_but_the_newest_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("audit.log");
        let (mut journal, _) = Journal::open(&live, 4096, 4, &test_keys()).expect("open");
        write_all(&mut journal, &events(1, 60));
        let rotated = rotated_files(&live).expect("list");
        assert!(rotated.len() >= 3, "{rotated:?}");
        let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
        for (_, path) in &rotated {
            fs::File::options().write(true).open(path).and_then(|f| f.set_modified(old)).expect("age the file");
        }
        let journal = journal.with_retention(Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(journal.prune().expect("prune"), rotated.len() - 1);
        assert_eq!(rotated_files(&live).expect("list"), rotated[rotated.len() - 1..].to_vec());
        let summary = verify(&live, &Check::new(Start::Continuing, test_keys())).expect("what is left verifies");
        assert_eq!(summary.last_seq, 60);
        // Without a retention nothing goes.
        assert_eq!(journal.with_retention(None).prune().expect("prune"), 0);
    }
}
