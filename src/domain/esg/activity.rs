//! Activities: their types, what a user may report, and their footprint in whole grams.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::EsgError;
use crate::domain::mobility::Mode;

/// Longest distance one activity may cover, metres (2,000 km).
pub const DISTANCE_MAX_M: u32 = 2_000_000;

/// How far back an activity may be reported, days.
pub const HISTORY_DAYS: i64 = 365;

/// A kind of activity: how someone travelled. `ride_*` types come from completed rides only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    /// On foot.
    Walk,
    /// A bicycle.
    Bike,
    /// An electric-assisted bicycle.
    EBike,
    /// An electric kick scooter.
    EScooter,
    /// A local bus.
    Bus,
    /// A long-distance coach.
    Coach,
    /// A tram or light rail.
    Tram,
    /// An underground or metro.
    Metro,
    /// A train.
    Train,
    /// A ride in a car (combustion or hybrid).
    RideCar,
    /// A ride in a battery-electric car.
    RideEvCar,
    /// A ride on a motorbike.
    RideMotorbike,
    /// A ride on a bicycle taxi.
    RideBike,
    /// A ride on an electric scooter.
    RideScooter,
    /// A ride in a van.
    RideVan,
}

impl ActivityType {
    /// Every type, in declaration order.
    pub const ALL: [ActivityType; 15] = [
        Self::Walk,
        Self::Bike,
        Self::EBike,
        Self::EScooter,
        Self::Bus,
        Self::Coach,
        Self::Tram,
        Self::Metro,
        Self::Train,
        Self::RideCar,
        Self::RideEvCar,
        Self::RideMotorbike,
        Self::RideBike,
        Self::RideScooter,
        Self::RideVan,
    ];

    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Walk => "walk",
            Self::Bike => "bike",
            Self::EBike => "e_bike",
            Self::EScooter => "e_scooter",
            Self::Bus => "bus",
            Self::Coach => "coach",
            Self::Tram => "tram",
            Self::Metro => "metro",
            Self::Train => "train",
            Self::RideCar => "ride_car",
            Self::RideEvCar => "ride_ev_car",
            Self::RideMotorbike => "ride_motorbike",
            Self::RideBike => "ride_bike",
            Self::RideScooter => "ride_scooter",
            Self::RideVan => "ride_van",
        }
    }

    /// A type a user may report themselves; anything else (a ride's type included, since rides
    /// are credited from their own events) is `unknown_activity_type`.
    pub fn reportable(name: &str) -> Result<ActivityType, EsgError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name && !t.is_ride())
            .ok_or_else(|| EsgError::UnknownActivityType(name.chars().take(32).collect()))
    }

    /// The type a completed ride in `mode` is credited as.
    pub fn of_ride(mode: Mode) -> ActivityType {
        match mode {
            Mode::Car => Self::RideCar,
            Mode::EvCar => Self::RideEvCar,
            Mode::Motorbike => Self::RideMotorbike,
            Mode::Bike => Self::RideBike,
            Mode::Scooter => Self::RideScooter,
            Mode::Van => Self::RideVan,
        }
    }

    /// Whether it comes from a completed ride.
    pub fn is_ride(self) -> bool {
        matches!(
            self,
            Self::RideCar | Self::RideEvCar | Self::RideMotorbike | Self::RideBike | Self::RideScooter | Self::RideVan
        )
    }

    /// Whether the method counts it as avoiding emissions against a petrol car: moved by one's
    /// own strength or a small battery, or shared transport. An electric car is a car.
    pub fn low_carbon(self) -> bool {
        matches!(
            self,
            Self::Walk
                | Self::Bike
                | Self::EBike
                | Self::EScooter
                | Self::Bus
                | Self::Coach
                | Self::Tram
                | Self::Metro
                | Self::Train
                | Self::RideBike
                | Self::RideScooter
        )
    }

    /// Whether it emits nothing in use, so that no emission factor is looked up for it.
    pub fn zero_in_use(self) -> bool {
        matches!(self, Self::Walk | Self::Bike | Self::RideBike)
    }

    /// Most distance one subject is credited with in a day for this type, metres: beyond it, a
    /// day's reports count no further (a generous day on foot or by bike, any distance by vehicle
    /// up to the per-activity limit).
    pub fn daily_cap_m(self) -> u64 {
        match self {
            Self::Walk => 50_000,
            Self::Bike | Self::EBike | Self::RideBike => 200_000,
            Self::EScooter | Self::RideScooter => 80_000,
            _ => u64::from(DISTANCE_MAX_M),
        }
    }
}

