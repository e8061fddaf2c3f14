//! Drivers: their vehicle, their availability, the ride they are on, and how often they may
//! report their position.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MobilityError, Mode};
use crate::domain::fintech::WalletId;

/// Longest licence plate, in characters.
pub const PLATE_MAX: usize = 16;

/// A driver not heard from for this long is not offered rides.
pub const FRESH_FOR: Duration = Duration::from_secs(30);

/// Average interval between two location reports of one driver, in milliseconds.
pub const LOCATION_INTERVAL_MS: i64 = 1_000;

/// Location reports a driver may send at once after a quiet spell.
pub const LOCATION_BURST: i64 = 2;

/// A driver's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DriverId(pub Uuid);

impl DriverId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parse a UUID; `None` when it is not one.
    pub fn parse(s: &str) -> Option<DriverId> {
        Uuid::parse_str(s).ok().map(Self)
    }
}

impl fmt::Display for DriverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a driver may be offered rides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Not working: no offers, no location reports.
    Offline,
    /// Working and free: offered rides nearby.
    Available,
    /// Busy with a ride until it ends.
    OnRide,
}

impl Availability {
    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Available => "available",
            Self::OnRide => "on_ride",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "offline" => Some(Self::Offline),
            "available" => Some(Self::Available),
            "on_ride" => Some(Self::OnRide),
            _ => None,
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The vehicle a driver drives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vehicle {
    /// Its mode: the rides it is offered.
    pub mode: Mode,
    /// Licence plate: upper case, 1 to [`PLATE_MAX`] of `A-Z`, `0-9`, space or `-`.
    pub plate: String,
    /// Passenger seats, from 1 to the mode's [`Mode::max_seats`].
    pub seats: u8,
}

impl Vehicle {
    /// A checked vehicle, its plate trimmed and upper-cased; otherwise `invalid_parameter`
    /// naming `plate` or `seats` (none), or `too_many_seats` (more than the mode holds).
    pub fn new(mode: Mode, plate: &str, seats: u8) -> Result<Vehicle, MobilityError> {
        let plate = plate.trim().to_ascii_uppercase();
        let plate_ok = (1..=PLATE_MAX).contains(&plate.chars().count())
            && plate.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '-');
        if !plate_ok {
            return Err(MobilityError::InvalidProfile { field: "plate".into() });
        }
        if seats == 0 {
            return Err(MobilityError::InvalidProfile { field: "seats".into() });
        }
        if seats > mode.max_seats() {
            return Err(MobilityError::TooManySeats { mode, max: mode.max_seats() });
        }
        Ok(Vehicle { mode, plate, seats })
    }
}

/// A driver profile as stored: `version` counts its changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// Identity.
    pub id: DriverId,
    /// The vehicle driven.
    pub vehicle: Vehicle,
    /// The driver's own wallet, credited with their share of each fare.
    pub wallet: WalletId,
    /// Whether rides may be offered.
    pub availability: Availability,
    /// The ride the driver is on, when `on_ride`.
    pub ride: Option<Uuid>,
    /// Sum of the scores riders gave.
    pub rating_sum: i64,
    /// Number of scores riders gave.
    pub rating_count: i64,
    /// Number of changes applied, registration included.
    pub version: i64,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
}

