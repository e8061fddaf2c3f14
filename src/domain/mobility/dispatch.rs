//! Dispatch: which driver a requested ride is offered to next, searching ever wider around the
//! pickup, and when a ride nobody accepted expires.

use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, Utc};

use super::{fresh, Availability, DriverId, Mode, Ride, RideState};

/// Widest search radius, in metres.
const RADIUS_MAX_M: u32 = 50_000;

/// Most drivers one search of a widened round looks at.
pub const SEARCH_MAX: usize = 1_000;

/// Most candidates one search may return.
const CANDIDATES_MAX: usize = 100;

/// How rides are offered to drivers.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchPolicy {
    /// Widening search radii around the pickup in metres, one per round, e.g. `[1000, 2500, 5000,
    /// 10000]`.
    pub radii_m: Vec<u32>,
    /// How long a driver has to accept an offer before it goes to the next one.
    pub offer_timeout: Duration,
    /// How long after its request a ride nobody accepted expires.
    pub window: Duration,
    /// How many nearest drivers a search returns.
    pub candidates: usize,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            radii_m: vec![1_000, 2_500, 5_000, 10_000],
            offer_timeout: Duration::from_secs(15),
            window: Duration::from_secs(300),
            candidates: 20,
        }
    }
}

impl DispatchPolicy {
    /// Whether it is a usable policy: radii given, each above 0, strictly increasing and at most
    /// 50 km; a timeout above 0 and shorter than the window; 1 to 100 candidates. Every problem is
    /// named, for the validation of settings.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.radii_m.is_empty() {
            problems.push("radii_m is empty: give at least one search radius in metres".to_string());
        }
        if self.radii_m.first().is_some_and(|r| *r == 0) {
            problems.push("radii_m starts at 0: give radii above 0 metres".into());
        }
        if self.radii_m.windows(2).any(|w| w[0] >= w[1]) {
            problems.push(format!("radii_m {:?} do not strictly increase: list them from the smallest", self.radii_m));
        }
        if self.radii_m.iter().any(|r| *r > RADIUS_MAX_M) {
            problems.push(format!("radii_m {:?} go beyond {RADIUS_MAX_M} m: give smaller radii", self.radii_m));
        }
        if self.offer_timeout.is_zero() {
            problems.push("offer_timeout is 0: give drivers some time to accept".into());
        }
        if self.window <= self.offer_timeout {
            problems.push(format!(
                "window ({:?}) is not longer than offer_timeout ({:?}): make it longer",
                self.window, self.offer_timeout
            ));
        }
        if !(1..=CANDIDATES_MAX).contains(&self.candidates) {
            problems.push(format!("candidates is {}: give 1 to {CANDIDATES_MAX}", self.candidates));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Search radius of round `round` (from 0), `None` past the last one.
    pub fn radius(&self, round: usize) -> Option<u32> {
        self.radii_m.get(round).copied()
    }

    /// How many nearest drivers round `round` (from 0) looks at: `candidates`, four times as many
    /// each round, at most `SEARCH_MAX`. Drivers on a ride or with an offer pending stay in the
    /// geo index, so near a busy place the nearest few may all be taken: a wider radius alone
    /// would find the same nearest drivers again.
    pub fn search_count(&self, round: usize) -> usize {
        let factor = 4usize.saturating_pow(u32::try_from(round).unwrap_or(u32::MAX));
        self.candidates.saturating_mul(factor).clamp(1, SEARCH_MAX.max(self.candidates))
    }

    /// Whether a ride requested at `requested_at` and still not accepted has expired at `now`.
    pub fn expired(&self, requested_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        // A request stamped ahead of `now` has not waited at all.
        now.signed_duration_since(requested_at).to_std().is_ok_and(|waited| waited >= self.window)
    }
}

/// A driver found near a pickup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The driver.
    pub driver: DriverId,
    /// Distance from the pickup, in metres.
    pub distance_m: f64,
    /// When the driver last reported their position.
    pub last_seen: DateTime<Utc>,
    /// Their availability as last known.
    pub availability: Availability,
    /// Their vehicle's mode.
    pub mode: Mode,
}

