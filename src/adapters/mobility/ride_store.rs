//! Rides as the domain sees them, stored as rows: the ride whole as JSON without its personal
//! fields (who asked, and where from and to), those sealed under the rider's key.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{
    rides::{Inserted, KeyRow, Offer, RideRow, RideWrite, Written},
    DriverRow, MobilityStore, StoreError,
};
use crate::domain::{
    events::DomainEvent,
    mobility::{Driver, DriverId, PaymentState, Point, Ride},
    privacy::{BlindIndex, Personal, Place},
};

const RIDER: &str = "mobility_rides.rider";
const POINTS: &str = "mobility_rides.points";

/// A ride as read back: erased once its rider's personal data was erased (`rider` is then empty
/// and the points are not known), or with its points gone once past their retention.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRide {
    /// The ride.
    pub ride: Ride,
    /// Whether the rider was erased.
    pub erased: bool,
    /// Whether the pickup and dropoff are known (erased or past their retention otherwise).
    pub points: bool,
}

/// The row of a driver after `driver` (its new state) changed from `row` (as stored).
pub fn driver_row(row: &DriverRow, driver: &Driver) -> DriverRow {
    DriverRow {
        availability: driver.availability.as_str().to_owned(),
        ride_id: driver.ride,
        rating_sum: driver.rating_sum,
        rating_count: driver.rating_count,
        version: driver.version,
        updated_at: driver.updated_at,
        ..row.clone()
    }
}

fn points_text(ride: &Ride) -> String {
    let (p, d) = (ride.quote.pickup, ride.quote.dropoff);
    format!("{},{};{},{}", p.lat, p.lon, d.lat, d.lon)
}

fn points_of(text: &str) -> Option<(Point, Point)> {
    let (p, d) = text.split_once(';')?;
    let point = |s: &str| {
        let (lat, lon) = s.split_once(',')?;
        Point::new(lat.parse().ok()?, lon.parse().ok()?, "point").ok()
    };
    Some((point(p)?, point(d)?))
}

/// The ride's JSON without its personal fields.
fn body_of(ride: &Ride) -> Result<Value, StoreError> {
    let mut body = serde_json::to_value(ride).map_err(|_| StoreError::Corrupt("ride"))?;
    if let Some(object) = body.as_object_mut() {
        object.remove("rider");
        if let Some(quote) = object.get_mut("quote").and_then(Value::as_object_mut) {
            quote.remove("pickup");
            quote.remove("dropoff");
        }
    }
    Ok(body)
}

impl MobilityStore {
    /// The row of `ride`, its rider and points sealed under the rider's key.
    /// An erased rider (read back empty) seals nothing: the write keeps the stored fields
    /// cleared.
    pub async fn ride_row(&self, ride: &Ride) -> Result<RideRow, StoreError> {
        let id = ride.id.to_string();
        let (rider, points) = if ride.rider.is_empty() {
            (None, None)
        } else {
            let rider = self.vault.seal(&ride.rider, Place::new(RIDER, &id), &ride.rider).await?;
            let points = self.vault.seal(&ride.rider, Place::new(POINTS, &id), &points_text(ride)).await?;
            (Some(rider.to_text()), Some(points.to_text()))
        };
        Ok(RideRow {
            id: ride.id,
            rider_index: self.index(&ride.rider),
            rider_sealed: rider,
            points_sealed: points,
            quote_id: ride.quote.id,
            driver_id: ride.driver.map(|d| d.0),
            state: ride.state.as_str().to_owned(),
            mode: ride.quote.mode.as_str().to_owned(),
            payment: ride.payment.as_str().to_owned(),
            saga_open: saga_open(ride),
            body: body_of(ride)?,
            version: ride.version,
            requested_at: ride.requested_at,
            updated_at: ride.updated_at,
        })
    }

