//! What mobility holds about a data subject, for the privacy module: their driver profile (the
//! plate sealed; on erasure the profile loses its owner and plate and leaves the geo index), the
//! quotes they asked for (their coordinates sealed; removed on erasure, and once past the
//! retention period of ride coordinates), their rides (the rider and the coordinates sealed; on
//! erasure both become unreadable while the ride stays for its driver and the ledger, and the
//! coordinates go once past their retention) and the live driver actor's state (dropped on
//! erasure).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use super::MobilityClient;
use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::mobility::{GeoIndex, MobilityStore},
    domain::{
        mobility::{DriverId, PAGE_MAX},
        privacy::{Category, Subject},
    },
};

/// Name of mobility's part of an export.
pub const NAME: &str = "mobility";

/// Mobility as a holder of personal data.
#[derive(Clone)]
pub struct MobilityHolder {
    store: MobilityStore,
    geo: GeoIndex,
    client: MobilityClient,
}

impl MobilityHolder {
    /// The holder over `store` and `geo`, whose live actors `client` reaches.
    pub fn new(store: MobilityStore, geo: GeoIndex, client: MobilityClient) -> Self {
        Self { store, geo, client }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

impl Holder for MobilityHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let holder = self.clone();
        async move {
            let driver = holder.store.driver_of(&subject.id).await.map_err(failed)?.map(|d| {
                json!({
                    "id": d.id,
                    "mode": d.vehicle.mode,
                    "plate": d.vehicle.plate,
                    "seats": d.vehicle.seats,
                    "wallet": d.wallet,
                    "availability": d.availability,
                    "created_at": d.created_at,
                })
            });
            let quotes = holder.store.quotes_of(&subject.index).await.map_err(failed)?;
            let mut rides = Vec::new();
            let mut before = None;
            loop {
                let page = holder.store.rides_of_rider(&subject.index, before, PAGE_MAX).await.map_err(failed)?;
                let last = page.last().map(|r| (r.ride.requested_at, r.ride.id));
                rides.extend(page.iter().map(|r| {
                    let mut ride = serde_json::to_value(&r.ride).unwrap_or(Value::Null);
                    if !r.points {
                        if let Some(quote) = ride.get_mut("quote").and_then(Value::as_object_mut) {
                            quote.insert("pickup".into(), Value::Null);
                            quote.insert("dropoff".into(), Value::Null);
                        }
                    }
                    ride
                }));
                match last {
                    Some(last) if page.len() == PAGE_MAX => before = Some(last),
                    _ => break,
                }
            }
            Ok(json!({ "driver": driver, "quotes": quotes, "rides": rides }))
        }
        .boxed_local()
    }

    /// Quotes (with their coordinates) older than the retention period of ride coordinates.
    fn expire(
        &self,
        category: Category,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> LocalBoxFuture<'static, Result<u64, HolderError>> {
        let store = self.store.clone();
        async move {
            if category != Category::RideCoordinates {
                return Ok(0);
            }
            let quotes = store.expire_quotes(cutoff, batch).await.map_err(failed)?;
            let rides = store.rows().expire_points(cutoff, batch).await.map_err(failed)?;
            Ok(quotes + rides)
        }
        .boxed_local()
    }

    fn erase(&self, subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        let holder = self.clone();
        async move {
            let rows = holder.store.rows();
            if let Some(row) = rows.driver_by_owner(&subject.index).await.map_err(failed)? {
                holder.geo.remove(DriverId(row.id)).await.map_err(failed)?;
            }
            let drivers = rows.erase_driver(&subject.index).await.map_err(failed)?;
            let quotes = rows.delete_quotes_of(&subject.index).await.map_err(failed)?;
            let rides = rows.erase_rides(&subject.index).await.map_err(failed)?;
            holder.client.forget_driver(&subject.id).await.map_err(failed)?;
            Ok(BTreeMap::from([
                ("drivers".to_owned(), drivers),
                ("quotes".to_owned(), quotes),
                ("rides".to_owned(), rides),
            ]))
        }
        .boxed_local()
    }
}