/// An activity a user reports: checked, its distance in whole metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// How they travelled.
    pub kind: ActivityType,
    /// The day of the activity.
    pub date: NaiveDate,
    /// Distance, metres (at least 1).
    pub distance_m: u32,
}

impl Report {
    /// A report of `distance_km` by `kind` on `date`, checked against `today`: the distance
    /// finite, above 0 and at most 2,000 km; the date not after today and at most a year back.
    pub fn new(kind: ActivityType, date: NaiveDate, distance_km: f64, today: NaiveDate) -> Result<Report, EsgError> {
        if !distance_km.is_finite() || distance_km <= 0.0 || distance_km * 1000.0 > f64::from(DISTANCE_MAX_M) {
            return Err(EsgError::InvalidDistance(format!("{distance_km} km")));
        }
        let earliest = today - chrono::Days::new(HISTORY_DAYS.unsigned_abs());
        if date > today || date < earliest {
            return Err(EsgError::DateOutOfRange { date, earliest, latest: today });
        }
        // A schema-valid tiny distance still counts one metre: nothing is reported as zero.
        let distance_m = (distance_km * 1000.0).round().clamp(1.0, f64::from(DISTANCE_MAX_M)) as u32;
        Ok(Report { kind, date, distance_m })
    }
}

/// When two reports are the same activity told twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateRule {
    /// Distances this close are the same, metres.
    pub tolerance_m: u32,
    /// Or this close, in percent of the longer of the two.
    pub tolerance_percent: u32,
}

impl Default for DuplicateRule {
    fn default() -> Self {
        Self { tolerance_m: 100, tolerance_percent: 5 }
    }
}

/// Whether `new` repeats `kept`: the same type and date, and distances within the rule's
/// tolerance (the larger of its metres and its percentage of the longer distance).
pub fn duplicate(new: &Report, kept: &Report, rule: DuplicateRule) -> bool {
    if new.kind != kept.kind || new.date != kept.date {
        return false;
    }
    let (a, b) = (u64::from(new.distance_m), u64::from(kept.distance_m));
    let longer = a.max(b);
    let tolerance = u64::from(rule.tolerance_m).max(longer * u64::from(rule.tolerance_percent) / 100);
    a.abs_diff(b) <= tolerance
}

/// An activity's footprint in whole grams of CO2e: what it emitted, what a petrol car would have
/// emitted over the same distance, and the difference avoided (for low-carbon types only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// Emitted, grams.
    pub co2e_g: u64,
    /// An average petrol car over the same distance, grams.
    pub baseline_g: u64,
    /// Avoided against that car, grams (0 unless the type is low-carbon).
    pub avoided_g: u64,
}

impl Footprint {
    /// The footprint of `distance_m` by `kind` at `kg_per_km`, against the baseline car's
    /// `baseline_kg_per_km`; factors that are not finite or below 0 count as 0.
    pub fn of(kind: ActivityType, distance_m: u32, kg_per_km: f64, baseline_kg_per_km: f64) -> Footprint {
        let grams = |kg_per_km: f64| {
            let kg_per_km = if kg_per_km.is_finite() { kg_per_km.max(0.0) } else { 0.0 };
            // kg/km × m = g.
            (kg_per_km * f64::from(distance_m)).round() as u64
        };
        let co2e_g = if kind.zero_in_use() { 0 } else { grams(kg_per_km) };
        let baseline_g = grams(baseline_kg_per_km);
        let avoided_g = if kind.low_carbon() { baseline_g.saturating_sub(co2e_g) } else { 0 };
        Footprint { co2e_g, baseline_g, avoided_g }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn names_round_trip_and_rides_are_not_reportable() {
        for t in ActivityType::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            match ActivityType::reportable(t.as_str()) {
                Ok(found) => assert!(!t.is_ride() && found == t),
                Err(e) => assert!(t.is_ride(), "{e}"),
            }
        }
        assert_eq!(ActivityType::reportable("hovercraft"), Err(EsgError::UnknownActivityType("hovercraft".into())));
        assert_eq!(ActivityType::reportable("ride_car"), Err(EsgError::UnknownActivityType("ride_car".into())));
        let long = "x".repeat(100);
        assert!(matches!(ActivityType::reportable(&long), Err(EsgError::UnknownActivityType(n)) if n.len() == 32));
        for mode in Mode::ALL {
            let t = ActivityType::of_ride(mode);
            assert!(t.is_ride() && t.as_str() == format!("ride_{}", mode.as_str()));
        }
    }

