//! Modes of transport a ride may be requested in.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MobilityError;

/// A mode of transport: what kind of vehicle picks the rider up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A car with a combustion or hybrid engine.
    Car,
    /// A battery-electric car.
    EvCar,
    /// A motorbike: one passenger behind the driver.
    Motorbike,
    /// A bicycle (taxi): pedalled, one passenger.
    Bike,
    /// An electric scooter: one passenger.
    Scooter,
    /// A van: up to eight passengers.
    Van,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 6] = [Mode::Car, Mode::EvCar, Mode::Motorbike, Mode::Bike, Mode::Scooter, Mode::Van];

    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Car => "car",
            Self::EvCar => "ev_car",
            Self::Motorbike => "motorbike",
            Self::Bike => "bike",
            Self::Scooter => "scooter",
            Self::Van => "van",
        }
    }

    /// Parse a name; anything else is `unknown_mode`.
    pub fn parse(s: &str) -> Result<Mode, MobilityError> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| MobilityError::UnknownMode(s.chars().take(32).collect()))
    }

    /// Whether it is moved by the rider's or driver's own strength, emitting nothing in use.
    pub fn human_powered(self) -> bool {
        matches!(self, Self::Bike)
    }

    /// Most passenger seats a vehicle of this mode may declare.
    pub fn max_seats(self) -> u8 {
        match self {
            Self::Car | Self::EvCar => 7,
            Self::Van => 8,
            Self::Motorbike | Self::Bike | Self::Scooter => 1,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_round_trips_through_its_name_and_json() {
        for mode in Mode::ALL {
            assert_eq!(Mode::parse(mode.as_str()), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_str());
            assert_eq!(serde_json::to_value(mode).unwrap(), serde_json::Value::from(mode.as_str()));
            assert_eq!(serde_json::from_value::<Mode>(mode.as_str().into()).unwrap(), mode);
        }
        let names: std::collections::HashSet<_> = Mode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names.len(), Mode::ALL.len());
        assert_eq!(Mode::EvCar.as_str(), "ev_car");
    }

    #[test]
    fn an_unknown_mode_is_refused_with_its_name_cut_short() {
        assert_eq!(Mode::parse("tram"), Err(MobilityError::UnknownMode("tram".into())));
        assert_eq!(Mode::parse("Car"), Err(MobilityError::UnknownMode("Car".into())));
        assert_eq!(Mode::parse("ev-car"), Err(MobilityError::UnknownMode("ev-car".into())));
        assert_eq!(Mode::parse(""), Err(MobilityError::UnknownMode(String::new())));
        assert_eq!(Mode::parse(&"x".repeat(100)), Err(MobilityError::UnknownMode("x".repeat(32))));
    }

    #[test]
    fn only_the_bike_is_human_powered_and_seats_fit_the_vehicle() {
        let human: Vec<_> = Mode::ALL.into_iter().filter(|m| m.human_powered()).collect();
        assert_eq!(human, [Mode::Bike]);
        let seats: Vec<_> = Mode::ALL.into_iter().map(Mode::max_seats).collect();
        assert_eq!(seats, [7, 7, 1, 1, 1, 8]);
    }
}
