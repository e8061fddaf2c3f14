//! [`Guard`]: the protections every call of an adapter passes through, in order: the bulkhead
//! (a bounded number of calls in flight), the circuit breaker, the provider's rate limit, then
//! attempts bounded by a per-attempt and a total timeout, retried with jittered backoff when the
//! call is idempotent and the retry budget allows. Each call is counted once by outcome, timed,
//! and traced as an `adapter.call` span.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use metrics::{Counter, Gauge, Histogram};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::{
    breaker::{BreakerPolicy, CircuitBreaker, CircuitState, Transition},
    http::{Attempt, AttemptError},
    limit::RateLimit,
    retry::{RetryBudget, RetryPolicy},
    AdapterError, Outcome,
};
use crate::{telemetry, telemetry::Metrics};

/// The protections of one adapter.
#[derive(Debug, Clone)]
pub struct GuardPolicy {
    /// Longest wait for one attempt's answer.
    pub attempt_timeout: Duration,
    /// Longest time for a whole call, retries and backoff included.
    pub total_timeout: Duration,
    /// Attempts and backoff.
    pub retry: RetryPolicy,
    /// Retries allowed as a share of calls over the budget's window.
    pub retry_budget_ratio: f64,
    /// Retries allowed in the window whatever the number of calls.
    pub retry_budget_floor: u32,
    /// The retry budget's and the breaker's window.
    pub breaker: BreakerPolicy,
    /// Calls in flight at most; more are refused at once.
    pub max_concurrency: usize,
    /// The provider's quota in calls per second, if it has one.
    pub rate_per_second: Option<f64>,
}

/// Runs calls through the protections; one per adapter, shared by its calls in flight.
pub struct Guard {
    adapter: &'static str,
    policy: GuardPolicy,
    breaker: CircuitBreaker,
    budget: RetryBudget,
    bulkhead: Semaphore,
    rate: Option<RateLimit>,
    metrics: Metrics,
    circuit_gauge: Gauge,
    operations: Vec<OperationMetrics>,
}

/// The series of one operation, registered (at zero) when the adapter is built, so that they
/// exist before the first call and no call looks them up.
struct OperationMetrics {
    operation: &'static str,
    /// By outcome, in [`Outcome::ALL`] order.
    calls: Vec<Counter>,
    duration: Histogram,
    retries: Counter,
}

impl OperationMetrics {
    fn new(adapter: &'static str, operation: &'static str) -> Self {
        Self {
            operation,
            calls: Outcome::ALL
                .iter()
                .map(|o| metrics::counter!(telemetry::ADAPTER_CALLS_TOTAL, "adapter" => adapter, "operation" => operation, "outcome" => o.as_str()))
                .collect(),
            duration: metrics::histogram!(telemetry::ADAPTER_CALL_DURATION_SECONDS, "adapter" => adapter, "operation" => operation),
            retries: metrics::counter!(telemetry::ADAPTER_RETRIES_TOTAL, "adapter" => adapter, "operation" => operation),
        }
    }
}

