//! The provider's quota as a rate limit (GCRA, like the API's own rate limits): calls are spaced
//! by `1/rate`, with bursts of up to one second's worth; a call waits for its slot, or is refused
//! when the slot is further away than the call may wait.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The client-side rate limit of one adapter.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    burst: Duration,
    /// Theoretical arrival time of the next call.
    tat: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// At most `per_second` calls a second on average, bursts of `per_second` calls.
    pub fn new(per_second: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(1e-6));
        Self { interval, burst: Duration::from_secs(1).saturating_sub(interval), tat: Mutex::new(None) }
    }

    /// Reserve a slot: how long to wait for it, or `None` when that would be longer than
    /// `max_wait` (nothing is reserved then).
    pub fn reserve(&self, now: Instant, max_wait: Duration) -> Option<Duration> {
        let mut tat = self.tat.lock();
        let start = tat.map_or(now, |t| t.max(now));
        let wait = start.saturating_duration_since(now).saturating_sub(self.burst);
        if wait > max_wait {
            return None;
        }
        *tat = Some(start + self.interval);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_of_one_second_then_spaced_calls() {
        let limit = RateLimit::new(4.0);
        let t = Instant::now();
        for _ in 0..4 {
            assert_eq!(limit.reserve(t, Duration::ZERO), Some(Duration::ZERO));
        }
        assert_eq!(limit.reserve(t, Duration::ZERO), None, "the fifth call in the same instant waits");
        assert_eq!(limit.reserve(t, Duration::from_secs(1)), Some(Duration::from_millis(250)));
        assert_eq!(limit.reserve(t + Duration::from_secs(2), Duration::ZERO), Some(Duration::ZERO));
    }
}
