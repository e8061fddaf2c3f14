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