impl Guard {
    /// The guard of `adapter`, whose calls are the `operations`.
    pub fn new(adapter: &'static str, operations: &[&'static str], policy: GuardPolicy, metrics: Metrics) -> Self {
        let (circuit_gauge, operations) = metrics.with(|| {
            let gauge = metrics::gauge!(telemetry::ADAPTER_CIRCUIT_STATE, "adapter" => adapter);
            (gauge, operations.iter().map(|op| OperationMetrics::new(adapter, op)).collect())
        });
        circuit_gauge.set(CircuitState::Closed.as_gauge());
        Self {
            adapter,
            breaker: CircuitBreaker::new(policy.breaker.clone()),
            budget: RetryBudget::new(policy.retry_budget_ratio, policy.retry_budget_floor, policy.breaker.window),
            bulkhead: Semaphore::new(policy.max_concurrency),
            rate: policy.rate_per_second.map(RateLimit::new),
            policy,
            metrics,
            circuit_gauge,
            operations,
        }
    }

    /// The adapter's name.
    pub fn adapter(&self) -> &'static str {
        self.adapter
    }

    /// The circuit's state now (moving an open circuit whose pause is over to half-open).
    pub fn circuit(&self) -> CircuitState {
        let state = self.breaker.state(Instant::now());
        self.circuit_gauge.set(state.as_gauge());
        state
    }

    /// Count a call answered by the fallback.
    pub fn count_fallback(&self, operation: &'static str) {
        self.count(operation, Outcome::Fallback);
    }

    /// Run one call: `attempt` is called for each attempt; `idempotent` calls may be retried.
    pub async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        idempotent: bool,
        attempt: F,
    ) -> Result<T, AdapterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let span = tracing::info_span!(
            "adapter.call",
            adapter = self.adapter,
            operation,
            outcome = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let started = Instant::now();
        let (result, outcome, attempts) = self.run(idempotent, attempt).instrument(span.clone()).await;
        span.record("outcome", outcome.as_str());
        span.record("attempts", attempts);
        self.with_operation(operation, |m| {
            m.calls[outcome as usize].increment(1);
            m.duration.record(started.elapsed().as_secs_f64());
            if attempts > 1 {
                m.retries.increment(u64::from(attempts - 1));
            }
        });
        result
    }

    async fn run<T, F, Fut>(&self, idempotent: bool, mut attempt: F) -> (Result<T, AdapterError>, Outcome, u32)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let adapter = self.adapter;
        let Ok(_slot) = self.bulkhead.try_acquire() else {
            return (Err(AdapterError::Saturated { adapter }), Outcome::RejectedBulkhead, 0);
        };
        let start = Instant::now();
        let (permit, transition) = self.breaker.try_acquire(start);
        self.changed(transition);
        let permit = match permit {
            Ok(permit) => permit,
            Err(retry_after) => {
                return (Err(AdapterError::CircuitOpen { adapter, retry_after }), Outcome::RejectedOpenCircuit, 0)
            }
        };
        let deadline = start + self.policy.total_timeout;
        if let Some(rate) = &self.rate {
            match rate.reserve(start, self.policy.total_timeout) {
                Some(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
                Some(_) => {}
                None => {
                    self.breaker.release(permit);
                    return (Err(AdapterError::Saturated { adapter }), Outcome::RejectedBulkhead, 0);
                }
            }
        }
        self.budget.deposit(start);
        let mut attempts = 0;
        let error = loop {
            attempts += 1;
            let now = Instant::now();
            let limit = self.policy.attempt_timeout.min(deadline.saturating_duration_since(now));
            let result = match tokio::time::timeout(limit, attempt()).await {
                Ok(result) => result,
                Err(_) => Err(AttemptError::Timeout),
            };
            let error = match result {
                Ok(value) => {
                    self.changed(self.breaker.record(permit, false, Instant::now()));
                    return (Ok(value), Outcome::Ok, attempts);
                }
                Err(error) => error,
            };
            if !(idempotent && error.is_retryable() && attempts < self.policy.retry.max_attempts) {
                break error;
            }
            let backoff = self.policy.retry.backoff(attempts);
            let now = Instant::now();
            if now + backoff >= deadline || !self.budget.try_withdraw(now) {
                break error;
            }
            tracing::debug!(adapter, attempt = attempts, reason = %error.reason(), "retrying");
            tokio::time::sleep(backoff).await;
        };
        self.changed(self.breaker.record(permit, error.is_failure(), Instant::now()));
        match error {
            AttemptError::Timeout => (Err(AdapterError::Timeout { adapter }), Outcome::Timeout, attempts),
            AttemptError::Refused(reason) => (Err(AdapterError::Refused { adapter, reason }), Outcome::Error, attempts),
            other => (Err(AdapterError::Failed { adapter, reason: other.reason() }), Outcome::Error, attempts),
        }
    }

    fn count(&self, operation: &'static str, outcome: Outcome) {
        self.with_operation(operation, |m| m.calls[outcome as usize].increment(1));
    }

    /// Run `f` on the operation's series (registered now if the adapter did not name it).
    fn with_operation(&self, operation: &'static str, f: impl FnOnce(&OperationMetrics)) {
        match self.operations.iter().find(|m| m.operation == operation) {
            Some(m) => f(m),
            None => f(&self.metrics.with(|| OperationMetrics::new(self.adapter, operation))),
        }
    }

    fn changed(&self, transition: Transition) {
        if let Some((from, to)) = transition {
            self.circuit_gauge.set(to.as_gauge());
            match to {
                CircuitState::Open => {
                    tracing::warn!(
                        adapter = self.adapter,
                        from = from.as_str(),
                        to = to.as_str(),
                        "circuit state changed"
                    )
                }
                _ => tracing::info!(
                    adapter = self.adapter,
                    from = from.as_str(),
                    to = to.as_str(),
                    "circuit state changed"
                ),
            }
        }
    }
}
