//! The score method, `esg-score/3` (documented in `docs/esg-method.md`): integers only, from
//! daily totals, the days the subject took part in the community and their wallets' lifecycle,
//! so that the same inputs give the same score whatever order they arrived in.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::ActivityType;
use crate::domain::fintech::MovementKind;

/// The method's version, stored with every score it makes; a new one recomputes them all.
pub const METHOD_VERSION: &str = "esg-score/3";

/// The environmental component looks at this many days, ending on the day scored.
pub const WINDOW_DAYS: u32 = 90;

/// Below this much travel in the window (100 km), the environmental component is scaled down:
/// a single short bike ride is not a perfect score.
pub const FULL_CREDIT_M: u64 = 100_000;

/// Days of community participation in the window that earn the full social component (about one
/// a week).
pub const PARTICIPATION_FULL_DAYS: u64 = 12;

/// Weights of the environmental, social and governance components in the total.
pub const WEIGHTS: [(Part, u64); 3] = [(Part::Environmental, 60), (Part::Social, 20), (Part::Governance, 20)];

/// The totals of one subject's activities of one type on one day, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotal {
    /// The day.
    pub day: NaiveDate,
    /// The type.
    pub kind: ActivityType,
    /// Distance, metres.
    pub distance_m: u64,
    /// What a petrol car would have emitted over it, grams.
    pub baseline_g: u64,
    /// Avoided against that car, grams.
    pub avoided_g: u64,
}

/// What is known of the subject beyond their activities; `None` where the ecosystem has no data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signals {
    /// Takes part in the community (from the social domain's events).
    pub community_participation: Option<u8>,
    /// Their identity is verified.
    pub identity_verified: Option<bool>,
    /// Their accounts are in good standing (no wallet frozen).
    pub good_standing: Option<bool>,
}

/// A component of the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Travel's footprint.
    Environmental,
    /// Community participation.
    Social,
    /// Identity and standing.
    Governance,
}

/// One component: its value (0 to 100, or none without data), its weight, and what made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    /// Which.
    pub part: Part,
    /// 0 to 100, or `None` without data.
    pub value: Option<u8>,
    /// Its weight in the total when it has a value.
    pub weight: u64,
    /// The figures it was computed from, by name.
    pub inputs: BTreeMap<String, u64>,
    /// Why it has no value, when it has none.
    pub missing: Option<String>,
}

/// A subject's score on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    /// The method that made it.
    pub method_version: String,
    /// The day it is for (the window's last day).
    pub as_of: NaiveDate,
    /// 0 to 100: the weighted mean of the components with a value, rounded half up.
    pub total: u8,
    /// Environmental, social and governance, in that order.
    pub components: Vec<Component>,
}

impl Signals {
    /// The signals known from the days the subject took part in the community (posted or
    /// commented, in any order, repeated days counted once): none before their first
    /// participation, then ⌊100 · active days in the window ending on `as_of` / 12⌋, at most 100.
    pub fn from_participation(days: &[NaiveDate], as_of: NaiveDate) -> Self {
        if days.is_empty() {
            return Self::default();
        }
        let first = as_of - chrono::Days::new(u64::from(WINDOW_DAYS - 1));
        let active: std::collections::BTreeSet<&NaiveDate> =
            days.iter().filter(|d| **d >= first && **d <= as_of).collect();
        let value = (active.len() as u64 * 100 / PARTICIPATION_FULL_DAYS).min(100) as u8;
        Self { community_participation: Some(value), ..Self::default() }
    }
}

/// One change of a wallet's lifecycle, as the governance component reads it: its wallet, its
/// place in the wallet's journal, and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WalletChange {
    /// The wallet.
    pub wallet: uuid::Uuid,
    /// Its sequence number in the wallet's journal: the latest says how the wallet stands.
    pub seq: i64,
    /// Opened, frozen, unfrozen or closed.
    pub kind: MovementKind,
}

