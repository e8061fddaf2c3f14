//! The audit trail's periodic work that is not writing, done by a supervised actor of its own
//! ([`NAME`], kind `audit`, not critical: readiness never waits for it): every second
//! ([`Housekeep`]) it closes the denial windows that are due and exports the free space of the
//! log's volume; every `head_interval_secs` it records the chain head in PostgreSQL when it has
//! moved. A failure to record the head is logged and counted (and the message's outcome is
//! `error`); a panic restarts the actor with backoff, after which it records the head again.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use super::{AuditSink, Housekeep};
use crate::{
    actors::runtime::{every, Ctx, Handle, Managed, Reply},
    adapters::{
        audit_heads,
        postgres::{PgPool, PostgresError},
    },
    domain::audit::ChainHead,
    telemetry,
};

/// Registered name of the housekeeping actor.
pub const NAME: &str = "audit-housekeeping";

const TICK: Duration = Duration::from_secs(1);

/// Longest wait for PostgreSQL when recording a head; the actor handles nothing else meanwhile.
const RECORD_WITHIN: Duration = Duration::from_secs(5);

/// Closes denial windows, measures the volume and records chain heads (only with a database).
pub struct Housekeeping {
    sink: AuditSink,
    postgres: Option<PgPool>,
    /// The name the head is recorded under.
    log: String,
    /// The head last recorded by this instance.
    recorded: Option<ChainHead>,
    /// When this instance last tried to record a head.
    attempted: Option<Instant>,
}

impl Housekeeping {
    /// Housekeeping for `sink`; a restart starts over (the head is recorded again at once).
    pub fn new(sink: AuditSink, postgres: Option<PgPool>) -> Self {
        let log = log_name(sink.log_file());
        Self { sink, postgres, log, recorded: None, attempted: None }
    }

    /// The head to record now, if any: it has moved since it was last recorded and
    /// `head_interval_secs` has passed since the last attempt.
    fn head_due(&self) -> Option<ChainHead> {
        let interval = self.sink.config.head_interval;
        if self.postgres.is_none() || interval.is_zero() || self.attempted.is_some_and(|at| at.elapsed() < interval) {
            return None;
        }
        let head = self.sink.head();
        (head.seq > 0 && self.recorded.as_ref() != Some(&head)).then_some(head)
    }
}

impl Managed for Housekeeping {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, TICK, || Housekeep);
    }
}

impl Handle<Housekeep> for Housekeeping {
    fn handle(&mut self, _: Housekeep, _: &mut Ctx<Self>) -> Reply<Self, Result<(), PostgresError>> {
        self.sink.close_denial_windows(chrono::Utc::now());
        volume_space(&self.sink);
        let (Some(head), Some(pool)) = (self.head_due(), self.postgres.clone()) else { return Reply::Now(Ok(())) };
        self.attempted = Some(Instant::now());
        let log = self.log.clone();
        let recorded = head.clone();
        Reply::atomic(
            async move {
                match tokio::time::timeout(RECORD_WITHIN, audit_heads::record(&pool, &log, &recorded)).await {
                    Ok(result) => result,
                    Err(_) => Err(PostgresError::Timeout),
                }
            },
            move |result, this: &mut Self, _| match result {
                Ok(()) => {
                    this.recorded = Some(head);
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(error = %e, log = %this.log, "the audit chain head could not be recorded in PostgreSQL");
                    this.sink.metrics.with(|| metrics::counter!(telemetry::AUDIT_HEAD_FAILURES_TOTAL).increment(1));
                    Err(e)
                }
            },
        )
    }
}

/// The name a log's head is recorded under: the absolute path of its live file.
pub fn log_name(live: &Path) -> String {
    std::path::absolute(live).unwrap_or_else(|_| live.to_path_buf()).display().to_string()
}

/// Export the free and total bytes of the volume holding the log.
fn volume_space(sink: &AuditSink) {
    let live = sink.log_file();
    let dir = match live.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Before the writer has created the directory there is nothing to measure yet.
    let Ok(stat) = nix::sys::statvfs::statvfs(dir) else { return };
    let fragment = stat.fragment_size();
    let free = stat.blocks_available().saturating_mul(fragment);
    let size = stat.blocks().saturating_mul(fragment);
    sink.metrics.with(|| {
        metrics::gauge!(telemetry::AUDIT_VOLUME_FREE_BYTES).set(free as f64);
        metrics::gauge!(telemetry::AUDIT_VOLUME_SIZE_BYTES).set(size as f64);
    });
}
