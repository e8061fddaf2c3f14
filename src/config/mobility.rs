//! `mobility`: drivers, quotes, rides, dispatch and the fares.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// The vehicle modes a tariff or an emissions activity may be set for.
pub const MODES: [&str; 6] = ["car", "ev_car", "motorbike", "bike", "scooter", "van"];

/// What a ride of one mode costs, in minor units of the rider's wallet currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TariffSettings {
    /// Charged for every ride.
    pub base: i64,
    /// Per kilometre of the route.
    pub per_km: i64,
    /// Per minute of the route.
    pub per_minute: i64,
    /// The least a ride costs.
    pub minimum: i64,
    /// What a rider's cancellation after the grace period costs (never more than the fare).
    pub cancellation_fee: i64,
}

impl TariffSettings {
    const fn new(base: i64, per_km: i64, per_minute: i64, minimum: i64, cancellation_fee: i64) -> Self {
        Self { base, per_km, per_minute, minimum, cancellation_fee }
    }
}

/// The mobility domain.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MobilitySettings {
    /// How long a quote may be used for a ride, seconds.
    pub quote_ttl_secs: u64,
    /// How far above its quote a ride's final fare may go, percent of the quote.
    pub fare_tolerance_percent: u32,
    /// The platform's commission on a fare, basis points (2000 = 20 %); the rest is the driver's.
    pub commission_bps: u32,
    /// A rider cancels for free within this long of the request, seconds.
    pub cancellation_grace_secs: u64,
    /// The radii searched for drivers around a pickup, one after the other, metres.
    pub dispatch_radii_m: Vec<u32>,
    /// How long a driver has to accept an offer, seconds.
    pub offer_timeout_secs: u64,
    /// A ride no driver accepted within this long of its request expires, seconds.
    pub dispatch_window_secs: u64,
    /// How many of the nearest drivers the first search returns (each wider one four times as
    /// many, at most 1000).
    pub dispatch_candidates: usize,
    /// Fares per currency (ISO 4217 code), then per mode; a currency absent here is not served.
    pub tariffs: BTreeMap<String, BTreeMap<String, TariffSettings>>,
    /// The emission factor (the emissions provider's activity id) of each motorised mode; a mode
    /// absent here gets no CO2e estimate, except `bike`, which emits nothing in use.
    pub emissions_activities: BTreeMap<String, String>,
    /// A driver's or a ride's actor unused this long is stopped, seconds.
    pub entity_idle_secs: u64,
    /// Most driver actors and most ride actors alive at once (each).
    pub max_live_entities: usize,
    /// Hours a held fare stays held at most (a ride's hold is released by then if it is still
    /// pending).
    pub hold_hours: u64,
    /// Owner of the platform's wallets, which receive the commissions (one per currency).
    pub platform_owner: String,
    /// Most a command to the geo index (Redis) may take, milliseconds.
    pub geo_timeout_ms: u64,
}

impl Default for MobilitySettings {
    fn default() -> Self {
        let eur = BTreeMap::from([
            ("car".to_string(), TariffSettings::new(250, 110, 25, 600, 500)),
            ("ev_car".to_string(), TariffSettings::new(250, 110, 25, 600, 500)),
            ("van".to_string(), TariffSettings::new(400, 160, 35, 900, 700)),
            ("motorbike".to_string(), TariffSettings::new(150, 80, 15, 400, 300)),
            ("scooter".to_string(), TariffSettings::new(100, 30, 20, 200, 100)),
            ("bike".to_string(), TariffSettings::new(100, 40, 15, 300, 200)),
        ]);
        let activities = BTreeMap::from([
            (
                "car".to_string(),
                "passenger_vehicle-vehicle_type_car-fuel_source_petrol-engine_size_na-vehicle_age_na-vehicle_weight_na"
                    .to_string(),
            ),
            (
                "ev_car".to_string(),
                "passenger_vehicle-vehicle_type_car-fuel_source_bev-engine_size_na-vehicle_age_na-vehicle_weight_na"
                    .to_string(),
            ),
            (
                "van".to_string(),
                "commercial_vehicle-vehicle_type_van-fuel_source_diesel-engine_size_na-vehicle_age_na-vehicle_weight_na"
                    .to_string(),
            ),
            (
                "motorbike".to_string(),
                "passenger_vehicle-vehicle_type_motorbike-fuel_source_na-engine_size_na-vehicle_age_na-vehicle_weight_na"
                    .to_string(),
            ),
        ]);
        Self {
            quote_ttl_secs: 300,
            fare_tolerance_percent: 20,
            commission_bps: 2_000,
            cancellation_grace_secs: 120,
            dispatch_radii_m: vec![1_000, 2_500, 5_000, 10_000],
            offer_timeout_secs: 15,
            dispatch_window_secs: 180,
            dispatch_candidates: 10,
            tariffs: BTreeMap::from([
                ("EUR".to_string(), eur.clone()),
                ("USD".to_string(), eur.clone()),
                ("GBP".to_string(), eur),
            ]),
            emissions_activities: activities,
            entity_idle_secs: 300,
            max_live_entities: 100_000,
            hold_hours: 24,
            platform_owner: "platform:mobility".to_string(),
            geo_timeout_ms: 500,
        }
    }
}

impl MobilitySettings {
    /// How long a quote may be used.
    pub fn quote_ttl(&self) -> Duration {
        Duration::from_secs(self.quote_ttl_secs)
    }

    /// The free cancellation period.
    pub fn cancellation_grace(&self) -> Duration {
        Duration::from_secs(self.cancellation_grace_secs)
    }