/// Whether a subject's wallets are in good standing, from their lifecycle changes in any order
/// (each wallet stands as its latest change left it): none without any wallet known, otherwise
/// whether no wallet is frozen. A closed wallet is not held against anyone.
pub fn good_standing(changes: &[WalletChange]) -> Option<bool> {
    let mut latest: BTreeMap<uuid::Uuid, (i64, MovementKind)> = BTreeMap::new();
    for c in changes {
        let at = latest.entry(c.wallet).or_insert((c.seq, c.kind));
        if c.seq > at.0 {
            *at = (c.seq, c.kind);
        }
    }
    if latest.is_empty() {
        return None;
    }
    Some(latest.values().all(|(_, kind)| *kind != MovementKind::Frozen))
}

impl Signals {
    /// The same, with the standing of the subject's wallets ([`good_standing`]).
    pub fn with_standing(self, good_standing: Option<bool>) -> Self {
        Self { good_standing, ..self }
    }
}

impl Score {
    /// The value of `part`, if it has one.
    pub fn value(&self, part: Part) -> Option<u8> {
        self.components.iter().find(|c| c.part == part).and_then(|c| c.value)
    }
}

/// The score on `as_of` from a subject's daily totals (in any order; days outside the window
/// ignored) and `signals`.
///
/// Environmental: each type's distance on a day is credited up to its daily cap (its baseline and
/// avoided grams in proportion), and over the window E = ⌊100 · avoided · min(distance, 100 km) /
/// (baseline · 100 km)⌋: the share of a petrol car's emissions the subject's travel avoided,
/// scaled down while less than 100 km were travelled; 0 without travel. Social: the community
/// participation signal. Governance: the mean of the signals known (verified identity, good
/// standing: 100 or 0 each). The total is the weighted mean of the components that have a value.
pub fn score(days: &[DayTotal], as_of: NaiveDate, signals: &Signals) -> Score {
    let first = as_of - chrono::Days::new(u64::from(WINDOW_DAYS - 1));
    // Totals per (day, type) first, so that a day's cap applies to all its activities together.
    let mut per_day: BTreeMap<(NaiveDate, ActivityType), (u64, u64, u64)> = BTreeMap::new();
    for d in days.iter().filter(|d| d.day >= first && d.day <= as_of) {
        let t = per_day.entry((d.day, d.kind)).or_default();
        *t = (t.0.saturating_add(d.distance_m), t.1.saturating_add(d.baseline_g), t.2.saturating_add(d.avoided_g));
    }
    let (mut distance, mut baseline, mut avoided) = (0u64, 0u64, 0u64);
    for ((_, kind), (d, b, a)) in per_day {
        let credited = d.min(kind.daily_cap_m());
        let share = |g: u64| if d == 0 { 0 } else { mul_div(g, credited, d) };
        distance = distance.saturating_add(credited);
        baseline = baseline.saturating_add(share(b));
        avoided = avoided.saturating_add(share(a));
    }
    let environmental = if baseline == 0 {
        0
    } else {
        let scaled = u128::from(avoided) * u128::from(distance.min(FULL_CREDIT_M)) * 100;
        (scaled / (u128::from(baseline) * u128::from(FULL_CREDIT_M))).min(100) as u8
    };
    let env = Component {
        part: Part::Environmental,
        value: Some(environmental),
        weight: weight(Part::Environmental),
        inputs: BTreeMap::from([
            ("window_days".to_owned(), u64::from(WINDOW_DAYS)),
            ("distance_m".to_owned(), distance),
            ("baseline_g".to_owned(), baseline),
            ("avoided_g".to_owned(), avoided),
        ]),
        missing: None,
    };
    let social = match signals.community_participation {
        Some(v) => Component {
            part: Part::Social,
            value: Some(v.min(100)),
            weight: weight(Part::Social),
            inputs: BTreeMap::from([("community_participation".to_owned(), u64::from(v.min(100)))]),
            missing: None,
        },
        None => absent(Part::Social, "no community participation known yet"),
    };
    let known: Vec<(&str, bool)> =
        [("identity_verified", signals.identity_verified), ("good_standing", signals.good_standing)]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v)))
            .collect();
    let governance = if known.is_empty() {
        absent(Part::Governance, "no wallet known, and no identity verification yet")
    } else {
        let points: u64 = known.iter().map(|(_, v)| if *v { 100 } else { 0 }).sum();
        Component {
            part: Part::Governance,
            value: Some((points / known.len() as u64) as u8),
            weight: weight(Part::Governance),
            inputs: known.iter().map(|(name, v)| ((*name).to_owned(), u64::from(*v))).collect(),
            missing: None,
        }
    };
    let components = vec![env, social, governance];
    let (sum, weights) = components
        .iter()
        .filter_map(|c| c.value.map(|v| (u64::from(v) * c.weight, c.weight)))
        .fold((0u64, 0u64), |(s, w), (v, cw)| (s + v, w + cw));
    // Half up; the environmental component always has a value, so `weights` is never 0.
    let total = ((sum + weights / 2) / weights.max(1)).min(100) as u8;
    Score { method_version: METHOD_VERSION.to_owned(), as_of, total, components }
}

