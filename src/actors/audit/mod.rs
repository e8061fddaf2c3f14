//! The audit writer: one supervised actor appending hash-chained records (see
//! [`crate::domain::audit`]) to AUDIT_LOG_FILE, in batches that are written once and fsynced,
//! rotating the file by size with the chain continuing across files.
//!
//! - Request handling hands records over with [`AuditSink::record`], which never blocks: it
//!   queues the record and wakes the writer; a record beyond `backlog_max` is dropped and counted
//!   in `beryl_audit_dropped_total{reason="backlog"}`.
//! - A batch is written when `batch_max` records wait, or `flush_interval_ms` after the first of
//!   them, whichever comes first, or at once when a caller waits for it to be durable
//!   ([`AuditSink::durable`] sends [`Awaited`]): group commit, the records queued while one
//!   batch is written and fsynced form the next. [`Flush`] writes at once and answers when the
//!   records are durable; shutdown (`drained`) does the same for whatever is still queued.
//! - On every (re)start the chain head is read back from the last complete line on disk. A torn
//!   last line (a write cut short by a crash) is saved to `<file>.torn-<millis>` and cut off; an
//!   invalid last record stops the writer from continuing the chain until someone has looked at
//!   it (`beryl-core-api audit verify`): it reports the log down and keeps retrying.
//! - When the disk fails, records stay queued (at most [`BACKLOG_BATCHES`] × `batch_max`; beyond
//!   that they are dropped and counted), writes are retried with backoff, every failure is
//!   counted, and the `audit-log` dependency is reported down until a write succeeds; it is
//!   required for readiness when the failure policy is fail_closed.
//! - Queued records survive a restart of the writer: every instance the factory builds shares
//!   the queue. It only ever holds whole events, so a failed handler cannot leave it half-changed.
//! - File I/O is blocking `std::fs` on the writer's own arbiter thread: nothing else runs there,
//!   and a batch is one write and one fsync of at most `batch_max` records.
//! - Records are sealed with the HMAC key AUDIT_HMAC_KEY (see [`crate::domain::audit::AuditKey`]).
//! - Every record handed over gets a ticket, its position in the stream; [`AuditSink::durable`]
//!   waits until the writer has fsynced up to it, without waiting for the flush interval. Under
//!   fail_closed the audit layer waits so before it answers a committed change; under fail_open
//!   nobody waits and records are batched by the interval.
//! - Denials without a token go through a [`DenialAggregator`]: one record per client, action
//!   and window, with a count.
//! - A supervised housekeeping actor ([`housekeeping`], not critical) closes due denial windows,
//!   records the chain head in PostgreSQL every `head_interval_secs`, and exports the volume's
//!   free space. Rotated files past `retention_days` are removed at open and after each rotation
//!   (never the newest).

pub mod housekeeping;
mod journal;
pub mod messages;
pub mod privacy;

use std::{
    collections::VecDeque,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use actix::AsyncContext;
use chrono::Utc;
use metrics::{Counter, Gauge, Histogram};
use parking_lot::Mutex;

pub use messages::{Append, Awaited, Flush, FlushReport, Housekeep, Queued, WriteQueued};

use self::{
    housekeeping::Housekeeping,
    journal::{Journal, JournalError},
};
use crate::{
    actors::runtime::{
        ActorKind, ActorRef, ActorSpec, Ctx, Dependency, DependencyStatus, Envelope, Handle, Managed, Registry, Reply,
        Supervision,
    },
    adapters::postgres::PgPool,
    config::{AuditFailurePolicy, Settings},
    domain::audit::{AuditError, AuditEvent, AuditKeys, ChainHead, DenialAggregator},
    telemetry::{self, Metrics},
};

/// Most clients whose denials are aggregated separately within one window.
const DENIAL_GROUPS_MAX: usize = 10_000;

/// Registered name of the audit writer.
pub const NAME: &str = "audit-writer";

/// Name under which the writer reports the audit log's state as a dependency.
pub const DEPENDENCY: &str = "audit-log";

/// Records that may wait for the disk, in batches of `batch_max`.
pub const BACKLOG_BATCHES: usize = 64;

/// First retry delay after a failed write; it doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the writer needs from the settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The live file.
    pub log_file: PathBuf,
    /// Size after which the live file is rotated.
    pub max_file_bytes: u64,
    /// Longest wait between the first queued record and its write.
    pub flush_interval: Duration,
    /// Most records per write and fsync.
    pub batch_max: usize,
    /// Most records waiting; later ones are dropped.
    pub backlog_max: usize,
    /// Whether readiness requires the log to be writable (fail_closed).
    pub required: bool,
    /// The current key seals, both verify the head at open.
    pub keys: AuditKeys,
    /// How long rotated files are kept.
    pub retention: Option<Duration>,
    /// Denial aggregation window.
    pub denial_window: Duration,
    /// How often the head is recorded in PostgreSQL.
    pub head_interval: Duration,
}

