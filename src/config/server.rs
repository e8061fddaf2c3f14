//! `server`: the HTTP listener and the process lifecycle.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Role, Section, SettingsProblems, ValidationContext};

/// HTTP listener and lifecycle.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind (HOST).
    pub host: String,
    /// Port to bind (PORT); 0 picks a free port.
    pub port: u16,
    /// Parts of the service this process runs (SERVICE_ROLE).
    pub role: Role,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds allowed for in-flight requests and actor mailboxes to drain after SIGTERM
    /// (SHUTDOWN_GRACE_PERIOD). Keep it below Kubernetes' terminationGracePeriodSeconds.
    pub shutdown_grace_period_secs: u64,
    /// Seconds the listener keeps accepting after SIGTERM, readiness already answering 503, so
    /// that requests routed while the endpoints update still find it open
    /// (SHUTDOWN_DRAIN_DELAY); the grace period starts after it. Kubernetes'
    /// terminationGracePeriodSeconds must exceed the two together.
    pub shutdown_drain_delay_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time a client may take to send the request head, seconds; handlers themselves are
    /// bounded by `supervision.ask_timeout_ms`.
    pub request_timeout_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8000,
            role: Role::All,
            workers: 0,
            shutdown_grace_period_secs: 25,
            shutdown_drain_delay_secs: 5,
            max_body_bytes: 256 * 1024,
            request_timeout_secs: 30,
        }
    }
}

impl ServerSettings {
    /// Grace period as a duration.
    pub fn shutdown_grace_period(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_period_secs)
    }

    /// Drain delay as a duration.
    pub fn shutdown_drain_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_drain_delay_secs)
    }
}

impl Section for ServerSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.host.parse::<IpAddr>().is_err() && !is_hostname(&self.host) {
            problems.add(
                "server.host",
                format!("`{}` is not an IP address or host name", self.host),
                "use 0.0.0.0 to listen everywhere or 127.0.0.1 for loopback",
            );
        }
        if self.shutdown_grace_period_secs == 0 || self.shutdown_grace_period_secs > 600 {
            problems.add(
                "server.shutdown_grace_period_secs",
                format!("{} is out of range", self.shutdown_grace_period_secs),
                "give a number of seconds between 1 and 600, below terminationGracePeriodSeconds",
            );
        }
        if self.shutdown_drain_delay_secs > 120 {
            problems.add(
                "server.shutdown_drain_delay_secs",
                format!("{} s is out of range", self.shutdown_drain_delay_secs),
                "a few seconds, as long as the endpoints take to drop a terminating pod (0 to 120)",
            );
        }
        if self.max_body_bytes < 1024 {
            problems.add(
                "server.max_body_bytes",
                format!("{} bytes is too small", self.max_body_bytes),
                "allow at least 1024 bytes",
            );
        }
        if self.request_timeout_secs == 0 || self.request_timeout_secs > 300 {
            problems.add(
                "server.request_timeout_secs",
                format!("{} is out of range", self.request_timeout_secs),
                "between 1 and 300 seconds",
            );
        }
    }
}

fn is_hostname(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}
