//! Mobility: ride hailing. A rider asks for a [`Quote`] between two points for one [`Mode`] of
//! transport, then requests a [`Ride`] from it with the quoted fare held on their wallet. The ride
//! is offered to the nearest fresh, available [`Driver`]s one after the other ([`next_candidate`])
//! until one accepts, and then follows one state machine (requested → driver assigned → driver
//! arriving → in progress → completed, or cancelled or expired on the way). The final fare comes
//! from the [`Tariff`] and the actual route, capped by the quote; the payment is then captured or
//! released.

mod dispatch;
mod driver;
pub mod events;
mod fare;
mod geo;
mod mode;
mod quote;
mod ride;

pub use dispatch::{next_candidate, Candidate, DispatchPolicy};
pub use driver::{
    fresh, Availability, Driver, DriverId, LocationGate, Vehicle, FRESH_FOR, LOCATION_BURST, LOCATION_INTERVAL_MS,
    PLATE_MAX,
};
pub use fare::{fare_cap, final_fare, split, Tariff, TARIFF_MAX};
pub use geo::{check_trip, Fix, Point, EARTH_RADIUS_M, SAME_PLACE_M, SPEED_MAX_MPS};
pub use mode::Mode;
pub use quote::Quote;
pub use ride::{
    Cancellation, CancellationPolicy, Party, PaymentState, Ride, RideAction, RideState, TimelineEntry,
    DRIVER_CANCELLED, REASON_MAX,
};

use std::time::Duration;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::code::{Coded, ErrorCode};

/// Largest page of rides a client may ask for.
pub const PAGE_MAX: usize = 100;

/// Request fields an error may name, so that [`MobilityError::field`] answers with a static name.
const FIELDS: &[&str] = &[
    "pickup.lat",
    "pickup.lon",
    "dropoff.lat",
    "dropoff.lon",
    "location.lat",
    "location.lon",
    "near.lat",
    "near.lon",
    "lat",
    "lon",
    "heading",
    "speed",
    "plate",
    "seats",
    "vehicle.plate",
    "vehicle.seats",
    "reason",
];

/// Every way a mobility command can be refused. Serializable: a refusal is kept under the
/// command's idempotency key and replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", content = "args", rename_all = "snake_case")]
pub enum MobilityError {
    /// A latitude outside [-90, 90], a longitude outside [-180, 180], or a number that is not
    /// finite; `field` names it (e.g. `pickup.lat`).
    #[error("`{field}` is not a coordinate: latitudes are within ±90, longitudes within ±180")]
    InvalidCoordinates {
        /// The coordinate at fault.
        field: String,
    },
    /// Pickup and dropoff are closer than [`SAME_PLACE_M`].
    #[error("pickup and dropoff are the same place (closer than {SAME_PLACE_M} m)")]
    SamePlace,
    /// Not a mode of transport offered.
    #[error("`{0}` is not a mode: car, ev_car, motorbike, bike, scooter or van")]
    UnknownMode(String),
    /// There is no tariff in the wallet's currency.
    #[error("rides are not offered in {0}")]
    UnsupportedCurrency(String),
    /// A position report with a heading outside [0, 360) or a speed outside [0, 100] m/s.
    #[error("`{field}` is out of range: a heading is within [0, 360) degrees, a speed within [0, 100] m/s")]
    InvalidLocation {
        /// The value at fault.
        field: String,
    },
    /// A driver profile that breaks a rule (a plate, no seats) or an overlong reason.
    #[error("`{field}` is invalid: a plate is 1 to 16 of A-Z, 0-9, space or `-`; seats at least 1; a reason at most 500 characters")]
    InvalidProfile {
        /// The value at fault.
        field: String,
    },
    /// More seats than a vehicle of the mode holds.
    #[error("a {mode} holds at most {max} passenger seats")]
    TooManySeats {
        /// The vehicle's mode.
        mode: Mode,
        /// The most seats it may declare.
        max: u8,
    },
    /// The routing provider finds no route between pickup and dropoff.
    #[error("there is no route between pickup and dropoff")]
    NoRoute,
    /// A score that is not a whole number from 1 to 5.
    #[error("a rating is a whole score from 1 to 5")]
    InvalidRating,
    /// No such quote.
    #[error("quote {0} does not exist")]
    QuoteNotFound(Uuid),
    /// The quote is past its expiry.
    #[error("quote {0} has expired: ask for a new one")]
    QuoteExpired(Uuid),
    /// The quote was already used for a ride.
    #[error("quote {0} was already used for a ride")]
    QuoteUsed(Uuid),
    /// The quote is someone else's; told as if it did not exist.
    #[error("quote {0} does not exist")]
    QuoteNotYours(Uuid),
    /// The rider already has a ride that is not final (the id is that ride's).
    #[error("ride {0} is still open: one ride at a time")]
    RideOpen(Uuid),
    /// No such ride.
    #[error("ride {0} does not exist")]
    RideNotFound(Uuid),
    /// The action makes no sense from the ride's current state.
    #[error("ride {ride} is {state}: cannot {action}")]
    RideStateConflict {
        /// The ride.
        ride: Uuid,
        /// Its current state.
        state: RideState,
        /// What was asked.
        action: RideAction,
    },
    /// The caller is neither the ride's rider nor its driver; told as if it did not exist.
    #[error("ride {0} does not exist")]
    NotAParty(Uuid),
    /// The caller has no driver profile.
    #[error("there is no driver profile for this account")]
    DriverNotFound,
    /// The driver is offline: no location reports and no offers.
    #[error("the driver is offline")]
    DriverOffline,
    /// The driver is on a ride: the availability and the vehicle stay as they are until it ends.
    #[error("the driver is on a ride")]
    DriverBusy,
    /// Location reports come faster than allowed.
    #[error("location reports are limited to one a second; retry in {retry_after_ms} ms")]
    LocationTooFrequent {
        /// How long to wait before the next report is taken.
        retry_after_ms: u64,
    },
    /// The ride is not currently offered to this driver.
    #[error("ride {0} is not offered to this driver")]
    NotOffered(Uuid),
    /// This party already rated the ride.
    #[error("ride {0} was already rated by this party")]
    AlreadyRated(Uuid),
}

