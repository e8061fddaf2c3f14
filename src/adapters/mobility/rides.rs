//! Rides as stored: each ride whole as JSON beside the columns PostgreSQL guards (a quote pays for
//! one ride, a rider has one open ride, a driver holds one ride), the offers dispatch makes to
//! drivers, and the idempotency keys of ride actions, kept in the transaction of the change they
//! made. On PostgreSQL or in process memory; both give the same answers (one contract suite in
//! `tests/api`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, SubsecRound, Utc};
use tokio_postgres::{error::SqlState, types::ToSql, Row};
use uuid::Uuid;

use super::{DriverRow, Rows, StoreError};
use crate::{
    adapters::{
        outbox,
        postgres::{PgPool, PgTransaction},
    },
    domain::{events::DomainEvent, privacy::BlindIndex},
};

/// A ride's row: the ride as JSON without its personal fields, and the columns PostgreSQL guards.
#[derive(Debug, Clone, PartialEq)]
pub struct RideRow {
    /// Id.
    pub id: Uuid,
    /// The rider's blind index.
    pub rider_index: BlindIndex,
    /// The rider, sealed; `None` once erased.
    pub rider_sealed: Option<String>,
    /// Pickup and dropoff, sealed; `None` once erased or past retention.
    pub points_sealed: Option<String>,
    /// The quote that pays for it: one ride per quote.
    pub quote_id: Uuid,
    /// The driver assigned, if any.
    pub driver_id: Option<Uuid>,
    /// `requested`, `driver_assigned`, `driver_arriving`, `in_progress`, `completed`, `cancelled`
    /// or `expired`.
    pub state: String,
    /// Vehicle mode.
    pub mode: String,
    /// `held`, `captured`, `released` or `failed`.
    pub payment: String,
    /// Whether a step of its payment is still to be finished (found again after a restart).
    pub saga_open: bool,
    /// The ride as JSON, without its personal fields.
    pub body: serde_json::Value,
    /// Version.
    pub version: i64,
    /// When it was requested.
    pub requested_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// An idempotency key of a ride action, kept with the change it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The caller's blind index.
    pub scope: BlindIndex,
    /// The key the caller sent.
    pub key: String,
    /// Fingerprint of the request it came with.
    pub fingerprint: String,
    /// The ride the action changed.
    pub ride_id: Uuid,
    /// The ride's version the action produced.
    pub version: i64,
    /// Kept until.
    pub expires_at: DateTime<Utc>,
}

/// An offer of a ride to a driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The ride offered.
    pub ride_id: Uuid,
    /// The driver it is offered to.
    pub driver_id: Uuid,
    /// When it was offered.
    pub offered_at: DateTime<Utc>,
    /// When it lapses unanswered.
    pub expires_at: DateTime<Utc>,
    /// `accepted`, `declined`, `timed_out` or `withdrawn`; `None` while pending.
    pub answer: Option<String>,
}

/// What inserting a new ride did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The ride is kept, with its key and events.
    Inserted,
    /// Its quote (or its id) already belongs to a ride; nothing was written.
    QuoteUsed,
    /// The rider already has an open ride; nothing was written.
    RideOpen,
    /// The idempotency key was kept before, with this; nothing was written.
    KeyTaken(KeyRow),
}

/// A change of one ride, written in one transaction, or not at all.
#[derive(Debug, Clone, Copy)]
pub struct RideWrite<'a> {
    /// The ride's new state, written only if the stored version is `ride.version - 1`.
    pub ride: &'a RideRow,
    /// A driver's new state, written only if its stored version is `driver.version - 1` and no
    /// other driver holds the ride it takes.
    pub driver: Option<&'a DriverRow>,
    /// (driver, answer): close this ride's pending offer to that driver; the write is stale if
    /// that offer is not pending.
    pub offer_answer: Option<(Uuid, &'a str)>,
    /// The idempotency key claimed with the change.
    pub key: Option<&'a KeyRow>,
    /// The change's events, kept in the outbox with it.
    pub events: &'a [DomainEvent],
}

/// What a ride write did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Everything was written.
    Written,
    /// The ride or the driver changed first, another ride or driver holds what it takes, or the
    /// offer it closes is not pending; nothing was written.
    Stale,
    /// The idempotency key was kept before, with this; nothing was written.
    KeyTaken(KeyRow),
}

