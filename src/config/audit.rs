//! `audit`: the audit trail's file, batching and failure policy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Secret, Section, SettingsProblems, ValidationContext};

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
    /// Longest time a record waits before its batch is written and fsynced, milliseconds; a
    /// record someone waits for (a change under fail_closed) is written at once.
    pub flush_interval_ms: u64,
    /// Most records written and fsynced together.
    pub batch_max: usize,
    /// What a state-changing request does when its audit record cannot be taken: `fail_closed`
    /// refuses it (503), `fail_open` serves it and counts the loss. Unset means fail_closed in
    /// production, fail_open elsewhere.
    pub failure_policy: Option<AuditFailurePolicy>,
    /// Key of the chain's HMAC (AUDIT_HMAC_KEY), at least 32 bytes; required in production.
    /// Without it (elsewhere) records are sealed with plain SHA-256, which anyone can recompute.
    pub hmac_key: Option<Secret>,
    /// The key being rotated out (AUDIT_HMAC_KEY_PREVIOUS): it no longer seals records, but the
    /// records it sealed still verify.
    pub hmac_key_previous: Option<Secret>,
    /// Days a rotated file is kept before it is removed; 0 keeps every file.
    pub retention_days: u64,
    /// Window within which the denials of one client for one action (requests without a valid
    /// token) become one record with a count, seconds; 0 writes a record per denial.
    pub denial_window_secs: u64,
    /// How often the chain head is recorded in PostgreSQL, seconds; 0 never.
    pub head_interval_secs: u64,
}

impl AuditSettings {
    /// Rotated-file retention, if any.
    pub fn retention(&self) -> Option<std::time::Duration> {
        (self.retention_days > 0).then(|| std::time::Duration::from_secs(self.retention_days.saturating_mul(86_400)))
    }
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
            hmac_key: None,
            hmac_key_previous: None,
            retention_days: 90,
            denial_window_secs: 10,
            head_interval_secs: 10,
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
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        for (key, value) in [("audit.hmac_key", &self.hmac_key), ("audit.hmac_key_previous", &self.hmac_key_previous)] {
            if value.as_ref().is_some_and(|k| k.expose().len() < 32) {
                problems.add(key, "the key is shorter than 32 bytes", "generate one with `openssl rand -hex 32`");
            }
        }
        if self.enabled && ctx.production() && self.hmac_key.is_none() {
            problems.add(
                "audit.hmac_key",
                "production needs a key for the audit chain",
                "mount the beryl-secrets secret's audit-hmac-key as AUDIT_HMAC_KEY",
            );
        }
        if let (Some(current), Some(previous)) = (&self.hmac_key, &self.hmac_key_previous) {
            if current.expose() == previous.expose() {
                problems.add(
                    "audit.hmac_key_previous",
                    "the previous key is the current key",
                    "keep the value AUDIT_HMAC_KEY had before the rotation here, or unset it",
                );
            }
        }
        if self.denial_window_secs > 3600 {
            problems.add(
                "audit.denial_window_secs",
                format!("{} s hides denials for too long", self.denial_window_secs),
                "keep it at most 3600, e.g. 10",
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    #[test]
    fn production_needs_a_real_audit_key() {
        let ctx = ValidationContext { environment: Environment::Production };
        let keys = |s: &AuditSettings| {
            let mut problems = SettingsProblems::default();
            s.validate(&ctx, &mut problems);
            problems.0.into_iter().map(|p| p.key).collect::<Vec<_>>()
        };
        let mut settings = AuditSettings { enabled: true, ..AuditSettings::default() };
        assert_eq!(keys(&settings), vec!["audit.hmac_key"]);
        settings.hmac_key = Some("short".into());
        assert_eq!(keys(&settings), vec!["audit.hmac_key"]);
        settings.hmac_key = Some("0123456789abcdef0123456789abcdef".into());
        assert!(keys(&settings).is_empty());
        settings.hmac_key_previous = Some("0123456789abcdef0123456789abcdef".into());
        assert_eq!(keys(&settings), vec!["audit.hmac_key_previous"]);
    }
}
