//! The circuit breaker of one adapter: closed while the provider answers; open once the share of
//! failed calls over a sliding window passes a threshold (calls are refused at once, without
//! reaching the provider); half-open after a pause, letting a few probes through; closed again
//! when they all succeed, open again as soon as one fails.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

/// The breaker's state; `as_gauge` is the value of `beryl_adapter_circuit_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// A few probes go through; the others are refused.
    HalfOpen,
    /// Every call is refused.
    Open,
}

impl CircuitState {
    /// 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }

    /// Lower-case name, for logs and health details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// When the breaker opens and how it comes back.
#[derive(Debug, Clone)]
pub struct BreakerPolicy {
    /// Share of failed calls in the window (0 to 1) at which the circuit opens.
    pub failure_ratio: f64,
    /// Fewest calls in the window before the ratio is trusted.
    pub min_calls: u32,
    /// Length of the sliding window.
    pub window: Duration,
    /// How long the circuit stays open before probing.
    pub open_for: Duration,
    /// Probes let through while half-open; all must succeed to close.
    pub half_open_probes: u32,
}

/// Ten buckets make the window slide in tenths of its length.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Index of the time slice this bucket counts (slices since the breaker was made).
    slice: u64,
    calls: u32,
    failures: u32,
}

#[derive(Debug)]
enum Inner {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, succeeded: u32 },
}

#[derive(Debug)]
struct State {
    inner: Inner,
    buckets: [Bucket; BUCKETS],
}

/// A permission to call the provider, to be settled with [`CircuitBreaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// An ordinary call (circuit closed).
    Normal,
    /// A probe (circuit half-open).
    Probe,
}

/// A state change, for the caller to log and export.
pub type Transition = Option<(CircuitState, CircuitState)>;

/// One adapter's breaker; shared by every call in flight.
#[derive(Debug)]
pub struct CircuitBreaker {
    policy: BreakerPolicy,
    epoch: Instant,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            epoch: Instant::now(),
            state: Mutex::new(State { inner: Inner::Closed, buckets: [Bucket::default(); BUCKETS] }),
        }
    }

    /// The state now (an open circuit whose pause has passed reads as half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        let mut state = self.state.lock();
        self.advance(&mut state, now);
        public(&state.inner)
    }

    /// Ask to call: `Ok(permit)`, or `Err(retry_after)` while the circuit refuses calls.
    pub fn try_acquire(&self, now: Instant) -> (Result<Permit, Duration>, Transition) {
        let mut state = self.state.lock();
        let before = public(&state.inner);
        self.advance(&mut state, now);
        let result = match &mut state.inner {
            Inner::Closed => Ok(Permit::Normal),
            Inner::Open { until } => Err(until.saturating_duration_since(now)),
            Inner::HalfOpen { in_flight, succeeded } => {
                if *in_flight + *succeeded < self.policy.half_open_probes {
                    *in_flight += 1;
                    Ok(Permit::Probe)
                } else {
                    Err(Duration::from_secs(1))
                }
            }
        };
        let after = public(&state.inner);
        (result, (before != after).then_some((before, after)))
    }

    /// Settle a permit: `failed` when the provider failed (timeout, connection, 5xx, malformed
    /// answer), not when it refused a request on its merits.
    pub fn record(&self, permit: Permit, failed: bool, now: Instant) -> Transition {
        let mut state = self.state.lock();
        let before = public(&state.inner);
        match (permit, &mut state.inner) {
            (Permit::Probe, Inner::HalfOpen { in_flight, succeeded }) => {
                *in_flight = in_flight.saturating_sub(1);
                if failed {
                    state.inner = Inner::Open { until: now + self.policy.open_for };
                } else {
                    *succeeded += 1;
                    if *succeeded >= self.policy.half_open_probes {
                        state.inner = Inner::Closed;
                        state.buckets = [Bucket::default(); BUCKETS];
                    }
                }
            }
            (Permit::Normal, Inner::Closed) => {
                let bucket = self.bucket(&mut state, now);
                bucket.calls += 1;
                bucket.failures += u32::from(failed);
                if failed && self.should_open(&state, now) {
                    state.inner = Inner::Open { until: now + self.policy.open_for };
                }
            }
            // A call that started before the circuit changed: it no longer says anything.
            _ => {}
        }
        let after = public(&state.inner);
        (before != after).then_some((before, after))
    }

    /// Give a permit back unused (the call never reached the provider): a probe's place is
    /// freed, nothing is counted.
    pub fn release(&self, permit: Permit) {
        if permit == Permit::Probe {
            if let Inner::HalfOpen { in_flight, .. } = &mut self.state.lock().inner {
                *in_flight = in_flight.saturating_sub(1);
            }
        }
    }

    fn slice(&self, now: Instant) -> u64 {
        let width = (self.policy.window.as_nanos() / BUCKETS as u128).max(1);
        (now.saturating_duration_since(self.epoch).as_nanos() / width) as u64
    }

    fn bucket<'a>(&self, state: &'a mut State, now: Instant) -> &'a mut Bucket {
        let slice = self.slice(now);
        let bucket = &mut state.buckets[(slice % BUCKETS as u64) as usize];
        if bucket.slice != slice {
            *bucket = Bucket { slice, calls: 0, failures: 0 };
        }
        bucket
    }

    fn should_open(&self, state: &State, now: Instant) -> bool {
        let current = self.slice(now);
        let (calls, failures) = state
            .buckets
            .iter()
            .filter(|b| current.saturating_sub(b.slice) < BUCKETS as u64)
            .fold((0u32, 0u32), |(c, f), b| (c + b.calls, f + b.failures));
        calls >= self.policy.min_calls && f64::from(failures) >= self.policy.failure_ratio * f64::from(calls)
    }

    fn advance(&self, state: &mut State, now: Instant) {
        if let Inner::Open { until } = state.inner {
            if now >= until {
                state.inner = Inner::HalfOpen { in_flight: 0, succeeded: 0 };
            }
        }
    }
}

