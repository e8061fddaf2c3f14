//! `metrics`: Prometheus exposition.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Prometheus exposition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` (METRICS_ENABLED).
    pub enabled: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Section for MetricsSettings {
    fn validate(&self, _: &ValidationContext, _: &mut SettingsProblems) {}
}