impl MobilityError {
    /// The request field the refusal is about, when one field is to blame and is one of the
    /// request fields this domain knows (see [`field_name`](Self::field_name) for any name).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidCoordinates { field } | Self::InvalidLocation { field } | Self::InvalidProfile { field } => {
                FIELDS.iter().find(|known| **known == field).copied()
            }
            _ => self.fixed_field(),
        }
    }

    /// The field at fault as the error names it: what [`field`](Self::field) gives, and also a
    /// name outside the fields this domain knows.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            Self::InvalidCoordinates { field } | Self::InvalidLocation { field } | Self::InvalidProfile { field } => {
                Some(field)
            }
            _ => self.fixed_field(),
        }
    }

    /// The field of the variants that always blame the same one.
    fn fixed_field(&self) -> Option<&'static str> {
        match self {
            Self::SamePlace => Some("dropoff"),
            Self::UnknownMode(_) => Some("mode"),
            Self::UnsupportedCurrency(_) => Some("currency"),
            Self::InvalidRating => Some("score"),
            Self::TooManySeats { .. } => Some("seats"),
            _ => None,
        }
    }
}

impl Coded for MobilityError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidCoordinates { .. } => ErrorCode::InvalidCoordinates,
            Self::SamePlace => ErrorCode::SamePickupDropoff,
            Self::UnknownMode(_) => ErrorCode::UnknownMode,
            Self::UnsupportedCurrency(_) => ErrorCode::UnsupportedCurrency,
            Self::InvalidLocation { .. } | Self::InvalidProfile { .. } | Self::InvalidRating => {
                ErrorCode::InvalidParameter
            }
            Self::TooManySeats { .. } => ErrorCode::TooManySeats,
            Self::NoRoute => ErrorCode::NoRoute,
            Self::QuoteNotFound(_) | Self::QuoteNotYours(_) => ErrorCode::QuoteNotFound,
            Self::QuoteExpired(_) => ErrorCode::QuoteExpired,
            Self::QuoteUsed(_) => ErrorCode::QuoteUsed,
            Self::RideOpen(_) => ErrorCode::RideAlreadyOpen,
            Self::RideNotFound(_) | Self::NotAParty(_) => ErrorCode::RideNotFound,
            Self::RideStateConflict { .. } => ErrorCode::RideStateConflict,
            Self::DriverNotFound => ErrorCode::DriverNotFound,
            Self::DriverOffline => ErrorCode::DriverOffline,
            Self::DriverBusy => ErrorCode::DriverBusy,
            Self::LocationTooFrequent { .. } => ErrorCode::LocationRateLimited,
            Self::NotOffered(_) => ErrorCode::RideNotOffered,
            Self::AlreadyRated(_) => ErrorCode::AlreadyRated,
        }
    }

    /// The field at fault, when one is; for a state conflict, the ride's `state` and the `action`.
    fn extensions(&self) -> Map<String, Value> {
        let mut map = Map::new();
        if let Some(field) = self.field_name() {
            map.insert("field".into(), Value::from(field));
        }
        if let Self::RideStateConflict { state, action, .. } = self {
            map.insert("state".into(), Value::from(state.as_str()));
            map.insert("action".into(), Value::from(action.as_str()));
        }
        map
    }

    /// `Retry-After` (whole seconds, at least 1) of a refused location report.
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self.retry_after() {
            Some(wait) => vec![("retry-after", wait.as_millis().div_ceil(1000).max(1).to_string())],
            None => Vec::new(),
        }
    }

    /// How long a refused location report waits.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::LocationTooFrequent { retry_after_ms } => Some(Duration::from_millis(*retry_after_ms)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_table_and_foreign_quotes_and_rides_look_absent() {
        let id = Uuid::now_v7();
        assert_eq!(MobilityError::QuoteNotYours(id).code(), MobilityError::QuoteNotFound(id).code());
        assert_eq!(MobilityError::QuoteNotYours(id).to_string(), MobilityError::QuoteNotFound(id).to_string());
        assert_eq!(MobilityError::NotAParty(id).code(), ErrorCode::RideNotFound);
        assert_eq!(MobilityError::NotAParty(id).to_string(), MobilityError::RideNotFound(id).to_string());
        assert_eq!(MobilityError::SamePlace.code().as_str(), "same_pickup_dropoff");
        assert_eq!(MobilityError::InvalidRating.code().as_str(), "invalid_parameter");
        assert_eq!(MobilityError::QuoteExpired(id).code().status(), 422);
        assert_eq!(MobilityError::TooManySeats { mode: Mode::Van, max: 8 }.code().as_str(), "too_many_seats");
        assert_eq!(MobilityError::NoRoute.code().as_str(), "no_route");
        assert_eq!(MobilityError::LocationTooFrequent { retry_after_ms: 1 }.code().status(), 429);
    }

    #[test]
    fn a_state_conflict_names_the_state_and_the_action() {
        let ride = Uuid::nil();
        let e = MobilityError::RideStateConflict { ride, state: RideState::InProgress, action: RideAction::Cancel };
        assert_eq!(e.to_string(), format!("ride {ride} is in_progress: cannot cancel"));
        let ext = e.extensions();
        assert_eq!(ext.get("state"), Some(&Value::from("in_progress")));
        assert_eq!(ext.get("action"), Some(&Value::from("cancel")));
        assert!(!ext.contains_key("field"));
        assert_eq!(e.code().status(), 409);
    }

    #[test]
    fn the_field_at_fault_is_named_in_the_extensions() {
        let e = MobilityError::InvalidCoordinates { field: "pickup.lat".into() };
        assert_eq!(e.field(), Some("pickup.lat"));
        assert_eq!(e.extensions().get("field"), Some(&Value::from("pickup.lat")));
        assert_eq!(MobilityError::SamePlace.field(), Some("dropoff"));
        assert_eq!(MobilityError::UnknownMode("tram".into()).field(), Some("mode"));
        assert_eq!(MobilityError::UnsupportedCurrency("XOF".into()).field(), Some("currency"));
        assert_eq!(MobilityError::InvalidRating.extensions().get("field"), Some(&Value::from("score")));
        assert_eq!(MobilityError::TooManySeats { mode: Mode::Bike, max: 1 }.field(), Some("seats"));
        assert_eq!(MobilityError::InvalidLocation { field: "speed".into() }.field(), Some("speed"));
        assert_eq!(MobilityError::DriverBusy.field(), None);
        assert!(MobilityError::DriverBusy.extensions().is_empty());
        // A name outside the known list still reaches the client.
        let odd = MobilityError::InvalidCoordinates { field: "stop.lon".into() };
        assert_eq!(odd.field(), None);
        assert_eq!(odd.extensions().get("field"), Some(&Value::from("stop.lon")));
    }

    #[test]
    fn a_refused_location_report_says_when_to_retry() {
        let e = MobilityError::LocationTooFrequent { retry_after_ms: 1200 };
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1200)));
        assert_eq!(e.headers(), vec![("retry-after", "2".to_string())]);
        assert!(e.extensions().is_empty());
        let short = MobilityError::LocationTooFrequent { retry_after_ms: 1 };
        assert_eq!(short.headers(), vec![("retry-after", "1".to_string())]);
        assert_eq!(MobilityError::DriverOffline.retry_after(), None);
    }

    #[test]
    fn a_refusal_survives_a_round_trip_through_json() {
        let e = MobilityError::RideStateConflict {
            ride: Uuid::now_v7(),
            state: RideState::DriverArriving,
            action: RideAction::Start,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["rule"], "ride_state_conflict");
        assert_eq!(json["args"]["state"], "driver_arriving");
        assert_eq!(serde_json::from_value::<MobilityError>(json).unwrap(), e);
    }
}
