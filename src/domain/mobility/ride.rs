//! Rides: the state machine from request to completion, cancellation or expiry, and the outcome
//! of the payment that follows. Every change returns a new ride (version + 1, `updated_at` set,
//! a timeline entry for each change of state); a refusal changes nothing.

use std::{fmt, time::Duration};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{final_fare, split, DriverId, MobilityError, Quote, Tariff};
use crate::domain::fintech::WalletId;

/// Longest cancellation reason, in characters.
pub const REASON_MAX: usize = 500;

/// Note of the timeline entry that puts a ride back to `requested` after its driver cancelled.
pub const DRIVER_CANCELLED: &str = "driver_cancelled";

/// Where a ride stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RideState {
    /// Waiting for a driver to accept.
    Requested,
    /// A driver accepted and is on the way.
    DriverAssigned,
    /// The driver is at the pickup point.
    DriverArriving,
    /// The rider is on board.
    InProgress,
    /// Dropped off; final.
    Completed,
    /// Cancelled by the rider; final.
    Cancelled,
    /// No driver accepted in time; final.
    Expired,
}

impl RideState {
    /// Every state, in the order a ride goes through them.
    pub const ALL: [RideState; 7] = [
        Self::Requested,
        Self::DriverAssigned,
        Self::DriverArriving,
        Self::InProgress,
        Self::Completed,
        Self::Cancelled,
        Self::Expired,
    ];

    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::DriverAssigned => "driver_assigned",
            Self::DriverArriving => "driver_arriving",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether nothing more happens to the ride (ratings and payment aside).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::Expired)
    }

    /// Whether the ride still goes on: its rider may not request another.
    pub fn is_open(self) -> bool {
        !self.is_final()
    }

    /// Whether `action` may be taken in this state. Besides these, assigning the driver already
    /// assigned changes nothing, and a driver cancels only in `driver_assigned` or
    /// `driver_arriving`.
    pub fn allows(self, action: RideAction) -> bool {
        use RideAction::*;
        matches!(
            (self, action),
            (Self::Requested, Assign | Cancel | Expire)
                | (Self::DriverAssigned, Arrive | Cancel)
                | (Self::DriverArriving, Start | Cancel)
                | (Self::InProgress, Complete)
                | (Self::Completed, Rate)
        )
    }
}

impl fmt::Display for RideState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What may be done to a ride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RideAction {
    /// Give it a driver who accepted it.
    Assign,
    /// The driver reached the pickup point.
    Arrive,
    /// The rider got in.
    Start,
    /// The rider got out.
    Complete,
    /// Give it up (rider), or give it back for dispatch (driver).
    Cancel,
    /// No driver accepted in time.
    Expire,
    /// Score the other party.
    Rate,
}

impl RideAction {
    /// Every action.
    pub const ALL: [RideAction; 7] =
        [Self::Assign, Self::Arrive, Self::Start, Self::Complete, Self::Cancel, Self::Expire, Self::Rate];

    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::Arrive => "arrive",
            Self::Start => "start",
            Self::Complete => "complete",
            Self::Cancel => "cancel",
            Self::Expire => "expire",
            Self::Rate => "rate",
        }
    }
}

impl fmt::Display for RideAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who acts on a ride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The rider who requested it.
    Rider,
    /// Its driver.
    Driver,
    /// The service itself (dispatch, expiry).
    System,
}

impl Party {
    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rider => "rider",
            Self::Driver => "driver",
            Self::System => "system",
        }
    }
}

/// One step of a ride's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The state the ride entered.
    pub state: RideState,
    /// When.
    pub at: DateTime<Utc>,
    /// Who moved it there.
    pub by: Party,
    /// Why, when the state alone does not say (e.g. [`DRIVER_CANCELLED`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How a ride was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Who cancelled.
    pub by: Party,
    /// What the rider pays for it, in minor units of the quote's currency (0: free).
    pub fee: i64,
    /// The reason given, if any.
    pub reason: Option<String>,
}