impl Driver {
    /// A new driver profile: offline, on no ride, not rated yet.
    pub fn register(id: DriverId, vehicle: Vehicle, wallet: WalletId, now: DateTime<Utc>) -> Driver {
        Driver {
            id,
            vehicle,
            wallet,
            availability: Availability::Offline,
            ride: None,
            rating_sum: 0,
            rating_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn changed(&self, now: DateTime<Utc>) -> Driver {
        Driver { version: self.version + 1, updated_at: now, ..self.clone() }
    }

    /// Go offline or available. A driver on a ride stays on it, and `on_ride` is set only by
    /// [`take_ride`](Self::take_ride): both are `driver_busy`. Asking for the current availability
    /// changes nothing.
    pub fn set_availability(&self, to: Availability, now: DateTime<Utc>) -> Result<Driver, MobilityError> {
        if self.availability == Availability::OnRide || to == Availability::OnRide {
            return Err(MobilityError::DriverBusy);
        }
        if to == self.availability {
            return Ok(self.clone());
        }
        Ok(Driver { availability: to, ..self.changed(now) })
    }

    /// Drive another vehicle (checked again) and be paid into `wallet`; `driver_busy` while on a
    /// ride.
    pub fn change_vehicle(&self, v: Vehicle, wallet: WalletId, now: DateTime<Utc>) -> Result<Driver, MobilityError> {
        if self.availability == Availability::OnRide {
            return Err(MobilityError::DriverBusy);
        }
        let vehicle = Vehicle::new(v.mode, &v.plate, v.seats)?;
        Ok(Driver { vehicle, wallet, ..self.changed(now) })
    }

    /// Take a ride: only an available driver does (`driver_offline`, or `driver_busy` when on
    /// another ride). Taking the ride already taken changes nothing.
    pub fn take_ride(&self, ride: Uuid, now: DateTime<Utc>) -> Result<Driver, MobilityError> {
        match self.availability {
            Availability::OnRide if self.ride == Some(ride) => Ok(self.clone()),
            Availability::OnRide => Err(MobilityError::DriverBusy),
            Availability::Offline => Err(MobilityError::DriverOffline),
            Availability::Available => {
                Ok(Driver { availability: Availability::OnRide, ride: Some(ride), ..self.changed(now) })
            }
        }
    }

    /// Leave a ride that ended or was given up: available again if it was this driver's ride,
    /// unchanged otherwise.
    pub fn release_ride(&self, ride: Uuid, now: DateTime<Utc>) -> Driver {
        if self.ride == Some(ride) {
            Driver { availability: Availability::Available, ride: None, ..self.changed(now) }
        } else {
            self.clone()
        }
    }

    /// Count a rider's score (1 to 5, else `invalid_parameter` naming `score`).
    pub fn rated(&self, score: u8, now: DateTime<Utc>) -> Result<Driver, MobilityError> {
        if !(1..=5).contains(&score) {
            return Err(MobilityError::InvalidRating);
        }
        let next = self.changed(now);
        Ok(Driver { rating_sum: next.rating_sum + i64::from(score), rating_count: next.rating_count + 1, ..next })
    }

    /// Mean score riders gave, once there is one.
    pub fn average_rating(&self) -> Option<f64> {
        (self.rating_count > 0).then(|| self.rating_sum as f64 / self.rating_count as f64)
    }
}

/// Whether a driver last heard from at `last_seen` may still be offered rides at `now`: less than
/// [`FRESH_FOR`] ago (a report stamped slightly ahead of `now` is fresh).
pub fn fresh(last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let limit = i64::try_from(FRESH_FOR.as_millis()).unwrap_or(i64::MAX);
    now.signed_duration_since(last_seen).num_milliseconds() < limit
}

/// GCRA for location reports: on average at most one per second per driver, with a burst of 2 to
/// absorb network jitter. The state is one number, the theoretical arrival time of the next
/// report; a report is taken when it comes no earlier than that time minus the burst tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocationGate {
    /// Theoretical arrival time of the next report, in milliseconds of the caller's clock.
    pub tat_ms: i64,
}

impl LocationGate {
    /// Take a report arriving at `now_ms`, or refuse it with how long to wait
    /// (`location_rate_limited`), leaving the gate as it was.
    pub fn admit(&mut self, now_ms: i64) -> Result<(), MobilityError> {
        let tolerance = (LOCATION_BURST - 1) * LOCATION_INTERVAL_MS;
        let allowed_at = self.tat_ms.saturating_sub(tolerance);
        if now_ms < allowed_at {
            let wait = allowed_at.saturating_sub(now_ms);
            return Err(MobilityError::LocationTooFrequent { retry_after_ms: u64::try_from(wait).unwrap_or(u64::MAX) });
        }
        self.tat_ms = self.tat_ms.max(now_ms).saturating_add(LOCATION_INTERVAL_MS);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn driver(availability: Availability) -> Driver {
        let vehicle = Vehicle::new(Mode::Car, "ab-123-cd", 4).unwrap();
        Driver { availability, ..Driver::register(DriverId::generate(), vehicle, WalletId::generate(), now()) }
    }

    #[test]
    fn plates_are_trimmed_upper_cased_and_checked() {
        let v = Vehicle::new(Mode::Car, "  ab-123 cd ", 4).unwrap();
        assert_eq!(v.plate, "AB-123 CD");
        assert!(Vehicle::new(Mode::Car, &"A".repeat(PLATE_MAX), 1).is_ok());
        let plate = Err(MobilityError::InvalidProfile { field: "plate".into() });
        for bad in ["", "   ", "AB_123", "AB.12", "ÄB12", &"A".repeat(PLATE_MAX + 1), "ß"] {
            assert_eq!(Vehicle::new(Mode::Car, bad, 4), plate, "{bad:?}");
        }
    }

    #[test]
    fn seats_fit_the_mode() {
        let none = Err(MobilityError::InvalidProfile { field: "seats".into() });
        let modes = [(Mode::Car, 7), (Mode::EvCar, 7), (Mode::Van, 8), (Mode::Motorbike, 1), (Mode::Bike, 1)];
        for (mode, max) in modes.into_iter().chain([(Mode::Scooter, 1)]) {
            assert!(Vehicle::new(mode, "X1", 1).is_ok(), "{mode}");
            assert!(Vehicle::new(mode, "X1", max).is_ok(), "{mode}");
            assert_eq!(Vehicle::new(mode, "X1", max + 1), Err(MobilityError::TooManySeats { mode, max }), "{mode}");
            assert_eq!(Vehicle::new(mode, "X1", 0), none, "{mode}");
        }
    }

    #[test]
    fn ids_and_availabilities_round_trip_through_their_names() {
        let id = DriverId::generate();
        assert_eq!(DriverId::parse(&id.to_string()), Some(id));
        assert_eq!(DriverId::parse("not-a-uuid"), None);
        for a in [Availability::Offline, Availability::Available, Availability::OnRide] {
            assert_eq!(Availability::parse(a.as_str()), Some(a));
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::Value::from(a.to_string()));
        }
        assert_eq!(Availability::parse("busy"), None);
    }