impl From<&Settings> for AuditConfig {
    fn from(s: &Settings) -> Self {
        let batch_max = s.audit.batch_max.max(1);
        Self {
            log_file: s.audit.log_file.clone(),
            max_file_bytes: s.audit.max_file_bytes,
            flush_interval: Duration::from_millis(s.audit.flush_interval_ms),
            batch_max,
            backlog_max: batch_max.saturating_mul(BACKLOG_BATCHES),
            required: is_critical(s),
            keys: AuditKeys::from_secrets(
                s.audit.hmac_key.as_ref().map(|k| k.expose()),
                s.audit.hmac_key_previous.as_ref().map(|k| k.expose()),
            ),
            retention: s.audit.retention(),
            denial_window: Duration::from_secs(s.audit.denial_window_secs),
            head_interval: Duration::from_secs(s.audit.head_interval_secs),
        }
    }
}

/// Whether the writer is critical for readiness: when the failure policy in effect is
/// fail_closed, writes cannot be served without it.
pub fn is_critical(settings: &Settings) -> bool {
    settings.audit_failure_policy() == AuditFailurePolicy::FailClosed
}

/// What the sink and every instance of the writer share: the queue, the count of records
/// accepted and done with, the chain head and the open denial windows.
pub struct Shared {
    queue: Mutex<VecDeque<AuditEvent>>,
    /// Records ever queued; changed only under the queue's lock, so that it numbers them in
    /// queue order.
    accepted: AtomicU64,
    /// Records ever taken off the queue (written, or lost and counted).
    done: tokio::sync::watch::Sender<u64>,
    head: Mutex<ChainHead>,
    denials: Mutex<DenialAggregator>,
    /// An [`Awaited`] is on its way to the writer and has not yet taken the queue: records
    /// queued before it does go out with it, so a waiter that finds it set sends no other.
    awaited: AtomicBool,
}

impl Shared {
    fn new(config: &AuditConfig) -> Self {
        Self {
            queue: Mutex::default(),
            accepted: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new(0),
            head: Mutex::new(ChainHead::genesis()),
            denials: Mutex::new(DenialAggregator::new(config.denial_window, DENIAL_GROUPS_MAX)),
            awaited: AtomicBool::new(false),
        }
    }

    /// `n` records were taken off the queue.
    fn taken(&self, n: usize) {
        if n > 0 {
            self.done.send_modify(|done| *done += n as u64);
        }
    }
}

/// How request handling hands records to the writer without waiting: a push onto the writer's
/// queue, and a [`Queued`] wake-up only when the queue was empty or a batch became full, so the
/// writer handles one message per batch rather than one per record.
#[derive(Clone)]
pub struct AuditSink {
    /// The writer.
    pub writer: ActorRef<AuditWriter>,
    shared: Arc<Shared>,
    config: Arc<AuditConfig>,
    metrics: Metrics,
}