/// Where the money of a ride stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// The quoted fare is held on the rider's wallet.
    Held,
    /// The final fare (or the cancellation fee) was taken.
    Captured,
    /// The hold was given back.
    Released,
    /// Taking or releasing the money failed; `payment_error` says why.
    Failed,
}

impl PaymentState {
    /// Snake-case name, as sent and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Captured => "captured",
            Self::Released => "released",
            Self::Failed => "failed",
        }
    }

    /// Parse a name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Captured, Self::Released, Self::Failed].into_iter().find(|p| p.as_str() == s)
    }
}

/// A ride as stored: `version` counts its changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ride {
    /// Identity.
    pub id: Uuid,
    /// Subject of the rider who requested it.
    pub rider: String,
    /// The rider's wallet the fare is held on.
    pub rider_wallet: WalletId,
    /// The quote it was requested from.
    pub quote: Quote,
    /// Its driver, once one accepted (none again after that driver cancelled).
    pub driver: Option<DriverId>,
    /// Where it stands.
    pub state: RideState,
    /// Every change of state, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Drivers who declined, timed out or cancelled: never offered it again.
    pub declined: Vec<DriverId>,
    /// Length of the actual route in metres, once completed.
    pub distance_m: Option<u64>,
    /// Duration of the actual route in seconds, once completed.
    pub duration_s: Option<u64>,
    /// Final fare in minor units, once completed.
    pub fare: Option<i64>,
    /// The platform's commission on the final fare, once completed.
    pub commission: Option<i64>,
    /// How it was cancelled, when it was.
    pub cancellation: Option<Cancellation>,
    /// Where its money stands.
    pub payment: PaymentState,
    /// Why the payment failed, when it did.
    pub payment_error: Option<String>,
    /// The rider's score of the driver.
    pub rider_rating: Option<u8>,
    /// The driver's score of the rider.
    pub driver_rating: Option<u8>,
    /// Number of changes applied, request included.
    pub version: i64,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
}

/// The rules a cancellation is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancellationPolicy {
    /// A rider cancels for free this long after the request.
    pub grace: Duration,
}

impl Ride {
    /// A new ride in `requested`, from a usable quote, with the quoted fare held and one timeline
    /// entry.
    pub fn request(
        id: Uuid,
        rider: String,
        rider_wallet: WalletId,
        quote: Quote,
        now: DateTime<Utc>,
    ) -> Result<Ride, MobilityError> {
        quote.check_usable(now)?;
        Ok(Ride {
            id,
            rider,
            rider_wallet,
            quote,
            driver: None,
            state: RideState::Requested,
            timeline: vec![TimelineEntry { state: RideState::Requested, at: now, by: Party::Rider, note: None }],
            declined: Vec::new(),
            distance_m: None,
            duration_s: None,
            fare: None,
            commission: None,
            cancellation: None,
            payment: PaymentState::Held,
            payment_error: None,
            rider_rating: None,
            driver_rating: None,
            version: 1,
            requested_at: now,
            updated_at: now,
        })
    }

    fn conflict(&self, action: RideAction) -> MobilityError {
        MobilityError::RideStateConflict { ride: self.id, state: self.state, action }
    }

    fn check(&self, action: RideAction) -> Result<(), MobilityError> {
        if self.state.allows(action) {
            Ok(())
        } else {
            Err(self.conflict(action))
        }
    }

    fn check_driver(&self, by: DriverId) -> Result<(), MobilityError> {
        if self.driver == Some(by) {
            Ok(())
        } else {
            Err(MobilityError::NotAParty(self.id))
        }
    }

    /// A copy one version on.
    fn bumped(&self, now: DateTime<Utc>) -> Ride {
        Ride { version: self.version + 1, updated_at: now, ..self.clone() }
    }

    /// A copy one version on, in `state`, with the timeline entry saying so.
    fn moved(&self, state: RideState, by: Party, note: Option<&str>, now: DateTime<Utc>) -> Ride {
        let mut ride = self.bumped(now);
        ride.state = state;
        ride.timeline.push(TimelineEntry { state, at: now, by, note: note.map(str::to_string) });
        ride
    }