fn public(inner: &Inner) -> CircuitState {
    match inner {
        Inner::Closed => CircuitState::Closed,
        Inner::Open { .. } => CircuitState::Open,
        Inner::HalfOpen { .. } => CircuitState::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            failure_ratio: 0.5,
            min_calls: 4,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            half_open_probes: 2,
        })
    }

    fn call(b: &CircuitBreaker, failed: bool, now: Instant) -> Result<(), Duration> {
        let permit = b.try_acquire(now).0?;
        b.record(permit, failed, now);
        Ok(())
    }

    #[test]
    fn opens_at_the_failure_ratio_once_enough_calls_were_seen() {
        let b = breaker();
        let t = Instant::now();
        call(&b, true, t).unwrap();
        call(&b, true, t).unwrap();
        call(&b, true, t).unwrap();
        assert_eq!(b.state(t), CircuitState::Closed, "three calls are below min_calls");
        call(&b, false, t).unwrap();
        assert_eq!(b.state(t), CircuitState::Closed, "a success does not open it");
        call(&b, true, t).unwrap();
        assert_eq!(b.state(t), CircuitState::Open);
        assert_eq!(call(&b, false, t), Err(Duration::from_secs(5)));
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..3 {
            call(&b, true, t).unwrap();
        }
        let later = t + Duration::from_secs(11);
        call(&b, true, later).unwrap();
        call(&b, false, later).unwrap();
        assert_eq!(b.state(later), CircuitState::Closed);
    }

    #[test]
    fn half_open_closes_after_enough_good_probes_and_reopens_on_a_bad_one() {
        let b = breaker();
        let t = Instant::now();
        for _ in 0..4 {
            call(&b, true, t).unwrap();
        }
        let probe_time = t + Duration::from_secs(5);
        assert_eq!(b.state(probe_time), CircuitState::HalfOpen);
        let p1 = b.try_acquire(probe_time).0.unwrap();
        let p2 = b.try_acquire(probe_time).0.unwrap();
        assert!(b.try_acquire(probe_time).0.is_err(), "only two probes at once");
        b.record(p1, false, probe_time);
        assert_eq!(b.state(probe_time), CircuitState::HalfOpen);
        b.record(p2, true, probe_time);
        assert_eq!(b.state(probe_time), CircuitState::Open, "a failed probe opens it again");

        let again = probe_time + Duration::from_secs(5);
        call(&b, false, again).unwrap();
        call(&b, false, again).unwrap();
        assert_eq!(b.state(again), CircuitState::Closed);
        call(&b, true, again).unwrap();
        assert_eq!(b.state(again), CircuitState::Closed, "the window starts empty after closing");
    }
}