    #[test]
    fn a_report_is_checked_for_its_distance_and_its_date() {
        let today = day("2026-12-06");
        let ok = |km: f64, date: &str| Report::new(ActivityType::Bike, day(date), km, today);
        assert_eq!(ok(12.3456, "2026-12-06").unwrap().distance_m, 12_346);
        assert_eq!(ok(2000.0, "2026-12-06").unwrap().distance_m, DISTANCE_MAX_M);
        assert_eq!(ok(1e-9, "2026-12-06").unwrap().distance_m, 1, "never zero");
        for km in [0.0, -1.0, 2000.001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(ok(km, "2026-12-06"), Err(EsgError::InvalidDistance(_))), "{km}");
        }
        assert!(ok(5.0, "2025-12-06").is_ok(), "a year back is accepted");
        for date in ["2026-12-07", "2025-12-05", "2030-01-01"] {
            let err = ok(5.0, date).unwrap_err();
            assert_eq!(
                err,
                EsgError::DateOutOfRange { date: day(date), earliest: day("2025-12-06"), latest: today },
                "{date}"
            );
        }
    }

    #[test]
    fn a_duplicate_is_the_same_type_and_day_and_about_the_same_distance() {
        let rule = DuplicateRule::default();
        let r = |kind, date: &str, m| Report { kind, date: day(date), distance_m: m };
        let kept = r(ActivityType::Train, "2026-12-01", 1_000);
        assert!(duplicate(&r(ActivityType::Train, "2026-12-01", 1_000), &kept, rule));
        assert!(duplicate(&r(ActivityType::Train, "2026-12-01", 1_100), &kept, rule), "within 100 m");
        assert!(!duplicate(&r(ActivityType::Train, "2026-12-01", 1_101), &kept, rule));
        // 5 % of the longer distance, when that is more than 100 m.
        let long = r(ActivityType::Train, "2026-12-01", 400_000);
        assert!(duplicate(&r(ActivityType::Train, "2026-12-01", 380_000), &long, rule));
        assert!(!duplicate(&r(ActivityType::Train, "2026-12-01", 379_000), &long, rule));
        assert!(!duplicate(&r(ActivityType::Bus, "2026-12-01", 1_000), &kept, rule), "another type");
        assert!(!duplicate(&r(ActivityType::Train, "2026-12-02", 1_000), &kept, rule), "another day");
    }

    #[test]
    fn a_footprint_is_in_whole_grams_and_only_low_carbon_types_avoid() {
        let petrol = 0.176;
        // 10 km by train at 0.035 kg/km: 350 g against 1,760 g.
        let train = Footprint::of(ActivityType::Train, 10_000, 0.035, petrol);
        assert_eq!(train, Footprint { co2e_g: 350, baseline_g: 1_760, avoided_g: 1_410 });
        // A bike emits nothing in use, whatever factor is given.
        let bike = Footprint::of(ActivityType::Bike, 5_000, 0.5, petrol);
        assert_eq!(bike, Footprint { co2e_g: 0, baseline_g: 880, avoided_g: 880 });
        // A car ride avoids nothing, not even an electric one.
        let ev = Footprint::of(ActivityType::RideEvCar, 10_000, 0.05, petrol);
        assert_eq!(ev, Footprint { co2e_g: 500, baseline_g: 1_760, avoided_g: 0 });
        // A low-carbon type dirtier than the baseline avoids nothing rather than a negative.
        let coach = Footprint::of(ActivityType::Coach, 1_000, 0.3, petrol);
        assert_eq!(coach.avoided_g, 0);
        // Rounded half away from zero, and broken factors count as 0.
        assert_eq!(Footprint::of(ActivityType::Bus, 3, 0.1005, petrol).co2e_g, 0);
        assert_eq!(Footprint::of(ActivityType::Bus, 5, 0.1, petrol).co2e_g, 1);
        let broken = Footprint::of(ActivityType::Bus, 1_000, f64::NAN, -1.0);
        assert_eq!(broken, Footprint { co2e_g: 0, baseline_g: 0, avoided_g: 0 });
    }
}
