//! Mobility's rows as stored, personal fields already sealed: on PostgreSQL, or in process memory
//! in the embedded mode. Both give the same answers (one contract suite in `tests/api`).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{rides::RideMemory, StoreError};
use crate::{
    adapters::{
        outbox::{self, MemOutbox},
        postgres::{PgPool, PgTransaction},
    },
    domain::{events::DomainEvent, privacy::BlindIndex},
};

/// A driver's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverRow {
    /// Id.
    pub id: Uuid,
    /// The owner's blind index; `None` once erased.
    pub owner_index: Option<BlindIndex>,
    /// The owner, sealed; `None` once erased.
    pub owner_sealed: Option<String>,
    /// Vehicle mode.
    pub mode: String,
    /// The plate, sealed; `None` once erased.
    pub plate_sealed: Option<String>,
    /// Seats.
    pub seats: i16,
    /// The wallet credited with the driver's share.
    pub wallet_id: Uuid,
    /// `offline`, `available` or `on_ride`.
    pub availability: String,
    /// The ride held.
    pub ride_id: Option<Uuid>,
    /// Sum of the ratings received.
    pub rating_sum: i64,
    /// Number of ratings received.
    pub rating_count: i64,
    /// Version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A quote's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteRow {
    /// Id.
    pub id: Uuid,
    /// The rider's blind index.
    pub rider_index: BlindIndex,
    /// Pickup, sealed.
    pub pickup_sealed: String,
    /// Dropoff, sealed.
    pub dropoff_sealed: String,
    /// Mode.
    pub mode: String,
    /// Metres.
    pub distance_m: i64,
    /// Seconds.
    pub duration_s: i64,
    /// Minor units.
    pub fare: i64,
    /// Currency code.
    pub currency: String,
    /// Grams CO2e, when estimated.
    pub co2e_g: Option<i64>,
    /// Where the route came from (`provider`, `cache`, `simulator`, `fallback`).
    pub route_source: String,
    /// Usable until.
    pub expires_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A driver's new state, written if the row is still at the version before it and no other
/// driver holds its ride.
const UPDATE_DRIVER: &str = "UPDATE mobility_drivers SET mode = $2, plate_sealed = $3, seats = $4, wallet_id = $5,
        availability = $6, ride_id = $7, rating_sum = $8, rating_count = $9, version = $10, updated_at = $11
     WHERE id = $1 AND version = $10::bigint - 1
       AND NOT EXISTS (SELECT 1 FROM mobility_drivers o WHERE o.ride_id = $7 AND o.id <> $1)";

/// Write `row` in `tx` ([`UPDATE_DRIVER`]): how many rows changed (0 or 1).
pub(super) async fn write_driver(tx: &PgTransaction<'_>, row: &DriverRow) -> Result<u64, tokio_postgres::Error> {
    tx.execute(
        UPDATE_DRIVER,
        &[
            &row.id,
            &row.mode,
            &row.plate_sealed,
            &row.seats,
            &row.wallet_id,
            &row.availability,
            &row.ride_id,
            &row.rating_sum,
            &row.rating_count,
            &row.version,
            &row.updated_at,
        ],
    )
    .await
}

/// The embedded store's contents.
#[derive(Default)]
pub struct Memory {
    pub(super) drivers: HashMap<Uuid, DriverRow>,
    /// The driver of each owner, as PostgreSQL's unique index on `owner_index` finds it.
    by_owner: HashMap<BlindIndex, Uuid>,
    quotes: HashMap<Uuid, QuoteRow>,
    pub(super) rides: RideMemory,
}

/// Either store, chosen at start-up.
#[derive(Clone)]
pub enum Rows {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Process memory: nothing survives the process. Events go to the in-process outbox.
    Memory(Arc<Mutex<Memory>>, MemOutbox),
}

const DRIVER_COLUMNS: &str = "id, owner_index, owner_sealed, mode, plate_sealed, seats, wallet_id, availability, \
                              ride_id, rating_sum, rating_count, version, created_at, updated_at";

const QUOTE_COLUMNS: &str = "id, rider_index, pickup_sealed, dropoff_sealed, mode, distance_m, duration_s, fare, \
                             currency, co2e_g, route_source, expires_at, created_at";

fn index_of(bytes: Option<Vec<u8>>) -> Result<Option<BlindIndex>, StoreError> {
    bytes.map(|b| BlindIndex::from_slice(&b).ok_or(StoreError::Corrupt("blind index"))).transpose()
}

fn driver_from(row: &Row) -> Result<DriverRow, StoreError> {
    Ok(DriverRow {
        id: row.try_get(0)?,
        owner_index: index_of(row.try_get(1)?)?,
        owner_sealed: row.try_get(2)?,
        mode: row.try_get(3)?,
        plate_sealed: row.try_get(4)?,
        seats: row.try_get(5)?,
        wallet_id: row.try_get(6)?,
        availability: row.try_get(7)?,
        ride_id: row.try_get(8)?,
        rating_sum: row.try_get(9)?,
        rating_count: row.try_get(10)?,
        version: row.try_get(11)?,
        created_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
    })
}