    /// How long a driver has to accept an offer.
    pub fn offer_timeout(&self) -> Duration {
        Duration::from_secs(self.offer_timeout_secs)
    }

    /// How long a ride waits for a driver.
    pub fn dispatch_window(&self) -> Duration {
        Duration::from_secs(self.dispatch_window_secs)
    }

    /// How long an unused entity actor lives.
    pub fn entity_idle(&self) -> Duration {
        Duration::from_secs(self.entity_idle_secs)
    }
}

fn tariff_problem(t: &TariffSettings) -> Option<&'static str> {
    const MAX: i64 = 10_000_000;
    let all = [t.base, t.per_km, t.per_minute, t.minimum, t.cancellation_fee];
    if all.iter().any(|v| *v < 0 || *v > MAX) {
        Some("every figure is 0 to 10000000 minor units")
    } else if t.minimum == 0 {
        Some("the minimum fare must be above 0")
    } else {
        None
    }
}

impl Section for MobilitySettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if self.quote_ttl_secs < 30 || self.quote_ttl_secs > 3_600 {
            problems.add("mobility.quote_ttl_secs", "a quote must be usable 30 s to 1 h", "for example 300");
        }
        if self.fare_tolerance_percent > 100 {
            problems.add("mobility.fare_tolerance_percent", "at most 100 %", "for example 20");
        }
        if self.commission_bps > 10_000 {
            problems.add("mobility.commission_bps", "at most 10000 basis points (100 %)", "for example 2000");
        }
        let radii = &self.dispatch_radii_m;
        if radii.is_empty() || radii.windows(2).any(|w| w[0] >= w[1]) || radii.iter().any(|r| *r == 0 || *r > 50_000) {
            problems.add(
                "mobility.dispatch_radii_m",
                "the search radii must be increasing, each 1 to 50000 m",
                "for example [1000, 2500, 5000, 10000]",
            );
        }
        if self.offer_timeout_secs == 0 || self.dispatch_window_secs <= self.offer_timeout_secs {
            problems.add(
                "mobility.dispatch_window_secs",
                "an offer needs at least 1 s, and the dispatch window must be longer than one offer",
                "for example 15 (offer) and 180 (window)",
            );
        }
        if self.dispatch_candidates == 0 || self.dispatch_candidates > 100 {
            problems.add("mobility.dispatch_candidates", "a search returns 1 to 100 drivers", "for example 10");
        }
        if self.tariffs.is_empty() {
            problems.add("mobility.tariffs", "at least one currency needs tariffs", "for example EUR with every mode");
        }
        for (currency, modes) in &self.tariffs {
            let code_ok = currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase());
            if !code_ok {
                problems.add("mobility.tariffs", format!("`{currency}` is not an ISO 4217 code"), "for example EUR");
            }
            for (mode, tariff) in modes {
                if !MODES.contains(&mode.as_str()) {
                    problems.add(
                        "mobility.tariffs",
                        format!("`{mode}` ({currency}) is not a mode"),
                        "one of car, ev_car, motorbike, bike, scooter, van",
                    );
                } else if let Some(why) = tariff_problem(tariff) {
                    problems.add("mobility.tariffs", format!("{currency} {mode}: {why}"), "for example base 250");
                }
            }
        }
        if self.emissions_activities.keys().any(|m| !MODES.contains(&m.as_str())) {
            problems.add(
                "mobility.emissions_activities",
                "every key must be a mode",
                "one of car, ev_car, motorbike, bike, scooter, van",
            );
        }
        if self.entity_idle_secs == 0 || self.max_live_entities == 0 {
            problems.add(
                "mobility.entity_idle_secs",
                "entity actors need an idle time of at least 1 s and room for one",
                "for example 300 and 100000",
            );
        }
        if self.hold_hours == 0 || self.hold_hours > 24 * 30 {
            problems.add("mobility.hold_hours", "a fare is held 1 hour to 30 days", "for example 24");
        }
        if self.geo_timeout_ms == 0 || self.geo_timeout_ms > 10_000 {
            problems.add("mobility.geo_timeout_ms", "1 to 10000 ms", "for example 500");
        }
        if self.platform_owner.trim().is_empty() || self.platform_owner.len() > 128 {
            problems.add("mobility.platform_owner", "1 to 128 characters", "for example platform:mobility");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn problems(settings: &MobilitySettings) -> Vec<String> {
        let mut found = SettingsProblems::default();
        settings.validate(&ValidationContext { environment: Environment::Test }, &mut found);
        found.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn the_defaults_hold_and_each_rule_names_its_setting() {
        assert!(problems(&MobilitySettings::default()).is_empty());
        let radii = MobilitySettings { dispatch_radii_m: vec![2_000, 1_000], ..Default::default() };
        assert_eq!(problems(&radii), vec!["mobility.dispatch_radii_m"]);
        let window = MobilitySettings { dispatch_window_secs: 10, ..Default::default() };
        assert_eq!(problems(&window), vec!["mobility.dispatch_window_secs"]);
        let mut tariffs = MobilitySettings::default();
        tariffs.tariffs.insert("eur".into(), BTreeMap::new());
        tariffs.tariffs.get_mut("USD").unwrap().insert("hovercraft".into(), TariffSettings::new(1, 1, 1, 1, 1));
        tariffs.tariffs.get_mut("GBP").unwrap().insert("car".into(), TariffSettings::new(1, 1, 1, 0, 1));
        assert_eq!(problems(&tariffs), vec!["mobility.tariffs"; 3]);
    }
}
