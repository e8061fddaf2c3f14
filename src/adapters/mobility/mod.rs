//! Mobility's storage: drivers and quotes in PostgreSQL (or memory), their personal fields sealed
//! by the privacy vault on the way in and opened on the way out, and the available drivers'
//! positions in the geo index.

pub mod geo;
pub mod ride_store;
pub mod rides;
pub mod rows;

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use geo::{GeoIndex, Nearby};
pub use rides::{Inserted, KeyRow, Offer, RideRow, RideWrite, Written};
pub use rows::{DriverRow, QuoteRow, Rows};

use crate::{
    adapters::{
        outbox::MemOutbox,
        postgres::{PgPool, PostgresError},
        privacy::{Vault, VaultError, VaultFailure},
    },
    domain::{
        events::DomainEvent,
        fintech::{Currency, WalletId},
        mobility::{Availability, Driver, DriverId, Mode, Point, Quote, Vehicle},
        privacy::{BlindIndex, Personal, Place},
    },
    error::code::{Coded, ErrorCode},
};

/// The store or the vault failed; nothing was changed that the caller was told about.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL or Redis did not answer, or refused.
    #[error("the mobility store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not read back.
    #[error("a stored {0} does not read back")]
    Corrupt(&'static str),
    /// The privacy vault failed.
    #[error(transparent)]
    Vault(VaultFailure),
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        Self::Unavailable(e.kind().into())
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        PostgresError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::warn!(error = ?e, "mobility store statement failed");
        PostgresError::from(e).into()
    }
}

impl From<VaultError> for StoreError {
    fn from(e: VaultError) -> Self {
        Self::Vault(e.into())
    }
}

impl Coded for StoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Vault(e) => e.code,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self.code(), ErrorCode::ServiceUnavailable | ErrorCode::PrivacyUnavailable)
            .then_some(Duration::from_secs(1))
    }
}

/// A driver profile as its owner reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverProfile {
    /// The driver.
    pub driver: Driver,
    /// The plate, unless erased.
    pub plate: Personal<String>,
}

/// A driver as dispatch sees it: no personal field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverState {
    /// The driver.
    pub id: DriverId,
    /// Mode.
    pub mode: Mode,
    /// Availability.
    pub availability: Availability,
    /// The wallet credited with the driver's share.
    pub wallet: WalletId,
    /// The ride held.
    pub ride: Option<Uuid>,
    /// The owner's blind index (`None` once erased).
    pub owner: Option<BlindIndex>,
}

/// Mobility's store; cheap to clone.
#[derive(Clone)]
pub struct MobilityStore {
    rows: Rows,
    vault: Vault,
}

const DRIVER_OWNER: &str = "mobility_drivers.owner";
const DRIVER_PLATE: &str = "mobility_drivers.plate";
const QUOTE_PICKUP: &str = "mobility_quotes.pickup";
const QUOTE_DROPOFF: &str = "mobility_quotes.dropoff";

fn point_text(p: Point) -> String {
    format!("{},{}", p.lat, p.lon)
}

fn point_of(text: &str) -> Option<Point> {
    let (lat, lon) = text.split_once(',')?;
    Point::new(lat.parse().ok()?, lon.parse().ok()?, "point").ok()
}

impl MobilityStore {
    /// The store on PostgreSQL, or in memory (its events in `outbox`) without a database.
    pub fn new(pool: Option<PgPool>, outbox: MemOutbox, vault: Vault) -> Self {
        Self { rows: pool.map_or_else(|| Rows::memory(outbox), Rows::Postgres), vault }
    }

    /// The vault its personal fields are sealed by.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The rows underneath.
    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    /// The blind index of `subject`.
    pub fn index(&self, subject: &str) -> BlindIndex {
        self.vault.subject_index(subject)
    }

