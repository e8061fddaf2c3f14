//! `tracing`: OpenTelemetry span export.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// OpenTelemetry span export over OTLP/HTTP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingSettings {
    /// Export spans (TRACING_ENABLED).
    pub enabled: bool,
    /// Collector host (JAEGER_HOST); spans go to `http://<host>:4318/v1/traces`.
    pub jaeger_host: Option<String>,
    /// Full OTLP/HTTP traces endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); wins over `jaeger_host`.
    pub otlp_endpoint: Option<String>,
    /// Fraction of traces sampled, 0.0 to 1.0.
    pub sample_ratio: f64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        Self { enabled: false, jaeger_host: None, otlp_endpoint: None, sample_ratio: 1.0 }
    }
}

impl TracingSettings {
    /// The OTLP/HTTP traces endpoint, if one is configured.
    pub fn endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .or_else(|| self.jaeger_host.as_ref().map(|host| format!("http://{host}:4318/v1/traces")))
    }
}

impl Section for TracingSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.enabled && self.endpoint().is_none() {
            problems.add(
                "tracing.enabled",
                "tracing is enabled but no collector is named",
                "set JAEGER_HOST (OTLP/HTTP on port 4318) or OTEL_EXPORTER_OTLP_ENDPOINT, or TRACING_ENABLED=false",
            );
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            problems.add(
                "tracing.sample_ratio",
                format!("{} is not a fraction", self.sample_ratio),
                "give a number between 0.0 and 1.0",
            );
        }
    }
}