impl AuditSink {
    /// Queue `event`; its ticket for [`Self::durable`], or `None` (counted) when the backlog is
    /// full.
    pub fn record(&self, event: AuditEvent) -> Option<u64> {
        let mut queue = self.shared.queue.lock();
        if queue.len() >= self.config.backlog_max {
            drop(queue);
            count_dropped(&self.metrics, "backlog", 1);
            return None;
        }
        queue.push_back(event);
        let ticket = self.shared.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        let waiting = queue.len();
        drop(queue);
        // A lost wake-up delays the batch, never loses it: the next full batch, a restart and
        // the shutdown drain all write what is queued.
        if waiting == 1 || waiting == self.config.batch_max {
            self.writer.try_tell(Queued);
        }
        Some(ticket)
    }

    /// Count a denial of a request without a valid token: it joins its client's window, and is
    /// written with the window's count when the window closes.
    pub fn deny(&self, event: AuditEvent) {
        let now = event.time;
        let mut denials = self.shared.denials.lock();
        let single = denials.add(event);
        let due = if denials.is_due(now) { denials.due(now) } else { Vec::new() };
        drop(denials);
        if single.is_none() {
            self.metrics.with(|| metrics::counter!(telemetry::AUDIT_DENIALS_AGGREGATED_TOTAL).increment(1));
        }
        for event in single.into_iter().chain(due) {
            self.record(event);
        }
    }

    /// Write the records of the denial windows closed at `now`.
    pub fn close_denial_windows(&self, now: chrono::DateTime<chrono::Utc>) {
        let due = self.shared.denials.lock().due(now);
        for event in due {
            self.record(event);
        }
    }

