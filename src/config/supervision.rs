//! `supervision`: restart policy and timeouts of the actor runtime.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Restart policy and timeouts of the actor runtime.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionSettings {
    /// First restart delay, milliseconds.
    pub min_backoff_ms: u64,
    /// Longest restart delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Random spread of each delay, as a fraction (0.2 = plus or minus 20 %).
    pub jitter: f64,
    /// Seconds of running without failure after which the delay starts again from the minimum.
    pub reset_after_secs: u64,
    /// Restarts allowed within `restart_window_secs` before the actor is marked failed.
    pub max_restarts: u32,
    /// Window over which restarts are counted, seconds; a failed actor is retried after it.
    pub restart_window_secs: u64,
    /// How long an HTTP handler waits for an actor's answer, milliseconds.
    pub ask_timeout_ms: u64,
    /// Mailbox capacity of each actor.
    pub mailbox_capacity: usize,
    /// How often the watchdog looks for actors whose mailbox closed, milliseconds.
    pub watchdog_interval_ms: u64,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self {
            min_backoff_ms: 100,
            max_backoff_ms: 30_000,
            jitter: 0.2,
            reset_after_secs: 60,
            max_restarts: 5,
            restart_window_secs: 60,
            ask_timeout_ms: 5_000,
            mailbox_capacity: 1024,
            watchdog_interval_ms: 200,
        }
    }
}

impl Section for SupervisionSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.min_backoff_ms == 0 || self.min_backoff_ms > self.max_backoff_ms {
            problems.add(
                "supervision.min_backoff_ms",
                format!(
                    "{} ms must be above 0 and at most max_backoff_ms ({} ms)",
                    self.min_backoff_ms, self.max_backoff_ms
                ),
                "for example 100 and 30000",
            );
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            problems.add(
                "supervision.jitter",
                format!("{} is not a fraction", self.jitter),
                "give a number between 0.0 and 1.0, e.g. 0.2",
            );
        }
        if self.max_restarts == 0 {
            problems.add(
                "supervision.max_restarts",
                "0 would fail an actor at its first restart",
                "allow at least 1 restart per window",
            );
        }
        if self.restart_window_secs == 0 {
            problems.add("supervision.restart_window_secs", "the window must not be empty", "for example 60");
        }
        if self.ask_timeout_ms == 0 {
            problems.add("supervision.ask_timeout_ms", "asks would time out at once", "for example 5000");
        }
        if self.mailbox_capacity == 0 {
            problems.add("supervision.mailbox_capacity", "a mailbox needs room for one message", "for example 1024");
        }
        if self.watchdog_interval_ms == 0 || self.watchdog_interval_ms > 1000 {
            problems.add(
                "supervision.watchdog_interval_ms",
                format!("{} ms is out of range", self.watchdog_interval_ms),
                "between 1 and 1000 so readiness follows within a second",
            );
        }
    }
}
