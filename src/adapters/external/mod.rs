//! What every adapter of an external HTTP API shares: the HTTP client pool, timeouts, retries
//! within a budget, the circuit breaker, the bulkhead, the provider's rate limit, the shared
//! cache, provenance of answers, telemetry, and the typed errors callers get. An adapter (routing,
//! emissions, ...) describes its calls; [`Guard::call`] runs each of them through all of it.

pub mod breaker;
pub mod cache;
pub mod guard;
pub mod http;
pub mod limit;
pub mod retry;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use breaker::{BreakerPolicy, CircuitBreaker, CircuitState};
pub use cache::AdapterCache;
pub use guard::{Guard, GuardPolicy};
pub use http::{build_client, Attempt, AttemptError};

use crate::error::code::{Coded, ErrorCode};

/// How one call to the provider ended: the `outcome` label of `beryl_adapter_calls_total` and
/// of the `adapter.call` span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Outcome {
    /// The provider answered (after retries, if any).
    Ok,
    /// The provider failed or refused (connection, 5xx, malformed answer, 4xx).
    Error,
    /// No answer within the call's total timeout.
    Timeout,
    /// Refused without calling: the circuit is open.
    RejectedOpenCircuit,
    /// Refused without calling: the bulkhead is full or the provider's quota is spent.
    RejectedBulkhead,
    /// A failed call was answered by the fallback instead.
    Fallback,
}

impl Outcome {
    /// Every outcome, in declaration order (`outcome as usize` indexes it).
    pub const ALL: [Outcome; 6] =
        [Self::Ok, Self::Error, Self::Timeout, Self::RejectedOpenCircuit, Self::RejectedBulkhead, Self::Fallback];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::RejectedOpenCircuit => "rejected_open_circuit",
            Self::RejectedBulkhead => "rejected_bulkhead",
            Self::Fallback => "fallback",
        }
    }
}

/// Where an answer came from; every answer of an adapter carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The provider's API.
    Provider,
    /// The shared cache, holding an earlier answer of the provider.
    Cache,
    /// The in-process simulator of the provider (no URL configured, outside production).
    Simulator,
    /// The fallback, after the provider failed.
    Fallback,
}

/// The provenance of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Where the answer came from.
    pub source: Source,
    /// Who produced it: the provider's name (`osrm`, `climatiq`), or the model or table used.
    pub producer: String,
    /// True when the figures are an estimate rather than the provider's answer.
    pub estimated: bool,
}

/// Why an adapter gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    /// The circuit is open: the provider failed too often; calls are refused until `retry_after`.
    #[error("{adapter}: circuit open")]
    CircuitOpen {
        /// Adapter name.
        adapter: &'static str,
        /// When a call may go through again.
        retry_after: Duration,
    },
    /// Too many calls in flight, or the provider's quota is spent.
    #[error("{adapter}: no room for another call")]
    Saturated {
        /// Adapter name.
        adapter: &'static str,
    },
    /// The provider did not answer within the call's total timeout.
    #[error("{adapter}: the provider did not answer in time")]
    Timeout {
        /// Adapter name.
        adapter: &'static str,
    },
    /// The provider failed: connection refused or reset, 5xx, or an answer that does not parse.
    #[error("{adapter}: the provider failed ({reason})")]
    Failed {
        /// Adapter name.
        adapter: &'static str,
        /// Bounded description (`connect`, `status 503`, `malformed answer`, ...).
        reason: String,
    },
    /// The provider refused the request on its merits (a 4xx: no route, unknown activity, ...).
    #[error("{adapter}: the provider refused the request ({reason})")]
    Refused {
        /// Adapter name.
        adapter: &'static str,
        /// The provider's code or message, shortened.
        reason: String,
    },
    /// The adapter's actor is restarting or did not answer.
    #[error("{adapter}: the adapter is unavailable")]
    Unavailable {
        /// Adapter name.
        adapter: &'static str,
        /// Suggested wait.
        retry_after: Duration,
    },
}

impl AdapterError {
    /// Whether a fallback may honestly answer instead: the provider could not be asked or did
    /// not answer. A refusal on the request's merits has no fallback.
    pub fn allows_fallback(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

impl Coded for AdapterError {
    fn code(&self) -> ErrorCode {
        // Domains translate refusals into their own codes; what reaches a client untranslated
        // is an outside service not answering.
        ErrorCode::ServiceUnavailable
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::CircuitOpen { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                Some((*retry_after).max(Duration::from_secs(1)))
            }
            _ => Some(Duration::from_secs(1)),
        }
    }
}

impl From<&crate::config::AdapterSettings> for GuardPolicy {
    fn from(s: &crate::config::AdapterSettings) -> Self {
        let ms = Duration::from_millis;
        Self {
            attempt_timeout: ms(s.attempt_timeout_ms),
            total_timeout: ms(s.total_timeout_ms),
            retry: retry::RetryPolicy {
                max_attempts: s.max_attempts,
                base: ms(s.retry_backoff_ms),
                cap: ms(s.retry_backoff_max_ms),
            },
            retry_budget_ratio: s.retry_budget_ratio,
            retry_budget_floor: s.retry_budget_floor,
            breaker: BreakerPolicy {
                failure_ratio: s.breaker_failure_ratio,
                min_calls: s.breaker_min_calls,
                window: Duration::from_secs(s.breaker_window_secs),
                open_for: ms(s.breaker_open_ms),
                half_open_probes: s.breaker_half_open_probes,
            },
            max_concurrency: s.max_concurrency,
            rate_per_second: (s.rate_limit_per_sec > 0.0).then_some(s.rate_limit_per_sec),
        }
    }
}

/// What an adapter is built from: its guard, its cache, and the HTTP client with the provider's
/// base URL and key when a URL is configured (`None`: the simulator answers).
pub struct Parts {
    /// The protections.
    pub guard: Guard,
    /// The shared cache.
    pub cache: AdapterCache,
    /// Client, base URL (no trailing slash) and API key of the provider.
    pub http: Option<(reqwest::Client, String, Option<crate::config::Secret>)>,
}

impl Parts {
    /// The parts of adapter `name`, whose calls are the `operations`, for `settings`; Redis (when configured) holds the cache under
    /// `key_prefix`.
    pub fn build(
        name: &'static str,
        operations: &[&'static str],
        settings: &crate::config::AdapterSettings,
        redis: Option<crate::adapters::redis::RedisConnection>,
        key_prefix: &str,
        metrics: &crate::telemetry::Metrics,
    ) -> reqwest::Result<Self> {
        let guard = Guard::new(name, operations, GuardPolicy::from(settings), metrics.clone());
        let cache = AdapterCache::new(
            redis,
            key_prefix,
            name,
            Duration::from_secs(settings.cache_ttl_secs),
            Duration::from_millis(settings.cache_timeout_ms),
            metrics,
        );
        let http = match &settings.url {
            Some(url) => Some((
                build_client(Duration::from_millis(settings.connect_timeout_ms), settings.max_concurrency)?,
                url.expose().trim_end_matches('/').to_string(),
                settings.api_key.clone(),
            )),
            None => None,
        };
        Ok(Self { guard, cache, http })
    }
}
