//! `audit`: the audit trail's file, batching and failure policy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Audit trail.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Write audit records (AUDIT_ENABLED).
    pub enabled: bool,
    /// File receiving JSON lines (AUDIT_LOG_FILE); rotated files get a numeric suffix.
    pub log_file: PathBuf,
    /// Size in bytes after which the file is rotated; the hash chain continues in the next file.
    pub max_file_bytes: u64,
    /// Longest time a record waits before its batch is written and fsynced, milliseconds.
    pub flush_interval_ms: u64,
    /// Most records written and fsynced together.
    pub batch_max: usize,
    /// What a state-changing request does when its audit record cannot be taken: `fail_closed`
    /// refuses it (503), `fail_open` serves it and counts the loss. Unset means fail_closed in
    /// production, fail_open elsewhere.
    pub failure_policy: Option<AuditFailurePolicy>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            log_file: PathBuf::from("/var/log/beryl/audit.log"),
            max_file_bytes: 100 * 1024 * 1024,
            flush_interval_ms: 5,
            batch_max: 1024,
            failure_policy: None,
        }
    }
}

/// Request outcome when auditing fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFailurePolicy {
    /// Refuse state-changing requests that cannot be audited.
    FailClosed,
    /// Serve them and count the missing records.
    FailOpen,
}

impl Section for AuditSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.max_file_bytes < 4096 {
            problems.add(
                "audit.max_file_bytes",
                format!("{} bytes is too small", self.max_file_bytes),
                "allow at least 4096 bytes, e.g. 104857600",
            );
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 10_000 || self.batch_max == 0 {
            problems.add(
                "audit.flush_interval_ms",
                "flush interval must be 1..=10000 ms and batch_max at least 1",
                "for example 5 ms and 1024 records",
            );
        }
        if self.enabled && self.log_file.as_os_str().is_empty() {
            problems.add(
                "audit.log_file",
                "audit is enabled but no file is named",
                "set AUDIT_LOG_FILE to a path on a persistent volume",
            );
        }
    }
}