    /// The ride of a row, its personal fields opened.
    pub async fn ride_of_row(&self, row: &RideRow) -> Result<StoredRide, StoreError> {
        let id = row.id.to_string();
        let mut body = row.body.clone();
        let rider = match &row.rider_sealed {
            Some(sealed) => self.vault.open_text(sealed, Place::new(RIDER, &id)).await?,
            None => Personal::Erased,
        };
        let points = match &row.points_sealed {
            Some(sealed) => match self.vault.open_text(sealed, Place::new(POINTS, &id)).await? {
                Personal::Value(text) => points_of(&text),
                Personal::Erased => None,
            },
            None => None,
        };
        let (pickup, dropoff) = points.unwrap_or((Point { lat: 0.0, lon: 0.0 }, Point { lat: 0.0, lon: 0.0 }));
        if let Some(object) = body.as_object_mut() {
            object.insert("rider".into(), Value::from(rider.value().cloned().unwrap_or_default()));
            if let Some(quote) = object.get_mut("quote").and_then(Value::as_object_mut) {
                quote.insert("pickup".into(), serde_json::to_value(pickup).unwrap_or(Value::Null));
                quote.insert("dropoff".into(), serde_json::to_value(dropoff).unwrap_or(Value::Null));
            }
        }
        let ride: Ride = serde_json::from_value(body).map_err(|_| StoreError::Corrupt("ride"))?;
        Ok(StoredRide { ride, erased: rider.is_erased(), points: points.is_some() })
    }

    /// The ride `id`.
    pub async fn ride(&self, id: Uuid) -> Result<Option<StoredRide>, StoreError> {
        match self.rows.ride(id).await? {
            Some(row) => Ok(Some(self.ride_of_row(&row).await?)),
            None => Ok(None),
        }
    }

    /// Keep a new ride, with its idempotency key and events.
    pub async fn insert_ride(
        &self,
        ride: &Ride,
        key: Option<&KeyRow>,
        events: &[DomainEvent],
    ) -> Result<Inserted, StoreError> {
        let row = self.ride_row(ride).await?;
        self.rows.insert_ride(&row, key, events).await
    }

    /// Write `ride`'s new state with what changes with it.
    pub async fn write_ride(
        &self,
        ride: &Ride,
        driver: Option<&DriverRow>,
        offer_answer: Option<(Uuid, &str)>,
        key: Option<&KeyRow>,
        events: &[DomainEvent],
    ) -> Result<Written, StoreError> {
        let row = self.ride_row(ride).await?;
        self.rows.write_ride(RideWrite { ride: &row, driver, offer_answer, key, events }).await
    }

    /// A driver's stored row.
    pub async fn driver_row(&self, id: DriverId) -> Result<Option<DriverRow>, StoreError> {
        Ok(self.rows.drivers(&[id.0]).await?.into_iter().next())
    }

    /// The rides of a list, opened.
    pub async fn rides_of_rows(&self, rows: &[RideRow]) -> Result<Vec<StoredRide>, StoreError> {
        let mut rides = Vec::with_capacity(rows.len());
        for row in rows {
            rides.push(self.ride_of_row(row).await?);
        }
        Ok(rides)
    }

    /// A page of the rides of the rider `rider`, newest first, before `before`.
    pub async fn rides_of_rider(
        &self,
        rider: &BlindIndex,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<StoredRide>, StoreError> {
        let rows = self.rows.rides_of_rider(rider, before, limit).await?;
        self.rides_of_rows(&rows).await
    }

    /// A page of the rides `driver` took or was offered, newest first, before `before`.
    pub async fn rides_of_driver(
        &self,
        driver: DriverId,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<StoredRide>, StoreError> {
        let rows = self.rows.rides_of_driver(driver.0, before, limit).await?;
        self.rides_of_rows(&rows).await
    }

    /// The pending offer of `ride`.
    pub async fn pending_offer(&self, ride: Uuid) -> Result<Option<Offer>, StoreError> {
        self.rows.pending_offer_of_ride(ride).await
    }
}

/// Whether a payment step is due: the ride is over and its hold neither captured nor released,
/// or a failed step left the hold to release.
pub fn saga_open(ride: &Ride) -> bool {
    match ride.payment {
        PaymentState::Held => ride.state.is_final(),
        PaymentState::Failed => true,
        PaymentState::Captured | PaymentState::Released => false,
    }
}
