//! Retries: exponential backoff with full jitter, and a retry budget (Finagle's): over a sliding
//! window, retries may add at most `ratio` of the calls made (plus a small floor so that a quiet
//! adapter can still retry), so an outage does not multiply the load on the provider.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

/// How to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1: never retry).
    pub max_attempts: u32,
    /// Wait before the first retry (before jitter).
    pub base: Duration,
    /// Longest wait between two attempts.
    pub cap: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): uniformly drawn between zero and
    /// `base × 2^(retry-1)`, capped ("full jitter"), so that callers failing together do not
    /// retry together.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(self.cap);
        let nanos = exp.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// Ten buckets make the window slide in tenths of its length.
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    slice: u64,
    calls: u32,
    retries: u32,
}

/// The retry budget of one adapter, shared by every call.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    floor: u32,
    window: Duration,
    epoch: Instant,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

impl RetryBudget {
    /// Retries may be at most `ratio` of the calls in `window`, beyond `floor` retries.
    pub fn new(ratio: f64, floor: u32, window: Duration) -> Self {
        Self { ratio, floor, window, epoch: Instant::now(), buckets: Mutex::new([Bucket::default(); BUCKETS]) }
    }

    /// Count a call (its first attempt).
    pub fn deposit(&self, now: Instant) {
        let mut buckets = self.buckets.lock();
        self.current(&mut buckets, now).calls += 1;
    }

    /// Take a retry from the budget; false when the budget is spent.
    pub fn try_withdraw(&self, now: Instant) -> bool {
        let mut buckets = self.buckets.lock();
        let slice = self.slice(now);
        let (calls, retries) = buckets
            .iter()
            .filter(|b| slice.saturating_sub(b.slice) < BUCKETS as u64)
            .fold((0u32, 0u32), |(c, r), b| (c + b.calls, r + b.retries));
        let allowed = f64::from(self.floor) + self.ratio * f64::from(calls);
        if f64::from(retries) + 1.0 > allowed {
            return false;
        }
        self.current(&mut buckets, now).retries += 1;
        true
    }

    fn slice(&self, now: Instant) -> u64 {
        let width = (self.window.as_nanos() / BUCKETS as u128).max(1);
        (now.saturating_duration_since(self.epoch).as_nanos() / width) as u64
    }

    fn current<'a>(&self, buckets: &'a mut [Bucket; BUCKETS], now: Instant) -> &'a mut Bucket {
        let slice = self.slice(now);
        let bucket = &mut buckets[(slice % BUCKETS as u64) as usize];
        if bucket.slice != slice {
            *bucket = Bucket { slice, calls: 0, retries: 0 };
        }
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_the_ratio_of_calls() {
        let budget = RetryBudget::new(0.1, 2, Duration::from_secs(10));
        let t = Instant::now();
        let mut retried = 0;
        for _ in 0..200 {
            budget.deposit(t);
            if budget.try_withdraw(t) {
                retried += 1;
            }
        }
        // Every call wanted a retry: the budget grants the floor plus a tenth of the calls.
        assert_eq!(retried, 2 + 20);
    }

    #[test]
    fn the_budget_refills_as_the_window_slides() {
        let budget = RetryBudget::new(0.1, 1, Duration::from_secs(10));
        let t = Instant::now();
        budget.deposit(t);
        assert!(budget.try_withdraw(t));
        assert!(!budget.try_withdraw(t));
        assert!(budget.try_withdraw(t + Duration::from_secs(11)));
    }

    #[test]
    fn backoff_is_capped_and_jittered_below_the_exponential() {
        let policy = RetryPolicy { max_attempts: 5, base: Duration::from_millis(10), cap: Duration::from_millis(25) };
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(10));
            assert!(policy.backoff(2) <= Duration::from_millis(20));
            assert!(policy.backoff(5) <= Duration::from_millis(25));
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| policy.backoff(3)).collect();
        assert!(distinct.len() > 1, "jitter spreads the waits");
    }
}