    /// Wait until the record with `ticket` is durable (or was given up as lost), at most
    /// `within`; false when it is not by then. The writer writes what is queued at once rather
    /// than at the end of the flush interval.
    pub async fn durable(&self, ticket: u64, within: Duration) -> bool {
        let mut done = self.shared.done.subscribe();
        if *done.borrow_and_update() < ticket && !self.shared.awaited.swap(true, Ordering::SeqCst) {
            // A closed mailbox loses the wake-up: the next waiter sends one again, and a new
            // instance writes what is queued when it starts.
            if !self.writer.tell(Awaited) {
                self.shared.awaited.store(false, Ordering::SeqCst);
            }
        }
        let reached = tokio::time::timeout(within, done.wait_for(|d| *d >= ticket)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// The chain head: the last record written and fsynced.
    pub fn head(&self) -> ChainHead {
        self.shared.head.lock().clone()
    }

    /// The live file.
    pub fn log_file(&self) -> &std::path::Path {
        &self.config.log_file
    }

    /// Records waiting to be written.
    pub fn backlog(&self) -> usize {
        self.shared.queue.lock().len()
    }

    /// Whether another record fits.
    pub fn has_room(&self) -> bool {
        self.backlog() < self.config.backlog_max
    }
}

/// Start the writer and its housekeeping (which records chain heads through `postgres` when
/// there is one) under supervision, or nothing when auditing is disabled.
pub fn spawn(
    supervision: &Supervision,
    settings: &Settings,
    registry: Arc<Registry>,
    metrics: Metrics,
    postgres: Option<PgPool>,
) -> anyhow::Result<Option<AuditSink>> {
    if !settings.audit.enabled {
        return Ok(None);
    }
    let config = Arc::new(AuditConfig::from(settings));
    if config.keys.current.is_none() {
        tracing::warn!("no AUDIT_HMAC_KEY: audit records are sealed with plain SHA-256, which anyone can recompute");
    }
    let shared = Arc::new(Shared::new(&config));
    let spec = ActorSpec::new(NAME, ActorKind::Audit, is_critical(settings));
    let (c, q, m) = (config.clone(), shared.clone(), metrics.clone());
    let writer =
        supervision.spawn(spec, move || AuditWriter::new(c.clone(), registry.clone(), m.clone(), q.clone()))?;
    let sink = AuditSink { writer, shared, config, metrics };
    let (s, spec) = (sink.clone(), ActorSpec::new(housekeeping::NAME, ActorKind::Audit, false));
    supervision.spawn(spec, move || Housekeeping::new(s.clone(), postgres.clone()))?;
    Ok(Some(sink))
}

fn count_dropped(metrics: &Metrics, reason: &'static str, n: usize) {
    metrics.with(|| metrics::counter!(telemetry::AUDIT_DROPPED_TOTAL, "reason" => reason).increment(n as u64));
}

/// Metric handles, looked up once per instance.
struct WriterMetrics {
    metrics: Metrics,
    written: Counter,
    batch_size: Histogram,
    flush_seconds: Histogram,
    last_seq: Gauge,
}

impl WriterMetrics {
    fn new(metrics: Metrics) -> Self {
        let (written, batch_size, flush_seconds, last_seq) = metrics.with(|| {
            (
                metrics::counter!(telemetry::AUDIT_RECORDS_WRITTEN_TOTAL),
                metrics::histogram!(telemetry::AUDIT_BATCH_SIZE),
                metrics::histogram!(telemetry::AUDIT_FLUSH_SECONDS),
                metrics::gauge!(telemetry::AUDIT_LAST_SEQ),
            )
        });
        Self { metrics, written, batch_size, flush_seconds, last_seq }
    }
}

/// Appends audit records to the audit log.
pub struct AuditWriter {
    config: Arc<AuditConfig>,
    registry: Arc<Registry>,
    metrics: WriterMetrics,
    /// Records accepted and not yet durable, and what goes with them; shared with every later
    /// instance.
    shared: Arc<Shared>,
    /// `None` until the log has been opened and its chain head recovered.
    journal: Option<Journal>,
    /// Generation of the armed timer (end of the flush interval, or the next retry); a timer
    /// that is no longer armed does nothing when it fires.
    timer: Option<u64>,
    /// Last timer generation handed out.
    timers: u64,
    /// While the log cannot be written: the delay before the next attempt.
    retry: Option<Duration>,
    /// What was last reported to the registry.
    reported: Option<DependencyStatus>,
    /// Whether drops for a full backlog have been logged since the last successful write.
    dropping: bool,
}

impl AuditWriter {
    /// A writer with nothing open yet; `shared` carries records over from earlier instances.
    pub fn new(config: Arc<AuditConfig>, registry: Arc<Registry>, metrics: Metrics, shared: Arc<Shared>) -> Self {
        Self {
            config,
            registry,
            metrics: WriterMetrics::new(metrics),
            shared,
            journal: None,
            timer: None,
            timers: 0,
            retry: None,
            reported: None,
            dropping: false,
        }
    }

    /// Open the log and recover the chain head.
    fn open(&mut self) -> Result<(), AuditError> {
        match Journal::open(&self.config.log_file, self.config.max_file_bytes, self.config.batch_max, &self.config.keys)
        {
            Ok((journal, torn)) => {
                let journal = journal.with_retention(self.config.retention);
                if let Some(torn) = torn {
                    tracing::warn!(
                        file = %self.config.log_file.display(),
                        bytes = torn.bytes,
                        saved_to = %torn.saved_to.display(),
                        "the audit log ended in a torn line (a write cut short); moved it aside"
                    );
                }
                let head = journal.head();
                tracing::info!(file = %journal.live().display(), last_seq = head.seq, last_hash = %head.hash, "audit log open");
                self.metrics.last_seq.set(head.seq as f64);
                *self.shared.head.lock() = head.clone();
                self.prune(&journal);
                self.journal = Some(journal);
                self.recovered();
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Write every queued record now.
    fn flush(&mut self) -> Result<FlushReport, AuditError> {
        if self.journal.is_none() {
            self.open()?;
        }
        let Some(journal) = self.journal.as_mut() else {
            return Err(AuditError::Unavailable("the audit log is not open".into()));
        };
        let rotation = journal.next_rotation();
        let mut queue = self.shared.queue.lock();
        let metrics = &self.metrics;
        let (progress, result) = journal.write(queue.make_contiguous(), |records, took| {
            metrics.batch_size.record(records as f64);
            metrics.flush_seconds.record(took.as_secs_f64());
        });
        queue.drain(..progress.consumed);
        drop(queue);
        *self.shared.head.lock() = journal.head().clone();
        self.shared.taken(progress.consumed);
        let last_seq = journal.head().seq;
        if journal.next_rotation() != rotation {
            if let Some(journal) = &self.journal {
                self.prune(journal);
            }
        }
        self.metrics.written.increment(progress.written as u64);
        self.metrics.last_seq.set(last_seq as f64);
        if progress.skipped > 0 {
            count_dropped(&self.metrics.metrics, "encoding", progress.skipped);
        }
        match result {
            Ok(()) => {
                self.recovered();
                Ok(FlushReport { records_written: progress.written as u64, last_seq })
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Write now; after a failure, schedule the retry.
    fn write_queued(&mut self, ctx: &mut Ctx<Self>) -> Result<FlushReport, AuditError> {
        self.timer = None;
        let result = self.flush();
        if let (Err(_), Some(delay)) = (&result, self.retry) {
            self.schedule(ctx, delay);
        }
        result
    }

    /// Deliver [`WriteQueued`] to this actor after `after`, through the runtime like any message,
    /// unless another timer was armed or a write happened meanwhile. Timers are disarmed rather
    /// than cancelled: actix keeps a pending `cancel_future` across a supervised restart while it
    /// numbers the new instance's futures from scratch, so a stale cancellation could hit the
    /// runtime's own restart timer.
    fn schedule(&mut self, ctx: &mut Ctx<Self>, after: Duration) {
        self.timers += 1;
        let armed = self.timers;
        self.timer = Some(armed);
        ctx.run_later(after, move |host, ctx| {
            if host.actor().timer == Some(armed) {
                let entry = host.entry().clone();
                ctx.notify(Envelope::new(WriteQueued, &entry));
            }
        });
    }

    /// Remove rotated files past their retention; a failure is counted and logged, and retried
    /// at the next rotation.
    fn prune(&self, journal: &Journal) {
        match journal.prune() {
            Ok(0) => {}
            Ok(n) => self
                .metrics
                .metrics
                .with(|| metrics::counter!(telemetry::AUDIT_FILES_REMOVED_TOTAL).increment(n as u64)),
            Err(e) => {
                tracing::warn!(error = %e, "rotated audit files past their retention could not be removed");
                self.metrics.metrics.with(|| {
                    metrics::counter!(telemetry::AUDIT_WRITE_FAILURES_TOTAL, "stage" => e.stage.as_str()).increment(1)
                });
            }
        }
    }

    /// Count and report a failure; the records stay queued. Returns what callers are told.
    fn failed(&mut self, error: JournalError) -> AuditError {
        let queued = self.shared.queue.lock().len();
        self.metrics.metrics.with(|| {
            metrics::counter!(telemetry::AUDIT_WRITE_FAILURES_TOTAL, "stage" => error.stage.as_str()).increment(1)
        });
        let delay = match self.retry {
            None => {
                tracing::error!(error = %error, queued, "the audit log cannot be written; records stay queued and writes are retried");
                RETRY_MIN
            }
            Some(previous) => {
                tracing::warn!(error = %error, queued, "audit log write retry failed");
                previous.saturating_mul(2).min(RETRY_MAX)
            }
        };
        self.retry = Some(delay);
        self.report(DependencyStatus::Down, Some(error.summary.clone()));
        AuditError::Unavailable(error.summary)
    }

    /// The log was opened or written.
    fn recovered(&mut self) {
        if self.retry.take().is_some() {
            tracing::info!(file = %self.config.log_file.display(), "the audit log is writable again");
        }
        self.dropping = false;
        self.report(DependencyStatus::Up, None);
    }

    fn report(&mut self, status: DependencyStatus, detail: Option<String>) {
        if self.reported == Some(status) {
            return;
        }
        self.reported = Some(status);
        self.registry.report_dependency(Dependency {
            name: DEPENDENCY.into(),
            status,
            required: self.config.required,
            owner: NAME.into(),
            detail,
            latency_ms: None,
            checked_at: Utc::now(),
        });
    }
}

impl Managed for AuditWriter {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        // An `Awaited` an earlier instance did not handle is lost; what it was for goes out now.
        self.shared.awaited.store(false, Ordering::SeqCst);
        match self.open() {
            // Records a previous instance accepted go out first.
            Ok(()) if !self.shared.queue.lock().is_empty() => {
                let _ = self.write_queued(ctx);
            }
            Ok(()) => {}
            Err(_) => self.schedule(ctx, self.retry.unwrap_or(RETRY_MIN)),
        }
    }

    fn drained(&mut self, _: &mut Ctx<Self>) {
        self.timer = None;
        // Open denial windows close now: their counts go out with the rest.
        let denials = self.shared.denials.lock().drain();
        if !denials.is_empty() {
            let mut queue = self.shared.queue.lock();
            for event in denials {
                queue.push_back(event);
                self.shared.accepted.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !self.shared.queue.lock().is_empty() {
            if let Err(e) = self.flush() {
                let lost = std::mem::take(&mut *self.shared.queue.lock()).len();
                self.shared.taken(lost);
                count_dropped(&self.metrics.metrics, "shutdown", lost);
                tracing::error!(error = %e, lost, "audit records could not be written before shutdown");
            }
        }
        if let Some(journal) = &self.journal {
            let head = journal.head();
            tracing::info!(file = %journal.live().display(), last_seq = head.seq, last_hash = %head.hash, "audit log closed");
        }
    }
}

impl Handle<Append> for AuditWriter {
    fn handle(&mut self, Append(event): Append, ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), AuditError>> {
        let mut queue = self.shared.queue.lock();
        let waiting = queue.len();
        if waiting >= self.config.backlog_max {
            drop(queue);
            count_dropped(&self.metrics.metrics, "backlog", 1);
            if !std::mem::replace(&mut self.dropping, true) {
                tracing::error!(waiting, "audit backlog full: records are being dropped until the log can be written");
            }
            return Reply::Now(Err(AuditError::BacklogFull(waiting)));
        }
        queue.push_back(event);
        self.shared.accepted.fetch_add(1, Ordering::Relaxed);
        drop(queue);
        if waiting + 1 >= self.config.batch_max && self.retry.is_none() {
            let _ = self.write_queued(ctx);
        } else if self.timer.is_none() {
            self.schedule(ctx, self.config.flush_interval);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<Queued> for AuditWriter {
    fn handle(&mut self, _: Queued, ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), AuditError>> {
        let waiting = self.shared.queue.lock().len();
        if waiting >= self.config.batch_max && self.retry.is_none() {
            let _ = self.write_queued(ctx);
        } else if waiting > 0 && self.timer.is_none() {
            self.schedule(ctx, self.config.flush_interval);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<Awaited> for AuditWriter {
    fn handle(&mut self, _: Awaited, ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), AuditError>> {
        // Cleared before the queue is taken (an acquiring swap, so that the records of the
        // waiters who found it set are seen): a waiter who queues after this sends another.
        self.shared.awaited.swap(false, Ordering::SeqCst);
        // While the log cannot be written the retry timer writes; nothing queued, nothing to do.
        if self.retry.is_some() || self.shared.queue.lock().is_empty() {
            return Reply::Now(Ok(()));
        }
        Reply::Now(self.write_queued(ctx).map(|_| ()))
    }
}

impl Handle<Flush> for AuditWriter {
    fn handle(&mut self, _: Flush, ctx: &mut Ctx<Self>) -> Reply<Self, Result<FlushReport, AuditError>> {
        Reply::Now(self.write_queued(ctx))
    }
}

impl Handle<WriteQueued> for AuditWriter {
    fn handle(&mut self, _: WriteQueued, ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), AuditError>> {
        Reply::Now(self.write_queued(ctx).map(|_| ()))
    }
}
