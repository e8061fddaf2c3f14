//! `health`: how dependencies are probed and when the process counts as stalled.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Dependency probing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// How often owners probe their dependencies, milliseconds.
    pub probe_interval_ms: u64,
    /// How long one probe may take before the dependency counts as down, milliseconds.
    pub probe_timeout_ms: u64,
    /// Seconds without a watchdog tick after which `/health/live` fails.
    pub live_stall_secs: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self { probe_interval_ms: 500, probe_timeout_ms: 400, live_stall_secs: 10 }
    }
}

impl Section for HealthSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.probe_interval_ms == 0 || self.probe_timeout_ms == 0 {
            problems.add(
                "health.probe_interval_ms",
                "probe interval and timeout must be above 0",
                "for example 500 and 400",
            );
        }
        if self.live_stall_secs == 0 {
            problems.add("health.live_stall_secs", "must be above 0", "for example 10");
        }
    }
}
