//! Mobility's events, published through the outbox to `beryl.mobility.events`: a driver's
//! availability changes (keyed by driver), and the ride's (keyed by ride). No event carries a
//! coordinate, a plate or a subject in the clear.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{Availability, Driver, Mode};
use crate::domain::events::{DomainEvent, SCHEMA_VERSION};

/// The domain, and so the topic, of mobility's events.
pub const DOMAIN: &str = "mobility";

/// `mobility.driver.status_changed`.
pub const DRIVER_STATUS_CHANGED: &str = "mobility.driver.status_changed";

/// The body of `mobility.driver.status_changed`.
#[derive(Debug, Clone, Serialize)]
struct StatusChanged {
    driver: Uuid,
    mode: Mode,
    from: Availability,
    to: Availability,
    #[serde(skip_serializing_if = "Option::is_none")]
    ride: Option<Uuid>,
}

/// The event of `driver`'s availability changing from `from` (its new state, at its version).
pub fn driver_status_changed(
    driver: &Driver,
    from: Availability,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let data = StatusChanged {
        driver: driver.id.0,
        mode: driver.vehicle.mode,
        from,
        to: driver.availability,
        ride: driver.ride,
    };
    DomainEvent {
        id: Uuid::now_v7(),
        event_type: DRIVER_STATUS_CHANGED.to_owned(),
        schema_version: SCHEMA_VERSION,
        domain: DOMAIN.to_owned(),
        aggregate_id: driver.id.to_string(),
        seq: driver.version,
        request_id,
        occurred_at: at,
        data: serde_json::to_value(data).unwrap_or_else(|_| json!({})),
    }
}

/// `mobility.ride.requested`.
pub const RIDE_REQUESTED: &str = "mobility.ride.requested";
/// `mobility.ride.assigned`.
pub const RIDE_ASSIGNED: &str = "mobility.ride.assigned";
/// `mobility.ride.started`.
pub const RIDE_STARTED: &str = "mobility.ride.started";
/// `mobility.ride.completed`.
pub const RIDE_COMPLETED: &str = "mobility.ride.completed";
/// `mobility.ride.cancelled`.
pub const RIDE_CANCELLED: &str = "mobility.ride.cancelled";
/// `mobility.ride.expired`.
pub const RIDE_EXPIRED: &str = "mobility.ride.expired";

/// The event a ride's new state publishes, if any: its type. `before` is the state it was in
/// (none for a new ride); a ride a driver gave back is requested again.
pub fn ride_event_type(ride: &super::Ride, before: Option<super::RideState>) -> Option<&'static str> {
    use super::RideState::*;
    if Some(ride.state) == before {
        return None;
    }
    Some(match ride.state {
        Requested => RIDE_REQUESTED,
        DriverAssigned => RIDE_ASSIGNED,
        DriverArriving => return None,
        InProgress => RIDE_STARTED,
        Completed => RIDE_COMPLETED,
        Cancelled => RIDE_CANCELLED,
        Expired => RIDE_EXPIRED,
    })
}

/// The body of a ride event: what other domains use (ESG credits a completed trip, social may
/// post it). The rider is named sealed under their own key, so the event is unreadable once they
/// are erased; no coordinate is published.
#[derive(Debug, Clone, Serialize)]
struct RideData<'a> {
    ride: Uuid,
    #[serde(skip_serializing_if = "str::is_empty")]
    rider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver: Option<Uuid>,
    state: super::RideState,
    mode: Mode,
    currency: &'a str,
    quoted_fare: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    fare: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    co2e_g: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancelled_by: Option<super::Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fee: Option<i64>,
}

/// The CO2e of a completed ride: the quote's estimate scaled to the distance actually driven.
pub fn ride_co2e_g(ride: &super::Ride) -> Option<u64> {
    let quoted = ride.quote.co2e_g?;
    match (ride.distance_m, ride.quote.distance_m) {
        (Some(actual), planned) if planned > 0 => {
            Some(((quoted as f64) * (actual as f64) / (planned as f64)).round() as u64)
        }
        _ => Some(quoted),
    }
}

/// The event of type `event_type` for `ride` (at its version); `rider_sealed` is the rider's
/// subject sealed under their key.
pub fn ride_event(event_type: &str, ride: &super::Ride, rider_sealed: &str, request_id: Option<String>) -> DomainEvent {
    let completed = ride.state == super::RideState::Completed;
    let data = RideData {
        ride: ride.id,
        rider: rider_sealed,
        driver: ride.driver.map(|d| d.0),
        state: ride.state,
        mode: ride.quote.mode,
        currency: ride.quote.currency.code(),
        quoted_fare: ride.quote.fare,
        fare: ride.fare,
        distance_m: ride.distance_m,
        duration_s: ride.duration_s,
        co2e_g: if completed { ride_co2e_g(ride) } else { None },
        cancelled_by: ride.cancellation.as_ref().map(|c| c.by),
        fee: ride.cancellation.as_ref().map(|c| c.fee),
    };
    DomainEvent {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: SCHEMA_VERSION,
        domain: DOMAIN.to_owned(),
        aggregate_id: ride.id.to_string(),
        seq: ride.version,
        request_id,
        occurred_at: ride.updated_at,
        data: serde_json::to_value(data).unwrap_or_else(|_| json!({})),
    }
}
