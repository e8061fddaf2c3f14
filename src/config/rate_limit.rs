//! `rate_limit`: limits per route group, per subject and per client IP.

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Rate limits, per route group, per subject and per client IP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Apply rate limits.
    pub enabled: bool,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy such as the ingress).
    pub trust_forwarded_for: bool,
    /// Longest wait for Redis before failing open, milliseconds.
    pub redis_timeout_ms: u64,
    /// Reads under `/api`.
    pub api_read: RateLimitGroup,
    /// Writes under `/api`.
    pub api_write: RateLimitGroup,
    /// `POST /graphql`.
    pub graphql: RateLimitGroup,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            trust_forwarded_for: false,
            redis_timeout_ms: 50,
            api_read: RateLimitGroup { per_subject: 1200, per_ip: 2400, period_secs: 60 },
            api_write: RateLimitGroup { per_subject: 300, per_ip: 600, period_secs: 60 },
            graphql: RateLimitGroup { per_subject: 600, per_ip: 1200, period_secs: 60 },
        }
    }
}

/// Limits of one route group: requests allowed per period (0 = unlimited), with bursts up to the
/// limit.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitGroup {
    /// Requests per period for one authenticated subject.
    pub per_subject: u32,
    /// Requests per period from one client IP.
    pub per_ip: u32,
    /// Period, seconds.
    pub period_secs: u64,
}

impl Section for RateLimitSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        for (name, group) in [("api_read", self.api_read), ("api_write", self.api_write), ("graphql", self.graphql)] {
            if group.period_secs == 0 {
                problems.add(
                    &format!("rate_limit.{name}.period_secs"),
                    "the period must be at least 1 second",
                    "for example 60",
                );
            }
        }
    }
}