/// The rides, offers and keys of the embedded store.
#[derive(Default)]
pub(super) struct RideMemory {
    all: HashMap<Uuid, RideRow>,
    offers: HashMap<(Uuid, Uuid), Offer>,
    keys: HashMap<(BlindIndex, String), KeyRow>,
}

const STATES: [&str; 7] =
    ["requested", "driver_assigned", "driver_arriving", "in_progress", "completed", "cancelled", "expired"];
/// A rider has at most one ride in these states.
const OPEN: [&str; 4] = ["requested", "driver_assigned", "driver_arriving", "in_progress"];
/// A driver holds at most one ride in these states.
const HELD: [&str; 3] = ["driver_assigned", "driver_arriving", "in_progress"];
const PAYMENTS: [&str; 4] = ["held", "captured", "released", "failed"];
const ANSWERS: [&str; 4] = ["accepted", "declined", "timed_out", "withdrawn"];
const DRIVER_MODES: [&str; 6] = ["car", "ev_car", "motorbike", "bike", "scooter", "van"];
const AVAILABILITIES: [&str; 3] = ["offline", "available", "on_ride"];

const RIDE_COLUMNS: &str = "id, rider_index, rider_sealed, points_sealed, quote_id, driver_id, state, mode, payment, \
                            saga_open, body, version, requested_at, updated_at";
const OFFER_COLUMNS: &str = "ride_id, driver_id, offered_at, expires_at, answer";
const KEY_COLUMNS: &str = "scope, key, fingerprint, ride_id, version, expires_at";

/// The statements the ride writes run.
mod sql {
    /// A new ride.
    pub const INSERT_RIDE: &str = "INSERT INTO mobility_rides (id, rider_index, rider_sealed, points_sealed, quote_id,
            driver_id, state, mode, payment, saga_open, body, version, requested_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
    /// A ride's new state, if still at the version before it.
    /// Who asked stays as stored, and a personal field cleared (erased, or past its retention)
    /// stays cleared: a write never brings one back.
    pub const UPDATE_RIDE: &str = "UPDATE mobility_rides SET
            rider_sealed = CASE WHEN rider_sealed IS NULL THEN NULL ELSE $3 END,
            points_sealed = CASE WHEN points_sealed IS NULL THEN NULL ELSE $4 END,
            quote_id = $5, driver_id = $6, state = $7, mode = $8, payment = $9, saga_open = $10, body = $11,
            version = $12, requested_at = $13, updated_at = $14
         WHERE id = $1 AND version = $12::bigint - 1 AND $2::bytea IS NOT NULL";
    /// Claim a key unless it is kept and not yet expired at $7.
    pub const CLAIM_KEY: &str = "INSERT INTO mobility_keys (scope, key, fingerprint, ride_id, version, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, ride_id = EXCLUDED.ride_id,
            version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
         WHERE mobility_keys.expires_at <= $7";
    /// Answer a pending offer.
    pub const CLOSE_OFFER: &str =
        "UPDATE mobility_offers SET answer = $3 WHERE ride_id = $1 AND driver_id = $2 AND answer IS NULL";
}

/// A uniqueness rule a ride would break, in the order PostgreSQL checks them.
enum Clash {
    Quote,
    Rider,
    Driver,
}

/// Timestamps as PostgreSQL keeps them (microseconds), so both stores compare alike.
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn is_open(r: &RideRow) -> bool {
    OPEN.contains(&r.state.as_str())
}

fn holds_driver(r: &RideRow) -> bool {
    r.driver_id.is_some() && HELD.contains(&r.state.as_str())
}

/// The table's checks, made before either store is touched so both refuse alike.
fn check_ride(r: &RideRow) -> Result<(), StoreError> {
    let valid = STATES.contains(&r.state.as_str()) && PAYMENTS.contains(&r.payment.as_str()) && r.version > 0;
    if valid {
        Ok(())
    } else {
        Err(StoreError::Corrupt("ride"))
    }
}

/// The drivers table's checks, as for the ride.
fn check_driver(d: &DriverRow) -> Result<(), StoreError> {
    let valid = d.version > 0
        && DRIVER_MODES.contains(&d.mode.as_str())
        && AVAILABILITIES.contains(&d.availability.as_str())
        && (d.availability == "on_ride") == d.ride_id.is_some()
        && (1..=8).contains(&d.seats)
        && d.rating_sum >= 0
        && d.rating_count >= 0;
    if valid {
        Ok(())
    } else {
        Err(StoreError::Corrupt("driver"))
    }
}