    /// Give the ride to a driver who accepted it: `requested` → `driver_assigned`. A driver who
    /// declined it is refused (`ride_not_offered`); assigning the driver already assigned changes
    /// nothing.
    pub fn assign(&self, driver: DriverId, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        if self.state == RideState::DriverAssigned && self.driver == Some(driver) {
            return Ok(self.clone());
        }
        self.check(RideAction::Assign)?;
        if self.declined.contains(&driver) {
            return Err(MobilityError::NotOffered(self.id));
        }
        let mut ride = self.moved(RideState::DriverAssigned, Party::System, None, now);
        ride.driver = Some(driver);
        Ok(ride)
    }

    /// Record that a driver declined (or let the offer time out): never offered it again. Only a
    /// requested ride is offered (`ride_not_offered` otherwise); declining twice changes nothing.
    pub fn decline(&self, driver: DriverId, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        if self.state != RideState::Requested {
            return Err(MobilityError::NotOffered(self.id));
        }
        if self.declined.contains(&driver) {
            return Ok(self.clone());
        }
        let mut ride = self.bumped(now);
        ride.declined.push(driver);
        Ok(ride)
    }

    /// The driver reached the pickup point: `driver_assigned` → `driver_arriving`.
    pub fn arrive(&self, by: DriverId, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        self.check(RideAction::Arrive)?;
        self.check_driver(by)?;
        Ok(self.moved(RideState::DriverArriving, Party::Driver, None, now))
    }

    /// The rider got in: `driver_arriving` → `in_progress`.
    pub fn start(&self, by: DriverId, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        self.check(RideAction::Start)?;
        self.check_driver(by)?;
        Ok(self.moved(RideState::InProgress, Party::Driver, None, now))
    }

    /// The rider got out after the actual route: `in_progress` → `completed`, with the final fare
    /// ([`final_fare`]) and the platform's commission ([`split`]). The payment stays held until
    /// it is settled.
    #[allow(clippy::too_many_arguments)]
    pub fn complete(
        &self,
        by: DriverId,
        tariff: &Tariff,
        tolerance_pct: u32,
        commission_bps: u32,
        distance_m: u64,
        duration_s: u64,
        now: DateTime<Utc>,
    ) -> Result<Ride, MobilityError> {
        self.check(RideAction::Complete)?;
        self.check_driver(by)?;
        let fare = final_fare(tariff, self.quote.fare, tolerance_pct, distance_m, duration_s);
        let (_, commission) = split(fare, commission_bps);
        let mut ride = self.moved(RideState::Completed, Party::Driver, None, now);
        ride.distance_m = Some(distance_m);
        ride.duration_s = Some(duration_s);
        ride.fare = Some(fare);
        ride.commission = Some(commission);
        Ok(ride)
    }

    /// Rider's cancellation: from requested, driver_assigned or driver_arriving. Free within
    /// `policy.grace` of the request or while no driver is assigned; otherwise the fee is
    /// `min(tariff.cancellation_fee, quote.fare)`. → cancelled. The reason is trimmed (empty is
    /// none) and at most [`REASON_MAX`] characters (`invalid_parameter` naming `reason`).
    pub fn cancel_by_rider(
        &self,
        policy: &CancellationPolicy,
        tariff: &Tariff,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Ride, MobilityError> {
        self.check(RideAction::Cancel)?;
        let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > REASON_MAX) {
            return Err(MobilityError::InvalidProfile { field: "reason".into() });
        }
        // A request time ahead of `now` (clock skew) counts as within the grace period.
        let within_grace = !now.signed_duration_since(self.requested_at).to_std().is_ok_and(|e| e > policy.grace);
        let fee =
            if self.driver.is_none() || within_grace { 0 } else { tariff.cancellation_fee.min(self.quote.fare).max(0) };
        let mut ride = self.moved(RideState::Cancelled, Party::Rider, None, now);
        ride.cancellation = Some(Cancellation { by: Party::Rider, fee, reason });
        Ok(ride)
    }