    #[test]
    fn a_driver_goes_online_and_offline_but_not_on_a_ride_by_hand() {
        let later = now() + TimeDelta::seconds(5);
        let d = driver(Availability::Offline);
        let on = d.set_availability(Availability::Available, later).unwrap();
        assert_eq!((on.availability, on.version, on.updated_at), (Availability::Available, 2, later));
        assert_eq!(on.set_availability(Availability::Available, later).unwrap(), on);
        let off = on.set_availability(Availability::Offline, later).unwrap();
        assert_eq!((off.availability, off.version), (Availability::Offline, 3));
        assert_eq!(on.set_availability(Availability::OnRide, later), Err(MobilityError::DriverBusy));
        assert_eq!(d.set_availability(Availability::OnRide, later), Err(MobilityError::DriverBusy));
    }

    #[test]
    fn a_driver_on_a_ride_keeps_their_availability_and_vehicle() {
        let ride = Uuid::now_v7();
        let busy = driver(Availability::Available).take_ride(ride, now()).unwrap();
        assert_eq!((busy.availability, busy.ride), (Availability::OnRide, Some(ride)));
        for to in [Availability::Offline, Availability::Available, Availability::OnRide] {
            assert_eq!(busy.set_availability(to, now()), Err(MobilityError::DriverBusy));
        }
        let van = Vehicle::new(Mode::Van, "VAN 1", 8).unwrap();
        let wallet = WalletId::generate();
        assert_eq!(busy.change_vehicle(van.clone(), wallet, now()), Err(MobilityError::DriverBusy));
        let free = busy.release_ride(ride, now());
        assert_eq!((free.availability, free.ride, free.version), (Availability::Available, None, busy.version + 1));
        let changed = free.change_vehicle(van.clone(), wallet, now()).unwrap();
        assert_eq!((changed.vehicle, changed.wallet, changed.version), (van, wallet, free.version + 1));
        let unchecked = Vehicle { mode: Mode::Bike, plate: "B1".into(), seats: 2 };
        let refused = free.change_vehicle(unchecked, wallet, now());
        assert_eq!(refused, Err(MobilityError::TooManySeats { mode: Mode::Bike, max: 1 }));
    }