fn quote_from(row: &Row) -> Result<QuoteRow, StoreError> {
    let rider: Vec<u8> = row.try_get(1)?;
    Ok(QuoteRow {
        id: row.try_get(0)?,
        rider_index: BlindIndex::from_slice(&rider).ok_or(StoreError::Corrupt("blind index"))?,
        pickup_sealed: row.try_get(2)?,
        dropoff_sealed: row.try_get(3)?,
        mode: row.try_get(4)?,
        distance_m: row.try_get(5)?,
        duration_s: row.try_get(6)?,
        fare: row.try_get(7)?,
        currency: row.try_get::<_, String>(8)?.trim_end().to_owned(),
        co2e_g: row.try_get(9)?,
        route_source: row.try_get(10)?,
        expires_at: row.try_get(11)?,
        created_at: row.try_get(12)?,
    })
}

impl Rows {
    /// A store in process memory, writing its events to `outbox`.
    pub fn memory(outbox: MemOutbox) -> Self {
        Self::Memory(Arc::default(), outbox)
    }

    /// The driver owned by `owner`, if any.
    pub async fn driver_by_owner(&self, owner: &BlindIndex) -> Result<Option<DriverRow>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let m = m.lock();
                Ok(m.by_owner.get(owner).and_then(|id| m.drivers.get(id)).cloned())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {DRIVER_COLUMNS} FROM mobility_drivers WHERE owner_index = $1");
                conn.query_opt(&sql, &[&owner.as_bytes()]).await?.as_ref().map(driver_from).transpose()
            }
        }
    }

    /// The drivers `ids` that exist, in no particular order.
    pub async fn drivers(&self, ids: &[Uuid]) -> Result<Vec<DriverRow>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let m = m.lock();
                Ok(ids.iter().filter_map(|id| m.drivers.get(id).cloned()).collect())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {DRIVER_COLUMNS} FROM mobility_drivers WHERE id = ANY($1)");
                conn.query(&sql, &[&ids]).await?.iter().map(driver_from).collect()
            }
        }
    }

    /// Keep a new driver; `false` (nothing kept) when its owner already has one.
    pub async fn insert_driver(&self, row: &DriverRow) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut m = m.lock();
                if row.owner_index.is_some_and(|owner| m.by_owner.contains_key(&owner)) {
                    return Ok(false);
                }
                if let Some(owner) = row.owner_index {
                    m.by_owner.insert(owner, row.id);
                }
                m.drivers.insert(row.id, row.clone());
                Ok(true)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!(
                    "INSERT INTO mobility_drivers ({DRIVER_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                     ON CONFLICT (owner_index) DO NOTHING"
                );
                let owner = row.owner_index.as_ref().map(|i| i.as_bytes().to_vec());
                let n = conn
                    .execute(
                        &sql,
                        &[
                            &row.id,
                            &owner,
                            &row.owner_sealed,
                            &row.mode,
                            &row.plate_sealed,
                            &row.seats,
                            &row.wallet_id,
                            &row.availability,
                            &row.ride_id,
                            &row.rating_sum,
                            &row.rating_count,
                            &row.version,
                            &row.created_at,
                            &row.updated_at,
                        ],
                    )
                    .await?;
                Ok(n == 1)
            }
        }
    }

    /// Write a driver's new state if it is still at `row.version - 1`, with `events` in the
    /// outbox in the same transaction; `false` (nothing written) when another change came first
    /// or the ride it takes is held by another driver.
    pub async fn update_driver(&self, row: &DriverRow, events: &[DomainEvent]) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m, out) => {
                let mut m = m.lock();
                let taken = row.ride_id.is_some()
                    && m.drivers.values().any(|d| d.id != row.id && d.ride_id.is_some() && d.ride_id == row.ride_id);
                match m.drivers.get_mut(&row.id) {
                    Some(d) if d.version == row.version - 1 && !taken => {
                        *d = row.clone();
                        if !events.is_empty() {
                            out.append(row.updated_at, events.to_vec());
                        }
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Self::Postgres(pool) => {
                let mut conn = pool.get().await?;
                let tx = conn.transaction().await?;
                let n = write_driver(&tx, row).await;
                let n = match n {
                    Ok(n) => n,
                    // Another driver took the ride between the check and the write.
                    Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                if n != 1 {
                    return Ok(false);
                }
                if !events.is_empty() {
                    let (bytes, count) = outbox::encode(events, 512).map_err(|_| StoreError::Corrupt("event"))?;
                    let count = i32::try_from(count).unwrap_or(i32::MAX);
                    tx.execute(outbox::sql::INSERT, &[&row.updated_at, &count, &bytes]).await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        }
    }

    /// How many drivers there are of each (mode, availability).
    pub async fn driver_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut counts: HashMap<(String, String), i64> = HashMap::new();
                for d in m.lock().drivers.values() {
                    *counts.entry((d.mode.clone(), d.availability.clone())).or_default() += 1;
                }
                Ok(counts.into_iter().map(|((mode, a), n)| (mode, a, n)).collect())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query("SELECT mode, availability, count(*) FROM mobility_drivers GROUP BY mode, availability", &[])
                    .await?;
                rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
            }
        }
    }

    /// Forget who owns the driver profile of `owner` and its plate; returns how many.
    pub async fn erase_driver(&self, owner: &BlindIndex) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut m = m.lock();
                let Some(id) = m.by_owner.remove(owner) else { return Ok(0) };
                let Some(d) = m.drivers.get_mut(&id) else { return Ok(0) };
                d.owner_index = None;
                d.owner_sealed = None;
                d.plate_sealed = None;
                if d.ride_id.is_none() {
                    d.availability = "offline".into();
                }
                Ok(1)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                Ok(conn
                    .execute(
                        "UPDATE mobility_drivers SET owner_index = NULL, owner_sealed = NULL, plate_sealed = NULL,
                             availability = CASE WHEN ride_id IS NULL THEN 'offline' ELSE availability END
                         WHERE owner_index = $1",
                        &[&owner.as_bytes()],
                    )
                    .await?)
            }
        }
    }

    /// Keep a quote.
    pub async fn insert_quote(&self, row: &QuoteRow) -> Result<(), StoreError> {
        match self {
            Self::Memory(m, _) => {
                m.lock().quotes.insert(row.id, row.clone());
                Ok(())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!(
                    "INSERT INTO mobility_quotes ({QUOTE_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                );
                conn.execute(
                    &sql,
                    &[
                        &row.id,
                        &row.rider_index.as_bytes(),
                        &row.pickup_sealed,
                        &row.dropoff_sealed,
                        &row.mode,
                        &row.distance_m,
                        &row.duration_s,
                        &row.fare,
                        &row.currency,
                        &row.co2e_g,
                        &row.route_source,
                        &row.expires_at,
                        &row.created_at,
                    ],
                )
                .await?;
                Ok(())
            }
        }
    }

    /// The quote `id`, if kept.
    pub async fn quote(&self, id: Uuid) -> Result<Option<QuoteRow>, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(m.lock().quotes.get(&id).cloned()),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {QUOTE_COLUMNS} FROM mobility_quotes WHERE id = $1");
                conn.query_opt(&sql, &[&id]).await?.as_ref().map(quote_from).transpose()
            }
        }
    }

    /// The quotes of `rider`, oldest first.
    pub async fn quotes_of(&self, rider: &BlindIndex) -> Result<Vec<QuoteRow>, StoreError> {
        let mut found = match self {
            Self::Memory(m, _) => m.lock().quotes.values().filter(|q| q.rider_index == *rider).cloned().collect(),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {QUOTE_COLUMNS} FROM mobility_quotes WHERE rider_index = $1");
                conn.query(&sql, &[&rider.as_bytes()]).await?.iter().map(quote_from).collect::<Result<Vec<_>, _>>()?
            }
        };
        found.sort_by_key(|q: &QuoteRow| (q.created_at, q.id));
        Ok(found)
    }

    /// Delete the quotes of `rider`; returns how many.
    pub async fn delete_quotes_of(&self, rider: &BlindIndex) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut m = m.lock();
                let before = m.quotes.len();
                m.quotes.retain(|_, q| q.rider_index != *rider);
                Ok((before - m.quotes.len()) as u64)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                Ok(conn.execute("DELETE FROM mobility_quotes WHERE rider_index = $1", &[&rider.as_bytes()]).await?)
            }
        }
    }

    /// Delete at most `batch` quotes made before `cutoff`, oldest first; returns how many.
    pub async fn delete_quotes_before(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut m = m.lock();
                let mut old: Vec<(DateTime<Utc>, Uuid)> =
                    m.quotes.values().filter(|q| q.created_at < cutoff).map(|q| (q.created_at, q.id)).collect();
                old.sort();
                old.truncate(batch);
                for (_, id) in &old {
                    m.quotes.remove(id);
                }
                Ok(old.len() as u64)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let limit = i64::try_from(batch).unwrap_or(i64::MAX);
                Ok(conn
                    .execute(
                        "DELETE FROM mobility_quotes WHERE id IN
                           (SELECT id FROM mobility_quotes WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                        &[&cutoff, &limit],
                    )
                    .await?)
            }
        }
    }
}