fn check_answer(answer: Option<&str>) -> Result<(), StoreError> {
    match answer {
        Some(a) if !ANSWERS.contains(&a) => Err(StoreError::Corrupt("offer answer")),
        _ => Ok(()),
    }
}

/// A new ride may not already hold a driver another ride holds.
fn driver_held() -> StoreError {
    StoreError::Corrupt("ride driver")
}

fn unique_violated(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    if *db.code() == SqlState::UNIQUE_VIOLATION {
        Some(db.constraint().unwrap_or_default())
    } else {
        None
    }
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn index_from(bytes: &[u8]) -> Result<BlindIndex, StoreError> {
    BlindIndex::from_slice(bytes).ok_or(StoreError::Corrupt("blind index"))
}

fn ride_from(row: &Row) -> Result<RideRow, StoreError> {
    Ok(RideRow {
        id: row.try_get(0)?,
        rider_index: index_from(row.try_get(1)?)?,
        rider_sealed: row.try_get(2)?,
        points_sealed: row.try_get(3)?,
        quote_id: row.try_get(4)?,
        driver_id: row.try_get(5)?,
        state: row.try_get(6)?,
        mode: row.try_get(7)?,
        payment: row.try_get(8)?,
        saga_open: row.try_get(9)?,
        body: row.try_get(10)?,
        version: row.try_get(11)?,
        requested_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
    })
}

fn offer_from(row: &Row) -> Result<Offer, StoreError> {
    Ok(Offer {
        ride_id: row.try_get(0)?,
        driver_id: row.try_get(1)?,
        offered_at: row.try_get(2)?,
        expires_at: row.try_get(3)?,
        answer: row.try_get(4)?,
    })
}

fn key_from(row: &Row) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        scope: index_from(row.try_get(0)?)?,
        key: row.try_get(1)?,
        fingerprint: row.try_get(2)?,
        ride_id: row.try_get(3)?,
        version: row.try_get(4)?,
        expires_at: row.try_get(5)?,
    })
}

async fn execute_ride(tx: &PgTransaction<'_>, statement: &str, r: &RideRow) -> Result<u64, tokio_postgres::Error> {
    let rider = r.rider_index.as_bytes();
    tx.execute(
        statement,
        &[
            &r.id,
            &rider,
            &r.rider_sealed,
            &r.points_sealed,
            &r.quote_id,
            &r.driver_id,
            &r.state,
            &r.mode,
            &r.payment,
            &r.saga_open,
            &r.body,
            &r.version,
            &r.requested_at,
            &r.updated_at,
        ],
    )
    .await
}

/// Claim `k` in `tx`; the kept key when it is taken (and not expired at `now`).
async fn claim_key(tx: &PgTransaction<'_>, k: &KeyRow, now: DateTime<Utc>) -> Result<Option<KeyRow>, StoreError> {
    let scope = k.scope.as_bytes();
    let n = tx
        .execute(sql::CLAIM_KEY, &[&scope, &k.key, &k.fingerprint, &k.ride_id, &k.version, &k.expires_at, &now])
        .await?;
    if n == 1 {
        return Ok(None);
    }
    let sql = format!("SELECT {KEY_COLUMNS} FROM mobility_keys WHERE scope = $1 AND key = $2");
    Ok(Some(key_from(&tx.query_one(&sql, &[&scope, &k.key]).await?)?))
}

async fn append_events(tx: &PgTransaction<'_>, at: DateTime<Utc>, events: &[DomainEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (bytes, count) = outbox::encode(events, 512).map_err(|_| StoreError::Corrupt("event"))?;
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    tx.execute(outbox::sql::INSERT, &[&at, &count, &bytes]).await?;
    Ok(())
}