/// The next driver to offer `ride` to: the nearest candidate of the ride's mode who is available,
/// fresh ([`fresh`]), not in `ride.declined`, and not in `busy` (drivers with an offer pending
/// elsewhere); ties broken by driver id for determinism. Nobody for a ride no longer requested.
pub fn next_candidate(
    ride: &Ride,
    candidates: &[Candidate],
    busy: &HashSet<DriverId>,
    now: DateTime<Utc>,
) -> Option<DriverId> {
    if ride.state != RideState::Requested {
        return None;
    }
    candidates
        .iter()
        .filter(|c| {
            c.mode == ride.quote.mode
                && c.availability == Availability::Available
                && c.distance_m.is_finite()
                && fresh(c.last_seen, now)
                && !ride.declined.contains(&c.driver)
                && !busy.contains(&c.driver)
        })
        .min_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.driver.cmp(&b.driver)))
        .map(|c| c.driver)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        fintech::{Currency, WalletId},
        mobility::{Point, Quote},
    };

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn ride(mode: Mode) -> Ride {
        let quote = Quote {
            id: Uuid::now_v7(),
            pickup: Point { lat: 48.5, lon: 2.25 },
            dropoff: Point { lat: 48.5, lon: 2.3125 },
            mode,
            distance_m: 4_600,
            duration_s: 600,
            fare: 1_000,
            currency: Currency::parse("EUR").unwrap(),
            co2e_g: None,
            expires_at: t(300),
            created_at: t(0),
        };
        Ride::request(Uuid::now_v7(), "rider-1".into(), WalletId::generate(), quote, t(0)).unwrap()
    }

    fn id(n: u128) -> DriverId {
        DriverId(Uuid::from_u128(n))
    }

    fn near(n: u128, distance_m: f64) -> Candidate {
        Candidate {
            driver: id(n),
            distance_m,
            last_seen: t(55),
            availability: Availability::Available,
            mode: Mode::Car,
        }
    }

    #[test]
    fn the_nearest_eligible_driver_is_offered_the_ride_first() {
        let r = ride(Mode::Car);
        let none = HashSet::new();
        let found = [near(1, 900.0), near(2, 300.0), near(3, 2_000.0)];
        assert_eq!(next_candidate(&r, &found, &none, t(60)), Some(id(2)));
        assert_eq!(next_candidate(&r, &[], &none, t(60)), None);
        // Equally near: the smaller id, whatever the order found.
        let tie = [near(9, 300.0), near(4, 300.0), near(7, 300.0)];
        assert_eq!(next_candidate(&r, &tie, &none, t(60)), Some(id(4)));
        let mut reversed = tie;
        reversed.reverse();
        assert_eq!(next_candidate(&r, &reversed, &none, t(60)), Some(id(4)));
    }

    #[test]
    fn drivers_of_another_mode_busy_stale_or_who_declined_are_skipped() {
        let r = ride(Mode::Car).decline(id(2), t(10)).unwrap();
        let none = HashSet::new();
        let van = Candidate { mode: Mode::Van, ..near(1, 10.0) };
        let declined = near(2, 20.0);
        let offline = Candidate { availability: Availability::Offline, ..near(3, 30.0) };
        let on_ride = Candidate { availability: Availability::OnRide, ..near(4, 40.0) };
        let stale = Candidate { last_seen: t(60) - TimeDelta::seconds(30), ..near(5, 50.0) };
        let nowhere = near(6, f64::NAN);
        let offered_elsewhere = near(7, 70.0);
        let eligible = near(8, 80.0);
        let all = [van, declined, offline, on_ride, stale, nowhere, offered_elsewhere, eligible];
        assert_eq!(next_candidate(&r, &all, &none, t(60)), Some(id(7)));
        let busy = HashSet::from([id(7)]);
        assert_eq!(next_candidate(&r, &all, &busy, t(60)), Some(id(8)));
        let busy = HashSet::from([id(7), id(8)]);
        assert_eq!(next_candidate(&r, &all, &busy, t(60)), None);
        // The same drivers for a van ride: only the van.
        assert_eq!(next_candidate(&ride(Mode::Van), &all, &none, t(60)), Some(id(1)));
    }

    #[test]
    fn a_ride_no_longer_requested_is_offered_to_nobody() {
        let r = ride(Mode::Car).assign(id(1), t(5)).unwrap();
        assert_eq!(next_candidate(&r, &[near(2, 10.0)], &HashSet::new(), t(6)), None);
        let back = r.cancel_by_driver(id(1), t(20)).unwrap();
        assert_eq!(next_candidate(&back, &[near(1, 5.0), near(2, 10.0)], &HashSet::new(), t(21)), Some(id(2)));
    }

    #[test]
    fn the_search_widens_round_by_round_and_then_stops() {
        let p = DispatchPolicy::default();
        assert_eq!(p.check(), Ok(()));
        let radii: Vec<_> = (0..5).map(|round| p.radius(round)).collect();
        assert_eq!(radii, [Some(1_000), Some(2_500), Some(5_000), Some(10_000), None]);
    }

    #[test]
    fn a_ride_nobody_accepted_expires_once_the_window_has_passed() {
        let p = DispatchPolicy { window: Duration::from_secs(120), ..DispatchPolicy::default() };
        assert!(!p.expired(t(0), t(119)));
        assert!(p.expired(t(0), t(120)));
        assert!(p.expired(t(0), t(4_000)));
        assert!(!p.expired(t(10), t(0)), "a request ahead of the clock has not waited");
    }

    #[test]
    fn a_policy_is_checked_and_every_problem_named() {
        let ok = DispatchPolicy::default();
        let bad = |p: DispatchPolicy| p.check().unwrap_err();
        assert!(bad(DispatchPolicy { radii_m: vec![], ..ok.clone() }).contains("radii_m is empty"));
        assert!(bad(DispatchPolicy { radii_m: vec![0, 100], ..ok.clone() }).contains("starts at 0"));
        assert!(bad(DispatchPolicy { radii_m: vec![1_000, 1_000], ..ok.clone() }).contains("strictly increase"));
        assert!(bad(DispatchPolicy { radii_m: vec![2_000, 1_000], ..ok.clone() }).contains("strictly increase"));
        assert!(bad(DispatchPolicy { radii_m: vec![1_000, 50_001], ..ok.clone() }).contains("beyond 50000 m"));
        assert!(DispatchPolicy { radii_m: vec![50_000], ..ok.clone() }.check().is_ok());
        assert!(bad(DispatchPolicy { offer_timeout: Duration::ZERO, ..ok.clone() }).contains("offer_timeout is 0"));
        let same =
            DispatchPolicy { offer_timeout: Duration::from_secs(30), window: Duration::from_secs(30), ..ok.clone() };
        assert!(bad(same).contains("window"));
        assert!(bad(DispatchPolicy { candidates: 0, ..ok.clone() }).contains("candidates is 0"));
        assert!(bad(DispatchPolicy { candidates: 101, ..ok.clone() }).contains("candidates is 101"));
        assert!(DispatchPolicy { candidates: 100, ..ok.clone() }.check().is_ok());
        let many = bad(DispatchPolicy { radii_m: vec![], candidates: 0, ..ok });
        assert_eq!(many.split("; ").count(), 2, "{many}");
    }

    #[test]
    fn each_round_looks_at_four_times_as_many_drivers_up_to_a_bound() {
        let policy = DispatchPolicy { candidates: 10, ..DispatchPolicy::default() };
        let counts: Vec<usize> = (0..6).map(|round| policy.search_count(round)).collect();
        assert_eq!(counts, [10, 40, 160, 640, SEARCH_MAX, SEARCH_MAX]);
        assert_eq!(policy.search_count(usize::MAX), SEARCH_MAX);
        let most = DispatchPolicy { candidates: CANDIDATES_MAX, ..DispatchPolicy::default() };
        assert_eq!(most.search_count(0), CANDIDATES_MAX);
    }
}
