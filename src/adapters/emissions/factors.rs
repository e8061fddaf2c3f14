//! The emission factors shipped with the service: what the simulator answers and what the
//! fallback uses when the provider fails. One dated table naming its source; a new edition is a
//! new table, never an edit of this one.

/// A dated table of emission factors per kilometre travelled.
#[derive(Debug)]
pub struct FactorTable {
    /// Short name, recorded in each answer's provenance.
    pub name: &'static str,
    /// Who published it, and where.
    pub source: &'static str,
    /// Edition (reporting year) of the source.
    pub edition: u16,
    /// What the figures measure.
    pub unit: &'static str,
    /// (activity id, kg per vehicle-km).
    pub factors: &'static [(&'static str, f64)],
}

impl FactorTable {
    /// The factor for `activity_id`, kg per km.
    pub fn factor(&self, activity_id: &str) -> Option<f64> {
        self.factors.iter().find(|(id, _)| *id == activity_id).map(|(_, f)| *f)
    }
}

/// Every shipped table, searched in this order.
pub const SHIPPED: [&FactorTable; 2] = [&UK_GHG_2018, &UK_GHG_2018_PASSENGER];

/// The shipped table that has a factor for `activity_id`, and the factor.
pub fn shipped(activity_id: &str) -> Option<(&'static FactorTable, f64)> {
    SHIPPED.into_iter().find_map(|t| t.factor(activity_id).map(|f| (t, f)))
}

/// UK Government GHG Conversion Factors for Company Reporting, 2018 edition: passenger
/// vehicles, average car by fuel, per vehicle-km, rounded to three decimals. The figures are the
/// direct (tailpipe) CO2 of the "Passenger vehicles" sheet; the small CH4 and N2O share of CO2e
/// and the upstream (well-to-tank) emissions are not included, so they slightly underestimate
/// a full CO2e figure. Keyed by the activity ids the service asks the provider for.
pub const UK_GHG_2018: FactorTable = FactorTable {
    name: "uk-ghg-conversion-factors-2018",
    source: "UK Government GHG Conversion Factors for Company Reporting 2018 (BEIS/Defra), \
             passenger vehicles, average car",
    edition: 2018,
    unit: "kg CO2 per vehicle-km",
    factors: &[
        (
            "passenger_vehicle-vehicle_type_car-fuel_source_petrol-engine_size_na-vehicle_age_na-vehicle_weight_na",
            0.176,
        ),
        (
            "passenger_vehicle-vehicle_type_car-fuel_source_diesel-engine_size_na-vehicle_age_na-vehicle_weight_na",
            0.183,
        ),
        ("passenger_vehicle-vehicle_type_car-fuel_source_hev-engine_size_na-vehicle_age_na-vehicle_weight_na", 0.124),
        ("passenger_vehicle-vehicle_type_car-fuel_source_phev-engine_size_na-vehicle_age_na-vehicle_weight_na", 0.071),
    ],
};

/// Per passenger-km factors for shared and light transport, and per vehicle-km factors for the
/// other ride vehicles, same edition (kg CO2e, rounded to three decimals): local bus, coach,
/// national rail, light rail and tram, London Underground; average motorbike; average diesel van
/// up to 3.5 t. The electric entries (battery car, e-bike, e-scooter) are the 2018 UK grid
/// electricity factor (0.28307 kg CO2e per kWh) times an assumed use of 0.18, 0.011 and 0.015 kWh
/// per km.
pub const UK_GHG_2018_PASSENGER: FactorTable = FactorTable {
    name: "uk-ghg-conversion-factors-2018-passenger",
    source: "UK Government GHG Conversion Factors for Company Reporting 2018 (BEIS/Defra), \
             business travel (land) and UK electricity",
    edition: 2018,
    unit: "kg CO2e per passenger-km (vehicle-km for motorbike, van and electric vehicles)",
    factors: &[
        ("passenger_vehicle-vehicle_type_local_bus-fuel_source_na-distance_na-engine_size_na", 0.103),
        ("passenger_vehicle-vehicle_type_coach-fuel_source_na-distance_na-engine_size_na", 0.027),
        ("passenger_train-route_type_national_rail-fuel_source_na", 0.041),
        ("passenger_train-route_type_light_rail_and_tram-fuel_source_na", 0.035),
        ("passenger_train-route_type_underground-fuel_source_na", 0.031),
        (
            "passenger_vehicle-vehicle_type_motorbike-fuel_source_na-engine_size_na-vehicle_age_na-vehicle_weight_na",
            0.114,
        ),
        (
            "commercial_vehicle-vehicle_type_van-fuel_source_diesel-engine_size_na-vehicle_age_na-vehicle_weight_na",
            0.250,
        ),
        ("passenger_vehicle-vehicle_type_car-fuel_source_bev-engine_size_na-vehicle_age_na-vehicle_weight_na", 0.051),
        ("passenger_vehicle-vehicle_type_e_bike-fuel_source_electricity", 0.003),
        ("passenger_vehicle-vehicle_type_e_scooter-fuel_source_electricity", 0.004),
    ],
};