    /// Driver's cancellation before pickup (driver_assigned or driver_arriving): back to
    /// requested with no driver, the driver added to `declined`, a timeline entry noting it
    /// ([`DRIVER_CANCELLED`]), so the ride is dispatched again.
    pub fn cancel_by_driver(&self, by: DriverId, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        if !matches!(self.state, RideState::DriverAssigned | RideState::DriverArriving) {
            return Err(self.conflict(RideAction::Cancel));
        }
        self.check_driver(by)?;
        let mut ride = self.moved(RideState::Requested, Party::Driver, Some(DRIVER_CANCELLED), now);
        ride.driver = None;
        if !ride.declined.contains(&by) {
            ride.declined.push(by);
        }
        Ok(ride)
    }

    /// No driver accepted in time: `requested` → `expired`.
    pub fn expire(&self, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        self.check(RideAction::Expire)?;
        Ok(self.moved(RideState::Expired, Party::System, None, now))
    }

    /// Whether the ride owes money: completed, or cancelled with a fee.
    fn chargeable(&self) -> bool {
        self.state == RideState::Completed
            || (self.state == RideState::Cancelled && self.cancellation.as_ref().is_some_and(|c| c.fee > 0))
    }

    /// Payment outcome of the saga. `captured` only from a completed ride or a cancelled one with
    /// a fee; `released` from a cancelled or expired ride, or after a failure; `failed` keeps the
    /// reason in `payment_error` (cleared by a later capture). An outcome the ride cannot take,
    /// or the one it has, changes nothing.
    pub fn settle(&self, payment: PaymentState, error: Option<String>, now: DateTime<Utc>) -> Ride {
        use PaymentState::*;
        let given_up = matches!(self.state, RideState::Cancelled | RideState::Expired);
        let allowed = match (self.payment, payment) {
            (Held | Failed, Captured) => self.chargeable(),
            (Held, Released) => given_up,
            (Failed, Released) => true,
            (Held, Failed) => true,
            _ => false,
        };
        if !allowed {
            return self.clone();
        }
        let mut ride = self.bumped(now);
        ride.payment = payment;
        match payment {
            Failed => ride.payment_error = error,
            Captured => ride.payment_error = None,
            Held | Released => {}
        }
        ride
    }

    /// Score the other party once the ride is completed: each party once (`already_rated`), a
    /// whole score from 1 to 5 (`invalid_parameter`). The service itself rates nobody.
    pub fn rate(&self, by: Party, score: u8, now: DateTime<Utc>) -> Result<Ride, MobilityError> {
        self.check(RideAction::Rate)?;
        if !(1..=5).contains(&score) {
            return Err(MobilityError::InvalidRating);
        }
        let mut ride = self.bumped(now);
        let slot = match by {
            Party::Rider => &mut ride.rider_rating,
            Party::Driver => &mut ride.driver_rating,
            Party::System => return Err(MobilityError::NotAParty(self.id)),
        };
        if slot.is_some() {
            return Err(MobilityError::AlreadyRated(self.id));
        }
        *slot = Some(score);
        Ok(ride)
    }