    /// The driver of a row, without its plate (which stays sealed).
    pub fn driver_of_row(row: &DriverRow) -> Result<Driver, StoreError> {
        Ok(Driver {
            id: DriverId(row.id),
            vehicle: Vehicle {
                mode: Mode::parse(&row.mode).map_err(|_| StoreError::Corrupt("mode"))?,
                plate: String::new(),
                seats: u8::try_from(row.seats).map_err(|_| StoreError::Corrupt("seats"))?,
            },
            wallet: WalletId(row.wallet_id),
            availability: Availability::parse(&row.availability).ok_or(StoreError::Corrupt("availability"))?,
            ride: row.ride_id,
            rating_sum: row.rating_sum,
            rating_count: row.rating_count,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    async fn row_of_driver(&self, subject: &str, d: &Driver) -> Result<DriverRow, StoreError> {
        let id = d.id.to_string();
        let owner = self.vault.seal(subject, Place::new(DRIVER_OWNER, &id), subject).await?;
        let plate = self.vault.seal(subject, Place::new(DRIVER_PLATE, &id), &d.vehicle.plate).await?;
        Ok(DriverRow {
            id: d.id.0,
            owner_index: Some(self.index(subject)),
            owner_sealed: Some(owner.to_text()),
            mode: d.vehicle.mode.as_str().to_owned(),
            plate_sealed: Some(plate.to_text()),
            seats: i16::from(d.vehicle.seats),
            wallet_id: d.wallet.0,
            availability: d.availability.as_str().to_owned(),
            ride_id: d.ride,
            rating_sum: d.rating_sum,
            rating_count: d.rating_count,
            version: d.version,
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }

    /// The driver profile of `subject`, with its plate opened.
    pub async fn driver_of(&self, subject: &str) -> Result<Option<Driver>, StoreError> {
        let Some(row) = self.rows.driver_by_owner(&self.index(subject)).await? else { return Ok(None) };
        let mut driver = Self::driver_of_row(&row)?;
        if let Some(sealed) = &row.plate_sealed {
            let id = row.id.to_string();
            if let Personal::Value(plate) = self.vault.open_text(sealed, Place::new(DRIVER_PLATE, &id)).await? {
                driver.vehicle.plate = plate;
            }
        }
        Ok(Some(driver))
    }

    /// Keep `subject`'s new driver profile; `false` when they already have one.
    pub async fn create_driver(&self, subject: &str, driver: &Driver) -> Result<bool, StoreError> {
        let row = self.row_of_driver(subject, driver).await?;
        self.rows.insert_driver(&row).await
    }

    /// Write `driver`'s new state (its version one above the stored one) with `events`; `false`
    /// when another change came first, or when the ride it takes is held by another driver.
    pub async fn save_driver(
        &self,
        subject: &str,
        driver: &Driver,
        events: &[DomainEvent],
    ) -> Result<bool, StoreError> {
        let row = self.row_of_driver(subject, driver).await?;
        self.rows.update_driver(&row, events).await
    }

    /// The drivers `ids` as dispatch sees them (those that exist).
    pub async fn driver_states(&self, ids: &[DriverId]) -> Result<Vec<DriverState>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|d| d.0).collect();
        self.rows
            .drivers(&ids)
            .await?
            .iter()
            .map(|row| {
                let d = Self::driver_of_row(row)?;
                Ok(DriverState {
                    id: d.id,
                    mode: d.vehicle.mode,
                    availability: d.availability,
                    wallet: d.wallet,
                    ride: d.ride,
                    owner: row.owner_index,
                })
            })
            .collect()
    }

    /// Keep `rider`'s quote, its coordinates sealed.
    pub async fn put_quote(&self, rider: &str, quote: &Quote, route_source: &str) -> Result<(), StoreError> {
        let id = quote.id.to_string();
        let pickup = self.vault.seal(rider, Place::new(QUOTE_PICKUP, &id), &point_text(quote.pickup)).await?;
        let dropoff = self.vault.seal(rider, Place::new(QUOTE_DROPOFF, &id), &point_text(quote.dropoff)).await?;
        let row = QuoteRow {
            id: quote.id,
            rider_index: self.index(rider),
            pickup_sealed: pickup.to_text(),
            dropoff_sealed: dropoff.to_text(),
            mode: quote.mode.as_str().to_owned(),
            distance_m: i64::try_from(quote.distance_m).unwrap_or(i64::MAX),
            duration_s: i64::try_from(quote.duration_s).unwrap_or(i64::MAX),
            fare: quote.fare,
            currency: quote.currency.code().to_owned(),
            co2e_g: quote.co2e_g.map(|g| i64::try_from(g).unwrap_or(i64::MAX)),
            route_source: route_source.to_owned(),
            expires_at: quote.expires_at,
            created_at: quote.created_at,
        };
        self.rows.insert_quote(&row).await
    }

    async fn quote_of_row(&self, row: &QuoteRow) -> Result<Option<Quote>, StoreError> {
        let id = row.id.to_string();
        let pickup = self.vault.open_text(&row.pickup_sealed, Place::new(QUOTE_PICKUP, &id)).await?;
        let dropoff = self.vault.open_text(&row.dropoff_sealed, Place::new(QUOTE_DROPOFF, &id)).await?;
        let (Personal::Value(pickup), Personal::Value(dropoff)) = (pickup, dropoff) else { return Ok(None) };
        Ok(Some(Quote {
            id: row.id,
            pickup: point_of(&pickup).ok_or(StoreError::Corrupt("pickup"))?,
            dropoff: point_of(&dropoff).ok_or(StoreError::Corrupt("dropoff"))?,
            mode: Mode::parse(&row.mode).map_err(|_| StoreError::Corrupt("mode"))?,
            distance_m: u64::try_from(row.distance_m).map_err(|_| StoreError::Corrupt("distance"))?,
            duration_s: u64::try_from(row.duration_s).map_err(|_| StoreError::Corrupt("duration"))?,
            fare: row.fare,
            currency: Currency::parse(&row.currency).map_err(|_| StoreError::Corrupt("currency"))?,
            co2e_g: row.co2e_g.and_then(|g| u64::try_from(g).ok()),
            expires_at: row.expires_at,
            created_at: row.created_at,
        }))
    }

    /// `rider`'s quote `id`; `None` when it is not theirs, was removed or its coordinates were
    /// erased.
    pub async fn quote_of(&self, rider: &str, id: Uuid) -> Result<Option<Quote>, StoreError> {
        match self.rows.quote(id).await? {
            Some(row) if row.rider_index == self.index(rider) => self.quote_of_row(&row).await,
            _ => Ok(None),
        }
    }

    /// Every readable quote of the rider whose blind index is `rider`, oldest first.
    pub async fn quotes_of(&self, rider: &BlindIndex) -> Result<Vec<Quote>, StoreError> {
        let mut quotes = Vec::new();
        for row in self.rows.quotes_of(rider).await? {
            quotes.extend(self.quote_of_row(&row).await?);
        }
        Ok(quotes)
    }

    /// Delete at most `batch` quotes (with their coordinates) made before `cutoff`.
    pub async fn expire_quotes(&self, cutoff: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        self.rows.delete_quotes_before(cutoff, batch).await
    }
}
