//! Fares: what a route costs under a tariff, the cap a quote puts on the final fare, and how a
//! fare is split between the driver and the platform. Integer arithmetic on minor units, metres
//! and seconds throughout, so that the same route always costs the same.

use serde::{Deserialize, Serialize};

/// Largest value of any tariff component, in minor units.
pub const TARIFF_MAX: i64 = 10_000_000;

/// What rides cost in one currency, in its minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    /// Charged once per ride.
    pub base: i64,
    /// Charged per kilometre of the route.
    pub per_km: i64,
    /// Charged per minute of the route.
    pub per_minute: i64,
    /// No ride costs less.
    pub minimum: i64,
    /// What a rider pays for cancelling late (at most the quoted fare).
    pub cancellation_fee: i64,
}

/// Divide, rounding half up (towards +∞ on a tie).
fn div_round_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator).div_euclid(2 * denominator)
}

fn to_i64(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

impl Tariff {
    /// `base + per_km × km + per_minute × minutes`, rounded half up to the minor unit, never below
    /// `minimum`. Computed exactly from metres and seconds (in 1/3000ths of a minor unit).
    pub fn fare(&self, distance_m: u64, duration_s: u64) -> i64 {
        // 1 km = 1000 m and 1 min = 60 s: 3000 is their least common multiple.
        let numerator = i128::from(self.base) * 3000
            + i128::from(self.per_km) * i128::from(distance_m) * 3
            + i128::from(self.per_minute) * i128::from(duration_s) * 50;
        to_i64(div_round_half_up(numerator, 3000)).max(self.minimum)
    }

    /// Whether it is a sane tariff: every component from 0 to [`TARIFF_MAX`], the minimum above
    /// 0. Every problem is named, for the validation of settings.
    pub fn check(&self) -> Result<(), String> {
        let parts = [
            ("base", self.base),
            ("per_km", self.per_km),
            ("per_minute", self.per_minute),
            ("minimum", self.minimum),
            ("cancellation_fee", self.cancellation_fee),
        ];
        let mut problems: Vec<String> = parts
            .iter()
            .filter(|(_, value)| !(0..=TARIFF_MAX).contains(value))
            .map(|(name, value)| format!("{name} is {value}: give 0 to {TARIFF_MAX} minor units"))
            .collect();
        if self.minimum == 0 {
            problems.push("minimum is 0: give at least 1 minor unit".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The final fare: the fare of the actual route, never above `quoted × (1 + tolerance_pct/100)`
/// (rounded down), never below the tariff's minimum.
pub fn final_fare(tariff: &Tariff, quoted: i64, tolerance_pct: u32, distance_m: u64, duration_s: u64) -> i64 {
    let cap = i128::from(fare_cap(quoted, tolerance_pct));
    to_i64(i128::from(tariff.fare(distance_m, duration_s)).min(cap)).max(tariff.minimum)
}

/// The most a ride quoted at `quoted` can cost: the quote plus the tolerance, rounded down (what
/// is held on the rider's wallet when the ride is requested).
pub fn fare_cap(quoted: i64, tolerance_pct: u32) -> i64 {
    to_i64((i128::from(quoted) * (100 + i128::from(tolerance_pct))).div_euclid(100))
}

/// `(driver's share, platform commission)` of a fare: the commission is
/// `fare × commission_bps / 10 000` rounded half up (at most 10 000 bps: the whole fare), and the
/// two add up to the fare exactly.
pub fn split(fare: i64, commission_bps: u32) -> (i64, i64) {
    let bps = i128::from(commission_bps.min(10_000));
    let commission = to_i64(div_round_half_up(i128::from(fare) * bps, 10_000));
    (fare - commission, commission)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2.50 base, 1.20 a km, 0.30 a minute, 5.00 minimum, 3.00 to cancel late.
    const EUR: Tariff = Tariff { base: 250, per_km: 120, per_minute: 30, minimum: 500, cancellation_fee: 300 };

    #[test]
    fn a_fare_adds_base_distance_and_time() {
        // 2.50 + 5.4 km × 1.20 + 13 min × 0.30 = 2.50 + 6.48 + 3.90.
        assert_eq!(EUR.fare(5_400, 780), 1_288);
        // 2.50 + 12.345 km × 1.20 + 1234 s × 0.30 / 60 = 2.50 + 14.814 + 6.17 = 23.484.
        assert_eq!(EUR.fare(12_345, 1_234), 2_348);
        // A long one: 250 + 120 × 100 + 30 × 90 = 14 950.
        assert_eq!(EUR.fare(100_000, 5_400), 14_950);
    }

    #[test]
    fn a_fare_rounds_half_up_to_the_minor_unit() {
        let t = Tariff { base: 10, per_km: 1, per_minute: 1, minimum: 1, cancellation_fee: 0 };
        assert_eq!(t.fare(500, 0), 11, "10.5 rounds up");
        assert_eq!(t.fare(499, 0), 10, "10.499 rounds down");
        assert_eq!(t.fare(0, 30), 11, "half a minute is 0.5");
        assert_eq!(t.fare(0, 29), 10);
        // 0.25 + 0.25: the halves are added before rounding, not rounded one by one.
        assert_eq!(t.fare(250, 15), 11);
        assert_eq!(t.fare(249, 14), 10);
    }

    #[test]
    fn a_short_ride_costs_the_minimum() {
        assert_eq!(EUR.fare(0, 0), 500);
        // 2.50 + 0.6 × 1.20 + 2 × 0.30 = 3.82.
        assert_eq!(EUR.fare(600, 120), 500);
        let t = Tariff { minimum: 300, ..EUR };
        assert_eq!(t.fare(600, 120), 382);
    }

    #[test]
    fn huge_routes_do_not_overflow() {
        let t = Tariff { base: TARIFF_MAX, per_km: TARIFF_MAX, per_minute: TARIFF_MAX, ..EUR };
        assert_eq!(t.fare(u64::MAX, u64::MAX), i64::MAX);
        assert_eq!(final_fare(&t, 1_000, 20, u64::MAX, u64::MAX), 1_200);
    }

    #[test]
    fn the_final_fare_is_capped_by_the_quote_and_floored_by_the_minimum() {
        // Quoted 12.88; the route turned out longer: 2.50 + 8 × 1.20 + 20 × 0.30 = 18.10.
        assert_eq!(final_fare(&EUR, 1_288, 20, 8_000, 1_200), 1_545, "12.88 × 1.2 = 15.456, rounded down");
        assert_eq!(final_fare(&EUR, 1_288, 0, 8_000, 1_200), 1_288);
        assert_eq!(final_fare(&EUR, 1_288, 100, 8_000, 1_200), 1_810, "under the cap: the route's fare");
        // Shorter than quoted: the route's fare, however cheap, but never below the minimum.
        assert_eq!(final_fare(&EUR, 1_288, 20, 5_000, 600), 1_150);
        assert_eq!(final_fare(&EUR, 1_288, 20, 100, 60), 500);
        assert_eq!(final_fare(&EUR, 100, 20, 8_000, 1_200), 500, "a cap below the minimum yields the minimum");
    }

    #[test]
    fn the_driver_and_the_platform_share_the_fare_exactly() {
        assert_eq!(split(1_545, 2_000), (1_236, 309));
        // 1 545 × 12.5 % = 193.125 → 193; 1 000 × 0.05 % = 0.5 → 1 (half up).
        assert_eq!(split(1_545, 1_250), (1_352, 193));
        assert_eq!(split(1_000, 5), (999, 1));
        assert_eq!(split(1_000, 4), (1_000, 0));
        assert_eq!(split(1_000, 0), (1_000, 0));
        assert_eq!(split(1_000, 10_000), (0, 1_000));
        assert_eq!(split(1_000, 20_000), (0, 1_000), "never more than the fare");
        for fare in [0, 1, 7, 999, 1_545, 123_457] {
            for bps in [0, 1, 333, 1_500, 2_500, 9_999, 10_000] {
                let (driver, platform) = split(fare, bps);
                assert_eq!(driver + platform, fare, "{fare} at {bps}");
                assert!(driver >= 0 && platform >= 0, "{fare} at {bps}");
            }
        }
    }

    #[test]
    fn a_tariff_is_checked_and_every_problem_named() {
        assert_eq!(EUR.check(), Ok(()));
        assert!(Tariff { base: 0, per_km: 0, per_minute: 0, minimum: 1, cancellation_fee: 0 }.check().is_ok());
        let err = Tariff { base: -1, minimum: 0, cancellation_fee: TARIFF_MAX + 1, ..EUR }.check().unwrap_err();
        assert!(err.contains("base is -1"), "{err}");
        assert!(err.contains("minimum is 0"), "{err}");
        assert!(err.contains("cancellation_fee is 10000001"), "{err}");
        assert!(!err.contains("per_km"), "{err}");
        assert!(Tariff { per_minute: TARIFF_MAX + 1, ..EUR }.check().is_err());
    }
}
