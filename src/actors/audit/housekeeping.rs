//! The audit writer's periodic work that is not writing: every second it closes the denial
//! windows that are due and exports the free space of the log's volume; every
//! `head_interval_secs` it records the chain head in PostgreSQL when it has moved. It runs as a
//! task on the runtime that started it; each step handles its own failure (logged and counted),
//! so the loop itself never ends early.

use std::{path::Path, time::Duration};

use super::AuditSink;
use crate::{
    adapters::{audit_heads, postgres::PgPool},
    domain::audit::ChainHead,
    telemetry,
};

const TICK: Duration = Duration::from_secs(1);

/// Start the loop for `sink`; chain heads are recorded only with a database.
pub fn spawn(sink: AuditSink, postgres: Option<PgPool>) {
    let log = log_name(sink.log_file());
    actix_rt::spawn(async move {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut recorded: Option<ChainHead> = None;
        let mut last_record = tokio::time::Instant::now();
        loop {
            ticks.tick().await;
            sink.close_denial_windows(chrono::Utc::now());
            volume_space(&sink);
            let interval = sink.config.head_interval;
            let (Some(pool), false) = (&postgres, interval.is_zero()) else { continue };
            let head = sink.head();
            if last_record.elapsed() < interval || recorded.as_ref() == Some(&head) || head.seq == 0 {
                continue;
            }
            last_record = tokio::time::Instant::now();
            match audit_heads::record(pool, &log, &head).await {
                Ok(()) => recorded = Some(head),
                Err(e) => {
                    tracing::warn!(error = %e, log = %log, "the audit chain head could not be recorded in PostgreSQL");
                    sink.metrics.with(|| metrics::counter!(telemetry::AUDIT_HEAD_FAILURES_TOTAL).increment(1));
                }
            }
        }
    });
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