/// The rides matching `filter` (on $1), newest first, strictly before `before`.
async fn page(
    pool: &PgPool,
    filter: &str,
    first: &(dyn ToSql + Sync),
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<RideRow>, StoreError> {
    let conn = pool.get().await?;
    let limit = limit_of(limit);
    let rows = match before {
        None => {
            let sql = format!(
                "SELECT {RIDE_COLUMNS} FROM mobility_rides WHERE {filter}
                 ORDER BY requested_at DESC, id DESC LIMIT $2"
            );
            conn.query(&sql, &[first, &limit]).await?
        }
        Some((at, id)) => {
            let sql = format!(
                "SELECT {RIDE_COLUMNS} FROM mobility_rides WHERE {filter} AND (requested_at, id) < ($3, $4)
                 ORDER BY requested_at DESC, id DESC LIMIT $2"
            );
            conn.query(&sql, &[first, &limit, &at, &id]).await?
        }
    };
    rows.iter().map(ride_from).collect()
}

async fn select_rides(pool: &PgPool, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<RideRow>, StoreError> {
    let conn = pool.get().await?;
    conn.query(sql, params).await?.iter().map(ride_from).collect()
}

async fn select_offer(pool: &PgPool, filter: &str, id: Uuid) -> Result<Option<Offer>, StoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {OFFER_COLUMNS} FROM mobility_offers WHERE {filter} AND answer IS NULL");
    conn.query_opt(&sql, &[&id]).await?.as_ref().map(offer_from).transpose()
}

impl RideMemory {
    /// The key `k` names, if kept and not expired at `now`.
    fn live_key(&self, scope: &BlindIndex, key: &str, now: DateTime<Utc>) -> Option<KeyRow> {
        self.keys.get(&(*scope, key.to_owned())).filter(|k| k.expires_at > now).cloned()
    }

    fn keep_key(&mut self, k: &KeyRow) {
        let kept = KeyRow { expires_at: micros(k.expires_at), ..k.clone() };
        self.keys.insert((k.scope, k.key.clone()), kept);
    }

    fn keep_ride(&mut self, r: &RideRow) {
        let kept = RideRow { requested_at: micros(r.requested_at), updated_at: micros(r.updated_at), ..r.clone() };
        self.all.insert(r.id, kept);
    }

    /// The first uniqueness rule `r` breaks against the other rides (all of them when inserted,
    /// all but its stored self when replacing it).
    fn clash(&self, r: &RideRow, replacing: bool) -> Option<Clash> {
        let others = || self.all.values().filter(move |o| !(replacing && o.id == r.id));
        if others().any(|o| o.id == r.id || o.quote_id == r.quote_id) {
            Some(Clash::Quote)
        } else if is_open(r) && others().any(|o| is_open(o) && o.rider_index == r.rider_index) {
            Some(Clash::Rider)
        } else if holds_driver(r) && others().any(|o| holds_driver(o) && o.driver_id == r.driver_id) {
            Some(Clash::Driver)
        } else {
            None
        }
    }

    fn pending(&self, pick: impl Fn(&Offer) -> bool) -> Option<Offer> {
        self.offers.values().find(|o| o.answer.is_none() && pick(o)).cloned()
    }
}

/// The rides of `rides`, newest first, strictly before `before`, at most `limit`.
fn page_of<'a>(
    rides: impl Iterator<Item = &'a RideRow>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Vec<RideRow> {
    let before = before.map(|(at, id)| (micros(at), id));
    let mut found: Vec<RideRow> =
        rides.filter(|r| before.is_none_or(|b| (r.requested_at, r.id) < b)).cloned().collect();
    found.sort_by_key(|r| std::cmp::Reverse((r.requested_at, r.id)));
    found.truncate(limit);
    found
}

/// The first `limit` of `rides` in ascending order of `key`.
fn oldest<'a, K: Ord>(
    rides: impl Iterator<Item = &'a RideRow>,
    key: impl Fn(&RideRow) -> K,
    limit: usize,
) -> Vec<RideRow> {
    let mut found: Vec<RideRow> = rides.cloned().collect();
    found.sort_by_key(key);
    found.truncate(limit);
    found
}

