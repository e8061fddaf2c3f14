//! `log`: level, filter directives and line format.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Level or filter directives (LOG_LEVEL), e.g. `INFO` or `info,actix_server=warn`.
    pub level: String,
    /// `json` or `pretty` (LOG_FORMAT); unset means json in staging/production, pretty elsewhere.
    pub format: Option<LogFormat>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: None }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[serde(alias = "JSON")]
    Json,
    /// Human-readable lines.
    #[serde(alias = "PRETTY", alias = "text")]
    Pretty,
}

impl Section for LogSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if !is_log_filter(&self.level) {
            problems.add(
                "log.level",
                format!("`{}` is not a log level", self.level),
                "use TRACE, DEBUG, INFO, WARN or ERROR, or filter directives such as info,actix_server=warn",
            );
        }
    }
}

/// A level (`INFO`) or directives whose every part names a level (`info,actix_server=warn`).
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let filter = filter.to_lowercase();
    let level_ok = |l: &str| LEVELS.contains(&l.trim());
    !filter.trim().is_empty()
        && filter.split(',').all(|part| match part.rsplit_once('=') {
            Some((_, level)) => level_ok(level),
            None => level_ok(part),
        })
        && tracing_subscriber::EnvFilter::try_new(&filter).is_ok()
}
