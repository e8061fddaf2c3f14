//! Restart policy: exponential backoff with jitter, reset after a quiet period, and a limit on
//! restarts within a window after which the actor is marked failed.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use rand::Rng;

use crate::config::SupervisionSettings;

/// How an actor is brought back after a failure.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// First delay.
    pub min_backoff: Duration,
    /// Longest delay.
    pub max_backoff: Duration,
    /// Random spread of each delay, as a fraction.
    pub jitter: f64,
    /// Running this long without failure resets the delay to the minimum.
    pub reset_after: Duration,
    /// Restarts allowed within `window`.
    pub max_restarts: u32,
    /// Window over which restarts are counted; a failed actor is tried again after it.
    pub window: Duration,
}

impl From<&SupervisionSettings> for RestartPolicy {
    fn from(s: &SupervisionSettings) -> Self {
        Self {
            min_backoff: Duration::from_millis(s.min_backoff_ms),
            max_backoff: Duration::from_millis(s.max_backoff_ms),
            jitter: s.jitter,
            reset_after: Duration::from_secs(s.reset_after_secs),
            max_restarts: s.max_restarts,
            window: Duration::from_secs(s.restart_window_secs),
        }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartDecision {
    /// Wait this long before running again.
    pub delay: Duration,
    /// Too many restarts: the actor is failed until `delay` (the window) has passed.
    pub failed: bool,
}

/// Restarts of one actor, as the policy needs them.
#[derive(Debug, Default)]
pub struct RestartHistory {
    recent: VecDeque<Instant>,
    attempt: u32,
    running_since: Option<Instant>,
}

impl RestartHistory {
    /// The actor reached `running` at `now`.
    pub fn running_since(&mut self, now: Instant) {
        self.running_since = Some(now);
    }

    /// Decide how the actor that failed at `now` comes back.
    pub fn next(&mut self, policy: &RestartPolicy, now: Instant) -> RestartDecision {
        if self.running_since.is_some_and(|since| now.saturating_duration_since(since) >= policy.reset_after) {
            self.attempt = 0;
        }
        self.running_since = None;
        while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) > policy.window) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() > policy.max_restarts as usize {
            // Give up for one window, then start afresh.
            self.recent.clear();
            self.attempt = 0;
            return RestartDecision { delay: policy.window, failed: true };
        }
        let exp = policy.min_backoff.saturating_mul(2u32.saturating_pow(self.attempt.min(30)));
        let base = exp.min(policy.max_backoff);
        self.attempt = self.attempt.saturating_add(1);
        let spread = if policy.jitter > 0.0 { rand::rng().random_range(-policy.jitter..=policy.jitter) } else { 0.0 };
        let delay = base.mul_f64((1.0 + spread).max(0.0)).min(policy.max_backoff);
        RestartDecision { delay, failed: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            jitter: 0.0,
            reset_after: Duration::from_secs(10),
            max_restarts: 5,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let mut h = RestartHistory::default();
        let t = Instant::now();
        let delays: Vec<_> =
            (0..5).map(|i| h.next(&policy(), t + Duration::from_millis(i)).delay.as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000]);
    }

    #[test]
    fn too_many_restarts_in_the_window_fail_the_actor() {
        let mut h = RestartHistory::default();
        let t = Instant::now();
        for i in 0..5 {
            assert!(!h.next(&policy(), t + Duration::from_millis(i)).failed);
        }
        let d = h.next(&policy(), t + Duration::from_millis(6));
        assert!(d.failed);
        assert_eq!(d.delay, Duration::from_secs(60));
    }

    #[test]
    fn restarts_outside_the_window_do_not_count() {
        let mut h = RestartHistory::default();
        let t = Instant::now();
        for i in 0..20u64 {
            assert!(!h.next(&policy(), t + Duration::from_secs(61 * i)).failed);
        }
    }

    #[test]
    fn a_quiet_period_resets_the_delay() {
        let mut h = RestartHistory::default();
        let t = Instant::now();
        h.next(&policy(), t);
        h.next(&policy(), t);
        h.running_since(t);
        let d = h.next(&policy(), t + Duration::from_secs(11));
        assert_eq!(d.delay, Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let p = RestartPolicy { jitter: 0.2, ..policy() };
        for _ in 0..100 {
            let mut h = RestartHistory::default();
            let d = h.next(&p, Instant::now()).delay.as_millis();
            assert!((80..=120).contains(&d), "{d}");
        }
    }
}