impl Rows {
    /// Keep a new ride with its idempotency key and events, all in one transaction or nothing.
    pub async fn insert_ride(
        &self,
        ride: &RideRow,
        key: Option<&KeyRow>,
        events: &[DomainEvent],
    ) -> Result<Inserted, StoreError> {
        check_ride(ride)?;
        let now = micros(Utc::now());
        match self {
            Self::Memory(m, out) => {
                let mut guard = m.lock();
                let m = &mut guard.rides;
                if let Some(kept) = key.and_then(|k| m.live_key(&k.scope, &k.key, now)) {
                    return Ok(Inserted::KeyTaken(kept));
                }
                match m.clash(ride, false) {
                    Some(Clash::Quote) => return Ok(Inserted::QuoteUsed),
                    Some(Clash::Rider) => return Ok(Inserted::RideOpen),
                    Some(Clash::Driver) => return Err(driver_held()),
                    None => {}
                }
                if let Some(k) = key {
                    m.keep_key(k);
                }
                m.keep_ride(ride);
                out.append(micros(ride.updated_at), events.to_vec());
                Ok(Inserted::Inserted)
            }
            Self::Postgres(pool) => {
                let mut conn = pool.get().await?;
                let tx = conn.transaction().await?;
                if let Some(k) = key {
                    if let Some(kept) = claim_key(&tx, k, now).await? {
                        return Ok(Inserted::KeyTaken(kept));
                    }
                }
                if let Err(e) = execute_ride(&tx, sql::INSERT_RIDE, ride).await {
                    // Dropping the transaction rolls the key back with it.
                    return match unique_violated(&e) {
                        Some("mobility_rides_pkey" | "mobility_rides_quote_id_key") => Ok(Inserted::QuoteUsed),
                        Some("mobility_rides_one_open_per_rider") => Ok(Inserted::RideOpen),
                        Some("mobility_rides_one_per_driver") => Err(driver_held()),
                        _ => Err(e.into()),
                    };
                }
                append_events(&tx, ride.updated_at, events).await?;
                tx.commit().await?;
                Ok(Inserted::Inserted)
            }
        }
    }