fn weight(part: Part) -> u64 {
    WEIGHTS.iter().find(|(p, _)| *p == part).map_or(0, |(_, w)| *w)
}

fn absent(part: Part, why: &str) -> Component {
    Component { part, value: None, weight: weight(part), inputs: BTreeMap::new(), missing: Some(why.to_owned()) }
}

/// ⌊a · b / c⌋ without overflow (`c` above 0).
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    (u128::from(a) * u128::from(b) / u128::from(c)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::esg::Footprint;

    const PETROL: f64 = 0.176;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// A day's total of `km` by `kind` at `kg_per_km`.
    fn total(date: &str, kind: ActivityType, km: u32, kg_per_km: f64) -> DayTotal {
        let f = Footprint::of(kind, km * 1000, kg_per_km, PETROL);
        DayTotal {
            day: day(date),
            kind,
            distance_m: u64::from(km) * 1000,
            baseline_g: f.baseline_g,
            avoided_g: f.avoided_g,
        }
    }

    const AS_OF: &str = "2026-12-06";

    #[test]
    fn only_low_carbon_travel_scores_full_and_only_car_travel_scores_nothing() {
        let bike = [total("2026-12-01", ActivityType::Bike, 60, 0.0), total("2026-12-02", ActivityType::Bike, 60, 0.0)];
        let s = score(&bike, day(AS_OF), &Signals::default());
        assert_eq!((s.value(Part::Environmental), s.total), (Some(100), 100));
        assert_eq!(s.method_version, METHOD_VERSION);
        let car = [total("2026-12-01", ActivityType::RideCar, 150, PETROL)];
        assert_eq!(score(&car, day(AS_OF), &Signals::default()).total, 0);
        assert_eq!(score(&[], day(AS_OF), &Signals::default()).total, 0, "no travel, nothing avoided");
        // Half the distance by bike, half by car: half of a car's emissions avoided.
        let half =
            [total("2026-12-01", ActivityType::Bike, 60, 0.0), total("2026-12-01", ActivityType::RideCar, 60, PETROL)];
        assert_eq!(score(&half, day(AS_OF), &Signals::default()).value(Part::Environmental), Some(50));
    }

    #[test]
    fn little_travel_is_scaled_down_until_a_hundred_km() {
        let short = [total("2026-12-01", ActivityType::Bike, 10, 0.0)];
        assert_eq!(score(&short, day(AS_OF), &Signals::default()).value(Part::Environmental), Some(10));
        let fifty = [total("2026-12-01", ActivityType::Train, 50, 0.035)];
        // About 80 % avoided (35 of 176 g/km emitted) over half the full-credit distance.
        let e = score(&fifty, day(AS_OF), &Signals::default()).value(Part::Environmental).unwrap();
        assert_eq!(e, 40);
    }

    #[test]
    fn the_window_is_ninety_days_ending_on_the_day_scored() {
        let inside = total("2026-09-08", ActivityType::Bike, 100, 0.0); // as_of − 89
        let outside = total("2026-09-07", ActivityType::RideCar, 100, PETROL); // as_of − 90
        let later = total("2026-12-07", ActivityType::RideCar, 100, PETROL); // tomorrow
        let s = score(&[inside, outside, later], day(AS_OF), &Signals::default());
        assert_eq!(s.value(Part::Environmental), Some(100));
        assert_eq!(s.components[0].inputs["distance_m"], 100_000);
        // A day later the bike ride has left the window and the car ride entered it.
        assert_eq!(score(&[inside, outside, later], day("2026-12-07"), &Signals::default()).total, 0);
    }

    #[test]
    fn a_days_distance_is_credited_up_to_its_types_cap() {
        // 150 km on foot in one day counts as 50 km; the same spread over three days counts fully.
        let one_day = [total("2026-12-01", ActivityType::Walk, 150, 0.0)];
        let s = score(&one_day, day(AS_OF), &Signals::default());
        assert_eq!(s.components[0].inputs["distance_m"], 50_000);
        assert_eq!(s.components[0].inputs["avoided_g"], 8_800);
        assert_eq!(s.value(Part::Environmental), Some(50));
        // Two reports on the same day share the cap.
        let split =
            [total("2026-12-01", ActivityType::Walk, 100, 0.0), total("2026-12-01", ActivityType::Walk, 50, 0.0)];
        assert_eq!(score(&split, day(AS_OF), &Signals::default()), s);
        let spread: Vec<DayTotal> =
            ["2026-12-01", "2026-12-02", "2026-12-03"].iter().map(|d| total(d, ActivityType::Walk, 50, 0.0)).collect();
        assert_eq!(score(&spread, day(AS_OF), &Signals::default()).value(Part::Environmental), Some(100));
    }

    #[test]
    fn the_method_is_documented_under_its_version() {
        let doc = include_str!("../../../docs/esg-method.md");
        assert!(doc.lines().any(|l| l == format!("## {METHOD_VERSION}")), "docs/esg-method.md has no section");
    }

    #[test]
    fn the_order_of_the_totals_does_not_matter() {
        let days = vec![
            total("2026-11-01", ActivityType::Bike, 12, 0.0),
            total("2026-11-01", ActivityType::RideCar, 7, PETROL),
            total("2026-11-15", ActivityType::Train, 33, 0.035),
            total("2026-11-20", ActivityType::Walk, 3, 0.0),
            total("2026-12-05", ActivityType::RideEvCar, 21, 0.05),
            total("2026-11-15", ActivityType::Train, 8, 0.035),
        ];
        let expected = score(&days, day(AS_OF), &Signals::default());
        let mut shuffled = days.clone();
        for _ in 0..days.len() {
            shuffled.rotate_left(1);
            assert_eq!(score(&shuffled, day(AS_OF), &Signals::default()), expected);
            shuffled.reverse();
            assert_eq!(score(&shuffled, day(AS_OF), &Signals::default()), expected);
        }
    }

    #[test]
    fn participation_counts_distinct_days_in_the_window_and_nothing_before_the_first() {
        assert_eq!(Signals::from_participation(&[], day(AS_OF)), Signals::default());
        // Three posts on one day and a comment on another: two days of twelve.
        let days = [day("2026-12-01"), day("2026-12-01"), day("2026-12-01"), day("2026-11-20")];
        assert_eq!(Signals::from_participation(&days, day(AS_OF)).community_participation, Some(16));
        // Out of the window (as_of − 90, and tomorrow): known, but worth nothing now.
        let old = [day("2026-09-07"), day("2026-12-07")];
        assert_eq!(Signals::from_participation(&old, day(AS_OF)).community_participation, Some(0));
        // Twelve days or more earn the full component.
        let busy: Vec<NaiveDate> = (0..20).map(|n| day(AS_OF) - chrono::Days::new(n * 4)).collect();
        assert_eq!(Signals::from_participation(&busy, day(AS_OF)).community_participation, Some(100));
        let mut reversed = busy.clone();
        reversed.reverse();
        assert_eq!(Signals::from_participation(&reversed, day(AS_OF)), Signals::from_participation(&busy, day(AS_OF)));
        // With travel: (60·100 + 20·16) / 80 = 79.
        let bike = [total("2026-12-01", ActivityType::Bike, 100, 0.0)];
        let s = score(&bike, day(AS_OF), &Signals::from_participation(&days, day(AS_OF)));
        assert_eq!((s.value(Part::Social), s.total), (Some(16), 79));
        assert_eq!(s.components[1].inputs["community_participation"], 16);
    }

    #[test]
    fn each_wallet_stands_as_its_latest_change_left_it_whatever_the_order() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let change = |wallet, seq, kind| WalletChange { wallet, seq, kind };
        assert_eq!(good_standing(&[]), None);
        let opened = [change(a, 1, MovementKind::Opened)];
        assert_eq!(good_standing(&opened), Some(true));
        let mut frozen = vec![change(a, 1, MovementKind::Opened), change(a, 5, MovementKind::Frozen)];
        assert_eq!(good_standing(&frozen), Some(false));
        frozen.reverse();
        assert_eq!(good_standing(&frozen), Some(false), "order does not matter");
        // Unfrozen later: good again; the unfreeze arriving before the freeze changes nothing.
        let thawed = [change(a, 9, MovementKind::Unfrozen), change(a, 5, MovementKind::Frozen)];
        assert_eq!(good_standing(&thawed), Some(true));
        // One frozen wallet among several is enough; a closed one is not held against them.
        let two = [change(a, 3, MovementKind::Closed), change(b, 2, MovementKind::Frozen)];
        assert_eq!(good_standing(&two), Some(false));
        assert_eq!(good_standing(&two[..1]), Some(true));
        // Into the score: governance 0 with a frozen wallet, 100 otherwise.
        let bike = [total("2026-12-01", ActivityType::Bike, 100, 0.0)];
        let s = score(&bike, day(AS_OF), &Signals::default().with_standing(good_standing(&two)));
        // (60·100 + 20·0) / 80 = 75.
        assert_eq!((s.value(Part::Governance), s.total), (Some(0), 75));
        assert_eq!(s.components[2].inputs["good_standing"], 0);
    }

    #[test]
    fn social_and_governance_count_where_there_is_data_and_say_why_not_otherwise() {
        let bike = [total("2026-12-01", ActivityType::Bike, 100, 0.0)];
        let none = score(&bike, day(AS_OF), &Signals::default());
        assert_eq!((none.value(Part::Social), none.value(Part::Governance), none.total), (None, None, 100));
        assert!(none.components[1].missing.is_some() && none.components[2].missing.is_some());
        // Governance from what is known: standing good, identity unknown.
        let standing = Signals { good_standing: Some(true), ..Signals::default() };
        let s = score(&bike, day(AS_OF), &standing);
        assert_eq!((s.value(Part::Governance), s.total), (Some(100), 100));
        let frozen = Signals { good_standing: Some(false), identity_verified: Some(true), ..Signals::default() };
        let s = score(&bike, day(AS_OF), &frozen);
        // (60·100 + 20·50) / 80 = 87.5, rounded half up.
        assert_eq!((s.value(Part::Governance), s.total), (Some(50), 88));
        let all = Signals { community_participation: Some(40), ..frozen };
        let s = score(&bike, day(AS_OF), &all);
        // (60·100 + 20·40 + 20·50) / 100.
        assert_eq!(s.total, 78);
        assert_eq!(
            s.components.iter().map(|c| c.part).collect::<Vec<_>>(),
            [Part::Environmental, Part::Social, Part::Governance]
        );
    }
}
