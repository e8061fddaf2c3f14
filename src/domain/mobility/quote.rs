//! Quotes: the priced offer of a trip a rider may turn into a ride until it expires.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MobilityError, Mode, Point};
use crate::domain::fintech::Currency;

/// A priced trip, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    /// Identity.
    pub id: Uuid,
    /// Where the rider is picked up.
    pub pickup: Point,
    /// Where the rider is dropped off.
    pub dropoff: Point,
    /// The mode of transport.
    pub mode: Mode,
    /// Length of the planned route, in metres.
    pub distance_m: u64,
    /// Duration of the planned route, in seconds.
    pub duration_s: u64,
    /// Fare of the planned route, in minor units of `currency`: held when the ride is requested.
    pub fare: i64,
    /// Currency of the fare (the rider's wallet's).
    pub currency: Currency,
    /// Estimated emissions of the trip in grams of CO₂ equivalent, when known.
    pub co2e_g: Option<u64>,
    /// From then on, no ride may be requested from it.
    pub expires_at: DateTime<Utc>,
    /// When it was priced.
    pub created_at: DateTime<Utc>,
}

impl Quote {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Whether a ride may be requested from it at `now`: `quote_expired` once `expires_at` has
    /// come.
    pub fn check_usable(&self, now: DateTime<Utc>) -> Result<(), MobilityError> {
        if self.expired(now) {
            Err(MobilityError::QuoteExpired(self.id))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn quote(expires_at: DateTime<Utc>) -> Quote {
        Quote {
            id: Uuid::now_v7(),
            // Binary fractions, so that the JSON round trip is exact.
            pickup: Point::new(48.5, 2.25, "pickup").unwrap(),
            dropoff: Point::new(48.515625, 2.3125, "dropoff").unwrap(),
            mode: Mode::EvCar,
            distance_m: 1_400,
            duration_s: 420,
            fare: 640,
            currency: Currency::parse("EUR").unwrap(),
            co2e_g: Some(0),
            expires_at,
            created_at: expires_at - TimeDelta::minutes(5),
        }
    }

    #[test]
    fn a_quote_is_usable_until_it_expires() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let q = quote(at);
        assert_eq!(q.check_usable(at - TimeDelta::milliseconds(1)), Ok(()));
        assert_eq!(q.check_usable(at), Err(MobilityError::QuoteExpired(q.id)));
        assert_eq!(q.check_usable(at + TimeDelta::hours(1)), Err(MobilityError::QuoteExpired(q.id)));
    }

    #[test]
    fn a_quote_survives_a_round_trip_through_json() {
        let q = quote(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["mode"], "ev_car");
        assert_eq!(json["currency"], "EUR");
        assert_eq!(serde_json::from_value::<Quote>(json).unwrap(), q);
    }
}