    /// How `subject` (whose driver profile, if any, is `driver`) takes part in the ride: its rider,
    /// its driver, or not at all.
    pub fn party(&self, subject: &str, driver: Option<DriverId>) -> Option<Party> {
        if subject == self.rider {
            Some(Party::Rider)
        } else if driver.is_some() && driver == self.driver {
            Some(Party::Driver)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        fintech::Currency,
        mobility::{Mode, Point},
    };

    /// 2.50 base, 1.20 a km, 0.30 a minute, 5.00 minimum, 3.00 to cancel late.
    const TARIFF: Tariff = Tariff { base: 250, per_km: 120, per_minute: 30, minimum: 500, cancellation_fee: 300 };
    const POLICY: CancellationPolicy = CancellationPolicy { grace: Duration::from_secs(120) };

    /// `s` seconds after the request.
    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn quote(fare: i64) -> Quote {
        Quote {
            id: Uuid::now_v7(),
            pickup: Point { lat: 48.5, lon: 2.25 },
            dropoff: Point { lat: 48.5, lon: 2.3125 },
            mode: Mode::Car,
            distance_m: 5_400,
            duration_s: 780,
            fare,
            currency: Currency::parse("EUR").unwrap(),
            co2e_g: Some(900),
            expires_at: t(300),
            created_at: t(-10),
        }
    }

    fn requested() -> Ride {
        Ride::request(Uuid::now_v7(), "rider-1".into(), WalletId::generate(), quote(1_288), t(0)).unwrap()
    }

    /// A ride brought to `state` by the legal path, and the driver it had on the way.
    fn ride_in(state: RideState) -> (Ride, DriverId) {
        let d = DriverId::generate();
        let r = requested();
        let ride = match state {
            RideState::Requested => r,
            RideState::Expired => r.expire(t(200)).unwrap(),
            RideState::Cancelled => r.assign(d, t(10)).unwrap().cancel_by_rider(&POLICY, &TARIFF, None, t(20)).unwrap(),
            _ => {
                let mut r = r.assign(d, t(10)).unwrap();
                if state != RideState::DriverAssigned {
                    r = r.arrive(d, t(200)).unwrap();
                }
                if matches!(state, RideState::InProgress | RideState::Completed) {
                    r = r.start(d, t(260)).unwrap();
                }
                if state == RideState::Completed {
                    r = r.complete(d, &TARIFF, 20, 2_000, 8_000, 1_200, t(1_500)).unwrap();
                }
                r
            }
        };
        assert_eq!(ride.state, state);
        (ride, d)
    }

    fn states(ride: &Ride) -> Vec<(RideState, Party)> {
        ride.timeline.iter().map(|e| (e.state, e.by)).collect()
    }

    #[test]
    fn a_ride_is_requested_from_a_usable_quote_with_its_fare_held() {
        let r = requested();
        assert_eq!((r.state, r.payment, r.version, r.driver), (RideState::Requested, PaymentState::Held, 1, None));
        assert_eq!(states(&r), [(RideState::Requested, Party::Rider)]);
        let q = quote(1_288);
        let late = Ride::request(Uuid::now_v7(), "rider-1".into(), WalletId::generate(), q.clone(), t(300));
        assert_eq!(late, Err(MobilityError::QuoteExpired(q.id)));
    }

    #[test]
    fn a_ride_goes_from_request_to_completion_with_the_final_fare_and_commission() {
        let (r, d) = ride_in(RideState::Completed);
        use {Party::*, RideState::*};
        let expected = [(Requested, Rider), (DriverAssigned, System), (DriverArriving, Driver), (InProgress, Driver)];
        assert_eq!(states(&r)[..4], expected);
        assert_eq!(states(&r)[4], (Completed, Driver));
        assert_eq!((r.version, r.updated_at, r.driver), (5, t(1_500), Some(d)));
        let at: Vec<_> = r.timeline.iter().map(|e| e.at).collect();
        assert_eq!(at, [t(0), t(10), t(200), t(260), t(1_500)]);
        // Quoted 12.88, the route cost 18.10: capped at 12.88 × 1.2 = 15.456 → 15.45; 20 % of it.
        assert_eq!((r.fare, r.commission), (Some(1_545), Some(309)));
        assert_eq!((r.distance_m, r.duration_s), (Some(8_000), Some(1_200)));
        assert_eq!(r.payment, PaymentState::Held, "captured later, by the saga");
    }

    #[test]
    fn assigning_the_same_driver_again_changes_nothing_and_another_is_refused() {
        let (r, d) = ride_in(RideState::DriverAssigned);
        assert_eq!(r.assign(d, t(50)), Ok(r.clone()));
        let other = DriverId::generate();
        let conflict = MobilityError::RideStateConflict { ride: r.id, state: r.state, action: RideAction::Assign };
        assert_eq!(r.assign(other, t(50)), Err(conflict));
    }

    #[test]
    fn every_action_a_state_does_not_allow_is_a_conflict_naming_that_state() {
        let mut refused = 0;
        for state in RideState::ALL {
            for action in RideAction::ALL {
                let (ride, d) = ride_in(state);
                // A driver other than the assigned one is still refused by state first.
                let result = match action {
                    RideAction::Assign => ride.assign(DriverId::generate(), t(400)),
                    RideAction::Arrive => ride.arrive(d, t(400)),
                    RideAction::Start => ride.start(d, t(400)),
                    RideAction::Complete => ride.complete(d, &TARIFF, 20, 2_000, 1, 1, t(400)),
                    RideAction::Cancel => ride.cancel_by_rider(&POLICY, &TARIFF, None, t(400)),
                    RideAction::Expire => ride.expire(t(400)),
                    RideAction::Rate => ride.rate(Party::Rider, 5, t(400)),
                };
                if state.allows(action) {
                    let next = result.unwrap_or_else(|e| panic!("{state} + {action}: {e}"));
                    assert_eq!(next.version, ride.version + 1, "{state} + {action}");
                    continue;
                }
                refused += 1;
                let conflict = MobilityError::RideStateConflict { ride: ride.id, state, action };
                assert_eq!(result, Err(conflict.clone()), "{state} + {action}");
                assert!(conflict.to_string().contains(&format!(" is {state}: cannot {action}")));
                // A driver cancels only before pickup.
                if !matches!(state, RideState::DriverAssigned | RideState::DriverArriving) {
                    let by_driver = ride.cancel_by_driver(d, t(400));
                    let cancel = MobilityError::RideStateConflict { ride: ride.id, state, action: RideAction::Cancel };
                    assert_eq!(by_driver, Err(cancel), "driver cancelling in {state}");
                }
            }
        }
        assert_eq!(refused, 7 * 7 - 9);
    }

    #[test]
    fn only_the_ride_s_driver_moves_it_along() {
        let stranger = DriverId::generate();
        let (assigned, _) = ride_in(RideState::DriverAssigned);
        assert_eq!(assigned.arrive(stranger, t(50)), Err(MobilityError::NotAParty(assigned.id)));
        assert_eq!(assigned.cancel_by_driver(stranger, t(50)), Err(MobilityError::NotAParty(assigned.id)));
        let (arriving, _) = ride_in(RideState::DriverArriving);
        assert_eq!(arriving.start(stranger, t(250)), Err(MobilityError::NotAParty(arriving.id)));
        let (riding, _) = ride_in(RideState::InProgress);
        let done = riding.complete(stranger, &TARIFF, 20, 2_000, 1, 1, t(900));
        assert_eq!(done, Err(MobilityError::NotAParty(riding.id)));
    }

    #[test]
    fn a_rider_cancelling_before_a_driver_is_assigned_pays_nothing_even_late() {
        let r = requested().cancel_by_rider(&POLICY, &TARIFF, None, t(290)).unwrap();
        assert_eq!(r.cancellation, Some(Cancellation { by: Party::Rider, fee: 0, reason: None }));
        assert_eq!((r.state, r.version), (RideState::Cancelled, 2));
        assert_eq!(states(&r).last(), Some(&(RideState::Cancelled, Party::Rider)));
    }

    #[test]
    fn a_rider_cancelling_within_the_grace_period_pays_nothing() {
        let (r, _) = ride_in(RideState::DriverAssigned);
        for at in [t(30), t(120)] {
            let c = r.cancel_by_rider(&POLICY, &TARIFF, Some("  changed my mind ".into()), at).unwrap();
            let reason = Some("changed my mind".to_string());
            assert_eq!(c.cancellation, Some(Cancellation { by: Party::Rider, fee: 0, reason }));
        }
    }

    #[test]
    fn a_rider_cancelling_after_the_grace_period_pays_the_fee() {
        let (r, _) = ride_in(RideState::DriverArriving);
        let c = r.cancel_by_rider(&POLICY, &TARIFF, Some("   ".into()), t(121)).unwrap();
        assert_eq!(c.cancellation, Some(Cancellation { by: Party::Rider, fee: 300, reason: None }));
        // Never more than the quoted fare.
        let cheap = Ride { quote: quote(180), ..r };
        let c = cheap.cancel_by_rider(&POLICY, &TARIFF, None, t(600)).unwrap();
        assert_eq!(c.cancellation.map(|c| c.fee), Some(180));
    }

    #[test]
    fn an_overlong_cancellation_reason_is_refused() {
        let r = requested();
        let long = "x".repeat(REASON_MAX + 1);
        let refused = r.cancel_by_rider(&POLICY, &TARIFF, Some(long), t(5));
        assert_eq!(refused, Err(MobilityError::InvalidProfile { field: "reason".into() }));
        assert!(r.cancel_by_rider(&POLICY, &TARIFF, Some("é".repeat(REASON_MAX)), t(5)).is_ok());
    }

    #[test]
    fn a_driver_cancelling_before_pickup_puts_the_ride_back_for_dispatch() {
        for state in [RideState::DriverAssigned, RideState::DriverArriving] {
            let (r, d) = ride_in(state);
            let back = r.cancel_by_driver(d, t(230)).unwrap();
            assert_eq!((back.state, back.driver, back.version), (RideState::Requested, None, r.version + 1));
            assert_eq!(back.declined, [d]);
            let last = back.timeline.last().unwrap();
            assert_eq!(
                (last.state, last.by, last.note.as_deref()),
                (RideState::Requested, Party::Driver, Some(DRIVER_CANCELLED))
            );
            assert_eq!(back.cancellation, None);
            // Never offered to that driver again; another driver takes it.
            assert_eq!(back.assign(d, t(240)), Err(MobilityError::NotOffered(r.id)));
            let other = DriverId::generate();
            assert_eq!(back.assign(other, t(240)).unwrap().driver, Some(other));
            assert_eq!(back.party("someone", Some(d)), None, "no longer a party");
        }
    }

    #[test]
    fn a_declining_driver_is_never_offered_the_ride_again() {
        let (r, d) = (requested(), DriverId::generate());
        let declined = r.decline(d, t(5)).unwrap();
        assert_eq!((declined.declined.clone(), declined.version, declined.state), (vec![d], 2, RideState::Requested));
        assert_eq!(declined.timeline, r.timeline, "no change of state");
        assert_eq!(declined.decline(d, t(6)), Ok(declined.clone()));
        assert_eq!(declined.assign(d, t(7)), Err(MobilityError::NotOffered(r.id)));
        let (assigned, other) = ride_in(RideState::DriverAssigned);
        assert_eq!(assigned.decline(other, t(50)), Err(MobilityError::NotOffered(assigned.id)));
    }

    #[test]
    fn each_party_rates_a_completed_ride_once_from_one_to_five() {
        let (r, _) = ride_in(RideState::Completed);
        let rated = r.rate(Party::Rider, 4, t(1_600)).unwrap();
        assert_eq!((rated.rider_rating, rated.driver_rating, rated.version), (Some(4), None, r.version + 1));
        assert_eq!(rated.rate(Party::Rider, 5, t(1_601)), Err(MobilityError::AlreadyRated(r.id)));
        let both = rated.rate(Party::Driver, 5, t(1_602)).unwrap();
        assert_eq!((both.rider_rating, both.driver_rating), (Some(4), Some(5)));
        assert_eq!(both.timeline, r.timeline, "no change of state");
        for bad in [0, 6, 255] {
            assert_eq!(r.rate(Party::Driver, bad, t(1_600)), Err(MobilityError::InvalidRating));
        }
        assert_eq!(r.rate(Party::System, 3, t(1_600)), Err(MobilityError::NotAParty(r.id)));
        let (riding, _) = ride_in(RideState::InProgress);
        let early = MobilityError::RideStateConflict {
            ride: riding.id,
            state: RideState::InProgress,
            action: RideAction::Rate,
        };
        assert_eq!(riding.rate(Party::Rider, 5, t(900)), Err(early));
    }

    #[test]
    fn money_is_captured_only_when_owed_and_released_otherwise() {
        use PaymentState::*;
        let (done, _) = ride_in(RideState::Completed);
        let captured = done.settle(Captured, None, t(1_600));
        assert_eq!((captured.payment, captured.version), (Captured, done.version + 1));
        assert_eq!(captured.settle(Released, None, t(1_601)), captured, "final");
        assert_eq!(done.settle(Released, None, t(1_600)), done, "a completed ride owes its fare");
        // Cancelled for free: released, never captured. With a fee: captured.
        let (free, _) = ride_in(RideState::Cancelled);
        assert_eq!(free.settle(Captured, None, t(30)), free);
        assert_eq!(free.settle(Released, None, t(30)).payment, Released);
        let (arriving, _) = ride_in(RideState::DriverArriving);
        let paid = arriving.cancel_by_rider(&POLICY, &TARIFF, None, t(300)).unwrap();
        assert_eq!(paid.settle(Captured, None, t(301)).payment, Captured);
        let (expired, _) = ride_in(RideState::Expired);
        assert_eq!(expired.settle(Released, None, t(201)).payment, Released);
        // An open ride keeps its money held.
        let (open, _) = ride_in(RideState::InProgress);
        assert_eq!(open.settle(Captured, None, t(900)), open);
        assert_eq!(open.settle(Released, None, t(900)), open);
    }

    #[test]
    fn a_failed_payment_keeps_its_reason_until_settled_otherwise() {
        use PaymentState::*;
        let (done, _) = ride_in(RideState::Completed);
        let failed = done.settle(Failed, Some("ledger_unavailable".into()), t(1_600));
        assert_eq!((failed.payment, failed.payment_error.as_deref()), (Failed, Some("ledger_unavailable")));
        assert_eq!(failed.settle(Failed, Some("again".into()), t(1_601)), failed);
        let retried = failed.settle(Captured, None, t(1_700));
        assert_eq!((retried.payment, retried.payment_error), (Captured, None));
        let released = failed.settle(Released, None, t(1_700));
        assert_eq!((released.payment, released.payment_error.as_deref()), (Released, Some("ledger_unavailable")));
    }

    #[test]
    fn the_rider_and_the_driver_are_parties_and_nobody_else() {
        let (r, d) = ride_in(RideState::InProgress);
        assert_eq!(r.party("rider-1", None), Some(Party::Rider));
        assert_eq!(r.party("rider-1", Some(DriverId::generate())), Some(Party::Rider));
        assert_eq!(r.party("driver-subject", Some(d)), Some(Party::Driver));
        assert_eq!(r.party("driver-subject", Some(DriverId::generate())), None);
        assert_eq!(r.party("someone", None), None);
        assert_eq!(requested().party("someone", None), None, "no driver yet: nobody matches it");
    }

    #[test]
    fn states_and_actions_round_trip_through_their_names() {
        for state in RideState::ALL {
            assert_eq!(RideState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::Value::from(state.to_string()));
            assert_eq!(state.is_open(), !state.is_final());
        }
        let finals: Vec<_> = RideState::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [RideState::Completed, RideState::Cancelled, RideState::Expired]);
        assert_eq!(RideState::parse("done"), None);
        for action in RideAction::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), serde_json::Value::from(action.as_str()));
        }
        for p in [PaymentState::Held, PaymentState::Captured, PaymentState::Released, PaymentState::Failed] {
            assert_eq!(PaymentState::parse(p.as_str()), Some(p));
        }
    }

    #[test]
    fn a_ride_survives_a_round_trip_through_json() {
        let (r, d) = ride_in(RideState::DriverAssigned);
        let r = r.cancel_by_driver(d, t(60)).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["timeline"][0].get("note"), None, "no note, no member");
        assert_eq!(json["timeline"][2]["note"], DRIVER_CANCELLED);
        assert_eq!(serde_json::from_value::<Ride>(json).unwrap(), r);
    }
}