    #[test]
    fn only_an_available_driver_takes_a_ride_and_taking_it_again_changes_nothing() {
        let (ride, other) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(driver(Availability::Offline).take_ride(ride, now()), Err(MobilityError::DriverOffline));
        let busy = driver(Availability::Available).take_ride(ride, now()).unwrap();
        assert_eq!(busy.take_ride(ride, now()), Ok(busy.clone()));
        assert_eq!(busy.take_ride(other, now()), Err(MobilityError::DriverBusy));
        // Releasing another ride leaves the driver on theirs.
        assert_eq!(busy.release_ride(other, now()), busy);
    }

    #[test]
    fn the_average_rating_counts_every_score() {
        let d = driver(Availability::Available);
        assert_eq!(d.average_rating(), None);
        let d = d.rated(5, now()).unwrap().rated(4, now()).unwrap();
        assert_eq!((d.rating_sum, d.rating_count, d.average_rating()), (9, 2, Some(4.5)));
        assert_eq!(d.rated(0, now()), Err(MobilityError::InvalidRating));
        assert_eq!(d.rated(6, now()), Err(MobilityError::InvalidRating));
    }

    #[test]
    fn a_driver_is_fresh_for_thirty_seconds() {
        assert!(fresh(now(), now()));
        assert!(fresh(now() - TimeDelta::milliseconds(29_999), now()));
        assert!(!fresh(now() - TimeDelta::seconds(30), now()));
        assert!(!fresh(now() - TimeDelta::hours(1), now()));
        assert!(fresh(now() + TimeDelta::seconds(2), now()));
    }

    #[test]
    fn the_location_gate_takes_a_burst_of_two_then_one_a_second() {
        let t0 = 1_700_000_000_000;
        let mut gate = LocationGate::default();
        assert_eq!(gate.admit(t0), Ok(()));
        assert_eq!(gate.admit(t0), Ok(()));
        let before = gate;
        assert_eq!(gate.admit(t0), Err(MobilityError::LocationTooFrequent { retry_after_ms: 1_000 }));
        assert_eq!(gate.admit(t0 + 400), Err(MobilityError::LocationTooFrequent { retry_after_ms: 600 }));
        assert_eq!(gate, before, "a refused report leaves the gate as it was");
        assert_eq!(gate.admit(t0 + 1_000), Ok(()));
        assert_eq!(gate.admit(t0 + 1_500), Err(MobilityError::LocationTooFrequent { retry_after_ms: 500 }));
        assert_eq!(gate.admit(t0 + 2_000), Ok(()));
    }

    #[test]
    fn the_location_gate_holds_one_a_second_on_average_and_refills_after_a_pause() {
        let t0 = 1_700_000_000_000;
        let mut gate = LocationGate::default();
        // One report every 100 ms for ten seconds: the burst plus one a second gets through.
        let taken = (0..100).filter(|i| gate.admit(t0 + i * 100).is_ok()).count();
        assert_eq!(taken, 11);
        // After a long pause the burst is available again, and no more.
        let later = t0 + 60_000;
        assert!(gate.admit(later).is_ok());
        assert!(gate.admit(later).is_ok());
        assert!(gate.admit(later).is_err());
    }
}
