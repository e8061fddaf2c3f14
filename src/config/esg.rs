//! `esg`: how activities are priced (the emission factor asked of the emissions adapter per
//! activity type, and the petrol car they are compared with) and how the subjects' entity actors
//! are kept.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// The average petrol car every activity is compared with.
pub const PETROL_CAR: &str =
    "passenger_vehicle-vehicle_type_car-fuel_source_petrol-engine_size_na-vehicle_age_na-vehicle_weight_na";

/// The activity types that emit in use, each priced by an emission factor (the domain's types
/// less walking and cycling; a test in `actors::esg` keeps the two lists together).
pub const EMITTING_TYPES: [&str; 12] = [
    "e_bike",
    "e_scooter",
    "bus",
    "coach",
    "tram",
    "metro",
    "train",
    "ride_car",
    "ride_ev_car",
    "ride_motorbike",
    "ride_scooter",
    "ride_van",
];

/// ESG.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsgSettings {
    /// The emission factor (the emissions adapter's activity id) of each activity type that
    /// emits in use; `walk`, `bike` and `ride_bike` emit nothing and need none.
    pub emissions_activities: BTreeMap<String, String>,
    /// The emission factor of the average petrol car that avoided emissions are counted against.
    pub baseline_activity: String,
    /// A subject's actor unused this long is stopped, seconds.
    pub entity_idle_secs: u64,
    /// Most subjects' actors alive at once.
    pub max_live_entities: usize,
    /// Most a command to the leaderboards (Redis) may take, milliseconds.
    pub leaderboard_timeout_ms: u64,
}

impl Default for EsgSettings {
    fn default() -> Self {
        let bus = "passenger_vehicle-vehicle_type_local_bus-fuel_source_na-distance_na-engine_size_na";
        let coach = "passenger_vehicle-vehicle_type_coach-fuel_source_na-distance_na-engine_size_na";
        let train = "passenger_train-route_type_national_rail-fuel_source_na";
        let tram = "passenger_train-route_type_light_rail_and_tram-fuel_source_na";
        let metro = "passenger_train-route_type_underground-fuel_source_na";
        let e_bike = "passenger_vehicle-vehicle_type_e_bike-fuel_source_electricity";
        let e_scooter = "passenger_vehicle-vehicle_type_e_scooter-fuel_source_electricity";
        let ev = "passenger_vehicle-vehicle_type_car-fuel_source_bev-engine_size_na-vehicle_age_na-vehicle_weight_na";
        let motorbike =
            "passenger_vehicle-vehicle_type_motorbike-fuel_source_na-engine_size_na-vehicle_age_na-vehicle_weight_na";
        let van =
            "commercial_vehicle-vehicle_type_van-fuel_source_diesel-engine_size_na-vehicle_age_na-vehicle_weight_na";
        let activities = [
            ("e_bike", e_bike),
            ("e_scooter", e_scooter),
            ("bus", bus),
            ("coach", coach),
            ("tram", tram),
            ("metro", metro),
            ("train", train),
            ("ride_car", PETROL_CAR),
            ("ride_ev_car", ev),
            ("ride_motorbike", motorbike),
            ("ride_scooter", e_scooter),
            ("ride_van", van),
        ];
        Self {
            emissions_activities: activities.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
            baseline_activity: PETROL_CAR.to_owned(),
            entity_idle_secs: 300,
            max_live_entities: 100_000,
            leaderboard_timeout_ms: 500,
        }
    }
}

impl EsgSettings {
    /// How long an unused subject actor lives.
    pub fn entity_idle(&self) -> Duration {
        Duration::from_secs(self.entity_idle_secs)
    }
}

impl Section for EsgSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if let Some(bad) = self.emissions_activities.keys().find(|k| !EMITTING_TYPES.contains(&k.as_str())) {
            problems.add(
                "esg.emissions_activities",
                format!("`{bad}` is not an activity type that emits in use"),
                "one of e_bike, e_scooter, bus, coach, tram, metro, train, ride_car, ride_ev_car, ride_motorbike, ride_scooter, ride_van",
            );
        }
        let missing: Vec<&str> =
            EMITTING_TYPES.into_iter().filter(|t| !self.emissions_activities.contains_key(*t)).collect();
        if !missing.is_empty() {
            problems.add(
                "esg.emissions_activities",
                format!("no emission factor for {}", missing.join(", ")),
                "name an emissions activity id for every type that emits in use",
            );
        }
        if self.emissions_activities.values().chain([&self.baseline_activity]).any(|a| a.is_empty() || a.len() > 200) {
            problems.add("esg.baseline_activity", "activity ids are 1 to 200 characters", PETROL_CAR);
        }
        if self.leaderboard_timeout_ms == 0 || self.leaderboard_timeout_ms > 10_000 {
            problems.add("esg.leaderboard_timeout_ms", "1 to 10000 ms", "for example 500");
        }
        if self.entity_idle_secs == 0 || self.max_live_entities == 0 {
            problems.add(
                "esg.max_live_entities",
                "actors must live at least 1 s, and at least one at a time",
                "300 and 100000",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_name_a_factor_for_every_type_that_emits() {
        let s = EsgSettings::default();
        let mut problems = SettingsProblems::default();
        s.validate(&ValidationContext { environment: crate::config::Environment::Production }, &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
        let mut broken = EsgSettings::default();
        broken.emissions_activities.remove("train");
        broken.emissions_activities.insert("walk".into(), "x".into());
        let mut problems = SettingsProblems::default();
        broken.validate(&ValidationContext { environment: crate::config::Environment::Development }, &mut problems);
        assert_eq!(problems.0.len(), 2, "{:?}", problems.0);
    }
}