    /// The ride `id`, if kept.
    pub async fn ride(&self, id: Uuid) -> Result<Option<RideRow>, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(m.lock().rides.all.get(&id).cloned()),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!("SELECT {RIDE_COLUMNS} FROM mobility_rides WHERE id = $1");
                conn.query_opt(&sql, &[&id]).await?.as_ref().map(ride_from).transpose()
            }
        }
    }

    /// Write a change of one ride (and of the driver it concerns, the offer it closes, the key it
    /// claims and its events) in one transaction, or nothing.
    pub async fn write_ride(&self, w: RideWrite<'_>) -> Result<Written, StoreError> {
        check_ride(w.ride)?;
        check_answer(w.offer_answer.map(|(_, a)| a))?;
        w.driver.map(check_driver).transpose()?;
        let now = micros(Utc::now());
        match self {
            Self::Memory(m, out) => {
                let mut guard = m.lock();
                let m = &mut *guard;
                if let Some(kept) = w.key.and_then(|k| m.rides.live_key(&k.scope, &k.key, now)) {
                    return Ok(Written::KeyTaken(kept));
                }
                let ride_moved = m.rides.all.get(&w.ride.id).is_none_or(|r| r.version != w.ride.version - 1);
                // Who asked stays as stored, and a cleared personal field stays cleared.
                let merged = match m.rides.all.get(&w.ride.id) {
                    Some(stored) => RideRow {
                        rider_index: stored.rider_index,
                        rider_sealed: stored.rider_sealed.as_ref().and(w.ride.rider_sealed.clone()),
                        points_sealed: stored.points_sealed.as_ref().and(w.ride.points_sealed.clone()),
                        ..w.ride.clone()
                    },
                    None => w.ride.clone(),
                };
                let driver_moved = w.driver.is_some_and(|d| {
                    let taken =
                        d.ride_id.is_some() && m.drivers.values().any(|o| o.id != d.id && o.ride_id == d.ride_id);
                    taken || m.drivers.get(&d.id).is_none_or(|s| s.version != d.version - 1)
                });
                let offer_closed = w.offer_answer.is_some_and(|(driver, _)| {
                    m.rides.offers.get(&(w.ride.id, driver)).is_none_or(|o| o.answer.is_some())
                });
                if ride_moved || driver_moved || offer_closed || m.rides.clash(&merged, true).is_some() {
                    return Ok(Written::Stale);
                }
                if let Some(k) = w.key {
                    m.rides.keep_key(k);
                }
                m.rides.keep_ride(&merged);
                if let Some(d) = w.driver {
                    if let Some(s) = m.drivers.get_mut(&d.id) {
                        // The columns the driver's own writes change; who owns it stays.
                        *s = DriverRow {
                            owner_index: s.owner_index,
                            owner_sealed: s.owner_sealed.clone(),
                            created_at: s.created_at,
                            updated_at: micros(d.updated_at),
                            ..d.clone()
                        };
                    }
                }
                if let Some((driver, answer)) = w.offer_answer {
                    if let Some(o) = m.rides.offers.get_mut(&(w.ride.id, driver)) {
                        o.answer = Some(answer.to_owned());
                    }
                }
                out.append(micros(w.ride.updated_at), w.events.to_vec());
                Ok(Written::Written)
            }
            Self::Postgres(pool) => {
                let mut conn = pool.get().await?;
                let tx = conn.transaction().await?;
                if let Some(k) = w.key {
                    if let Some(kept) = claim_key(&tx, k, now).await? {
                        return Ok(Written::KeyTaken(kept));
                    }
                }
                // Every early return drops the transaction, which rolls back what it wrote.
                match execute_ride(&tx, sql::UPDATE_RIDE, w.ride).await {
                    Ok(1) => {}
                    Ok(_) => return Ok(Written::Stale),
                    Err(e) if unique_violated(&e).is_some() => return Ok(Written::Stale),
                    Err(e) => return Err(e.into()),
                }
                if let Some(d) = w.driver {
                    let n = super::rows::write_driver(&tx, d).await;
                    match n {
                        Ok(1) => {}
                        Ok(_) => return Ok(Written::Stale),
                        // Another driver took the ride between the check and the write.
                        Err(e) if unique_violated(&e).is_some() => return Ok(Written::Stale),
                        Err(e) => return Err(e.into()),
                    }
                }
                if let Some((driver, answer)) = w.offer_answer {
                    if tx.execute(sql::CLOSE_OFFER, &[&w.ride.id, &driver, &answer]).await? != 1 {
                        return Ok(Written::Stale);
                    }
                }
                append_events(&tx, w.ride.updated_at, w.events).await?;
                tx.commit().await?;
                Ok(Written::Written)
            }
        }
    }

    /// The rides of `rider`, newest first (by request time, then id), strictly before `before`.
    pub async fn rides_of_rider(
        &self,
        rider: &BlindIndex,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<RideRow>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                Ok(page_of(m.lock().rides.all.values().filter(|r| r.rider_index == *rider), before, limit))
            }
            Self::Postgres(pool) => page(pool, "rider_index = $1", &rider.as_bytes(), before, limit).await,
        }
    }

    /// The rides `driver` was assigned or ever offered, newest first (by request time, then id),
    /// strictly before `before`.
    pub async fn rides_of_driver(
        &self,
        driver: Uuid,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<RideRow>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let m = m.lock();
                let theirs = m
                    .rides
                    .all
                    .values()
                    .filter(|r| r.driver_id == Some(driver) || m.rides.offers.contains_key(&(r.id, driver)));
                Ok(page_of(theirs, before, limit))
            }
            Self::Postgres(pool) => {
                let filter = "(driver_id = $1 OR id IN (SELECT ride_id FROM mobility_offers WHERE driver_id = $1))";
                page(pool, filter, &driver, before, limit).await
            }
        }
    }

    /// Keep the offer `o` (pending unless answered); `false` (nothing kept) when its ride or its
    /// driver already has a pending offer, or the ride was offered to the driver before.
    pub async fn offer(&self, o: &Offer) -> Result<bool, StoreError> {
        check_answer(o.answer.as_deref())?;
        match self {
            Self::Memory(m, _) => {
                let mut guard = m.lock();
                let available = guard.drivers.get(&o.driver_id).is_some_and(|d| d.availability == "available");
                let m = &mut guard.rides;
                let busy = o.answer.is_none()
                    && (!available || m.pending(|p| p.ride_id == o.ride_id || p.driver_id == o.driver_id).is_some());
                if busy || m.offers.contains_key(&(o.ride_id, o.driver_id)) {
                    return Ok(false);
                }
                let kept = Offer { offered_at: micros(o.offered_at), expires_at: micros(o.expires_at), ..o.clone() };
                m.offers.insert((o.ride_id, o.driver_id), kept);
                Ok(true)
            }
            Self::Postgres(pool) => {
                let mut conn = pool.get().await?;
                let tx = conn.transaction().await?;
                if o.answer.is_none() {
                    // The driver's row is locked, so that an acceptance of another ride (which
                    // writes it) either went first, and the driver is seen on that ride, or waits
                    // for this offer; a second pending offer to the same driver is refused by the
                    // unique index meanwhile.
                    let row = tx
                        .query_opt("SELECT availability FROM mobility_drivers WHERE id = $1 FOR SHARE", &[&o.driver_id])
                        .await?;
                    if row.map(|r| r.try_get::<_, String>(0)).transpose()?.as_deref() != Some("available") {
                        return Ok(false);
                    }
                }
                let sql = format!(
                    "INSERT INTO mobility_offers ({OFFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
                );
                let n = tx.execute(&sql, &[&o.ride_id, &o.driver_id, &o.offered_at, &o.expires_at, &o.answer]).await?;
                tx.commit().await?;
                Ok(n == 1)
            }
        }
    }

    /// Which of `drivers` have an offer pending.
    pub async fn drivers_with_pending_offers(&self, drivers: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let m = m.lock();
                let offers = m.rides.offers.values();
                Ok(offers
                    .filter(|o| o.answer.is_none() && drivers.contains(&o.driver_id))
                    .map(|o| o.driver_id)
                    .collect())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query(
                        "SELECT driver_id FROM mobility_offers WHERE answer IS NULL AND driver_id = ANY($1)",
                        &[&drivers],
                    )
                    .await?;
                rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
            }
        }
    }

    /// The pending offer of `ride`, if any.
    pub async fn pending_offer_of_ride(&self, ride: Uuid) -> Result<Option<Offer>, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(m.lock().rides.pending(|o| o.ride_id == ride)),
            Self::Postgres(pool) => select_offer(pool, "ride_id = $1", ride).await,
        }
    }

    /// The pending offer to `driver`, if any.
    pub async fn pending_offer_of_driver(&self, driver: Uuid) -> Result<Option<Offer>, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(m.lock().rides.pending(|o| o.driver_id == driver)),
            Self::Postgres(pool) => select_offer(pool, "driver_id = $1", driver).await,
        }
    }

    /// Close the pending offer of `ride` to `driver` with `answer`; `false` when none is pending.
    pub async fn answer_offer(&self, ride: Uuid, driver: Uuid, answer: &str) -> Result<bool, StoreError> {
        check_answer(Some(answer))?;
        match self {
            Self::Memory(m, _) => match m.lock().rides.offers.get_mut(&(ride, driver)) {
                Some(o) if o.answer.is_none() => {
                    o.answer = Some(answer.to_owned());
                    Ok(true)
                }
                _ => Ok(false),
            },
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                Ok(conn.execute(sql::CLOSE_OFFER, &[&ride, &driver, &answer]).await? == 1)
            }
        }
    }

    /// Whether `ride` was ever offered to `driver`.
    pub async fn offered(&self, ride: Uuid, driver: Uuid) -> Result<bool, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(m.lock().rides.offers.contains_key(&(ride, driver))),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let row = conn
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM mobility_offers WHERE ride_id = $1 AND driver_id = $2)",
                        &[&ride, &driver],
                    )
                    .await?;
                Ok(row.try_get(0)?)
            }
        }
    }

    /// The idempotency key `key` of `scope`, unless absent or expired.
    pub async fn key(&self, scope: &BlindIndex, key: &str) -> Result<Option<KeyRow>, StoreError> {
        let now = micros(Utc::now());
        match self {
            Self::Memory(m, _) => Ok(m.lock().rides.live_key(scope, key, now)),
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM mobility_keys WHERE scope = $1 AND key = $2 AND expires_at > $3"
                );
                conn.query_opt(&sql, &[&scope.as_bytes(), &key, &now]).await?.as_ref().map(key_from).transpose()
            }
        }
    }

    /// Forget at most `batch` keys expired at `now`, soonest expired first; returns how many.
    pub async fn purge_keys(&self, now: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let now = micros(now);
                let mut guard = m.lock();
                let keys = &mut guard.rides.keys;
                let mut expired: Vec<(DateTime<Utc>, (BlindIndex, String))> = keys
                    .iter()
                    .filter(|(_, k)| k.expires_at <= now)
                    .map(|(id, k)| (k.expires_at, id.clone()))
                    .collect();
                expired.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1 .1.cmp(&b.1 .1)));
                expired.truncate(batch);
                for (_, id) in &expired {
                    keys.remove(id);
                }
                Ok(expired.len() as u64)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                Ok(conn
                    .execute(
                        "DELETE FROM mobility_keys WHERE (scope, key) IN
                           (SELECT scope, key FROM mobility_keys WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
                        &[&now, &limit_of(batch)],
                    )
                    .await?)
            }
        }
    }

    /// At most `limit` rides with a payment step still to finish, least recently changed first.
    pub async fn rides_to_resume(&self, limit: usize) -> Result<Vec<RideRow>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                Ok(oldest(m.lock().rides.all.values().filter(|r| r.saga_open), |r| (r.updated_at, r.id), limit))
            }
            Self::Postgres(pool) => {
                let sql = format!(
                    "SELECT {RIDE_COLUMNS} FROM mobility_rides WHERE saga_open ORDER BY updated_at, id LIMIT $1"
                );
                select_rides(pool, &sql, &[&limit_of(limit)]).await
            }
        }
    }

    /// How many rides have a payment step due, and when the longest waiting of them last changed.
    pub async fn payments_due(&self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        match self {
            Self::Memory(m, _) => {
                let rides = m.lock();
                let due = rides.rides.all.values().filter(|r| r.saga_open);
                Ok(due.fold((0, None), |(n, oldest), r| {
                    (n + 1, Some(oldest.map_or(r.updated_at, |o: DateTime<Utc>| o.min(r.updated_at))))
                }))
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let row =
                    conn.query_one("SELECT count(*), min(updated_at) FROM mobility_rides WHERE saga_open", &[]).await?;
                Ok((row.try_get(0)?, row.try_get(1)?))
            }
        }
    }

    /// At most `limit` rides still waiting for a driver, longest waiting first.
    pub async fn requested_rides(&self, limit: usize) -> Result<Vec<RideRow>, StoreError> {
        match self {
            Self::Memory(m, _) => Ok(oldest(
                m.lock().rides.all.values().filter(|r| r.state == "requested"),
                |r| (r.requested_at, r.id),
                limit,
            )),
            Self::Postgres(pool) => {
                let sql = format!(
                    "SELECT {RIDE_COLUMNS} FROM mobility_rides WHERE state = 'requested'
                     ORDER BY requested_at, id LIMIT $1"
                );
                select_rides(pool, &sql, &[&limit_of(limit)]).await
            }
        }
    }

    /// Forget who asked for each ride of `rider` and where to (the rows stay); returns how many.
    pub async fn erase_rides(&self, rider: &BlindIndex) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut n = 0;
                for r in m.lock().rides.all.values_mut().filter(|r| r.rider_index == *rider) {
                    r.rider_sealed = None;
                    r.points_sealed = None;
                    n += 1;
                }
                Ok(n)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                Ok(conn
                    .execute(
                        "UPDATE mobility_rides SET rider_sealed = NULL, points_sealed = NULL WHERE rider_index = $1",
                        &[&rider.as_bytes()],
                    )
                    .await?)
            }
        }
    }

    /// Forget the pickup and dropoff of at most `batch` rides requested before `cutoff` and no
    /// longer open, oldest first; returns how many.
    pub async fn expire_points(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let cutoff = micros(cutoff);
                let mut guard = m.lock();
                let all = &mut guard.rides.all;
                let due = all.values().filter(|r| r.requested_at < cutoff && r.points_sealed.is_some() && !is_open(r));
                let due: Vec<Uuid> = oldest(due, |r| (r.requested_at, r.id), batch).iter().map(|r| r.id).collect();
                for id in &due {
                    if let Some(r) = all.get_mut(id) {
                        r.points_sealed = None;
                    }
                }
                Ok(due.len() as u64)
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let open: Vec<&str> = OPEN.to_vec();
                Ok(conn
                    .execute(
                        "UPDATE mobility_rides SET points_sealed = NULL WHERE id IN
                           (SELECT id FROM mobility_rides
                            WHERE requested_at < $1 AND points_sealed IS NOT NULL AND state <> ALL($2)
                            ORDER BY requested_at, id LIMIT $3)",
                        &[&cutoff, &open, &limit_of(batch)],
                    )
                    .await?)
            }
        }
    }

    /// How many rides there are of each (state, mode), in that order.
    pub async fn ride_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        match self {
            Self::Memory(m, _) => {
                let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
                for r in m.lock().rides.all.values() {
                    *counts.entry((r.state.clone(), r.mode.clone())).or_default() += 1;
                }
                Ok(counts.into_iter().map(|((state, mode), n)| (state, mode, n)).collect())
            }
            Self::Postgres(pool) => {
                let conn = pool.get().await?;
                let rows = conn
                    .query(
                        "SELECT state, mode, count(*) FROM mobility_rides GROUP BY state, mode
                         ORDER BY state COLLATE \"C\", mode COLLATE \"C\"",
                        &[],
                    )
                    .await?;
                rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))).collect()
            }
        }
    }
}
