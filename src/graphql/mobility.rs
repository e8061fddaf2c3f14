//! Mobility over GraphQL: the caller's driver profile, availability and position reports, and
//! quotes, through the same client, rules and error codes (`extensions.code`) as the REST API.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::caller::Caller;
use crate::{
    actors::mobility::{QuoteAnswer, RideCommand, Role},
    adapters::mobility::ride_store::StoredRide,
    domain::{
        fintech::{Currency, WalletId},
        idempotency::IdempotencyKey,
        mobility::{Availability, Driver as DomainDriver, Fix, MobilityError, Mode, Point},
    },
    error::AppError,
    http::state::AppState,
};

/// A vehicle mode.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Mode")]
pub enum ModeValue {
    /// A petrol or diesel car.
    Car,
    /// An electric car.
    EvCar,
    /// A motorbike.
    Motorbike,
    /// A bicycle.
    Bike,
    /// A scooter.
    Scooter,
    /// A van.
    Van,
}

impl From<ModeValue> for Mode {
    fn from(m: ModeValue) -> Self {
        match m {
            ModeValue::Car => Self::Car,
            ModeValue::EvCar => Self::EvCar,
            ModeValue::Motorbike => Self::Motorbike,
            ModeValue::Bike => Self::Bike,
            ModeValue::Scooter => Self::Scooter,
            ModeValue::Van => Self::Van,
        }
    }
}

/// A driver's profile.
#[derive(SimpleObject)]
pub struct Driver {
    /// Id.
    pub id: ID,
    /// car, ev_car, motorbike, bike, scooter or van.
    pub mode: String,
    /// The plate.
    pub plate: String,
    /// Passenger seats.
    pub seats: i32,
    /// The wallet credited with the driver's share.
    pub wallet: ID,
    /// offline, available or on_ride.
    pub availability: String,
    /// The ride held, while on one.
    pub ride: Option<ID>,
    /// Average rating received, once rated.
    pub rating: Option<f64>,
    /// Ratings received.
    pub ratings: i64,
    /// Changes so far.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl From<&DomainDriver> for Driver {
    fn from(d: &DomainDriver) -> Self {
        Self {
            id: ID(d.id.to_string()),
            mode: d.vehicle.mode.as_str().to_owned(),
            plate: d.vehicle.plate.clone(),
            seats: i32::from(d.vehicle.seats),
            wallet: ID(d.wallet.to_string()),
            availability: d.availability.as_str().to_owned(),
            ride: d.ride.map(|r| ID(r.to_string())),
            rating: d.average_rating(),
            ratings: d.rating_count,
            version: d.version,
            created_at: d.created_at,
        }
    }
}

/// A point, WGS 84 degrees.
#[derive(SimpleObject, InputObject, Clone, Copy)]
#[graphql(input_name = "PointInput")]
pub struct GeoPoint {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

/// A quote.
#[derive(SimpleObject)]
pub struct Quote {
    /// Id: what a ride request names.
    pub id: ID,
    /// Where the ride starts.
    pub pickup: GeoPoint,
    /// Where it ends.
    pub dropoff: GeoPoint,
    /// The mode.
    pub mode: String,
    /// Route length, metres.
    pub distance_m: i64,
    /// Route duration, seconds.
    pub duration_s: i64,
    /// Minor units of `currency`.
    pub fare: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Grams CO2e, when estimated.
    pub co2e_g: Option<i64>,
    /// Where the emission factor came from.
    pub co2e_source: Option<String>,
    /// provider, cache, simulator or fallback.
    pub route_source: String,
    /// Whether the route is an estimate.
    pub route_estimated: bool,
    /// Usable until.
    pub expires_at: DateTime<Utc>,
}

impl From<&QuoteAnswer> for Quote {
    fn from(a: &QuoteAnswer) -> Self {
        let q = &a.quote;
        Self {
            id: ID(q.id.to_string()),
            pickup: GeoPoint { lat: q.pickup.lat, lon: q.pickup.lon },
            dropoff: GeoPoint { lat: q.dropoff.lat, lon: q.dropoff.lon },
            mode: q.mode.as_str().to_owned(),
            distance_m: i64::try_from(q.distance_m).unwrap_or(i64::MAX),
            duration_s: i64::try_from(q.duration_s).unwrap_or(i64::MAX),
            fare: q.fare,
            currency: q.currency.code().to_owned(),
            co2e_g: q.co2e_g.and_then(|g| i64::try_from(g).ok()),
            co2e_source: a.co2e_source.clone(),
            route_source: a.route_source.clone(),
            route_estimated: a.route_estimated,
            expires_at: q.expires_at,
        }
    }
}

/// A driver profile to create or change.
#[derive(InputObject)]
pub struct DriverInput {
    /// The vehicle's mode.
    pub mode: ModeValue,
    /// The plate.
    pub plate: String,
    /// Passenger seats.
    pub seats: i32,
    /// The caller's wallet credited with their share of each fare.
    pub wallet: ID,
}

/// A trip to price.
#[derive(InputObject)]
pub struct QuoteInput {
    /// Where the ride starts.
    pub pickup: GeoPoint,
    /// Where it ends.
    pub dropoff: GeoPoint,
    /// How.
    pub mode: ModeValue,
    /// The currency of the wallet that will pay.
    pub currency: String,
}

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

fn point(p: GeoPoint, name: &str) -> Result<Point, AppError> {
    Ok(Point::new(p.lat, p.lon, name)?)
}

/// Mobility's queries.
#[derive(Default)]
pub struct MobilityQuery;

#[Object]
impl MobilityQuery {
    /// The caller's driver profile.
    async fn driver(&self, ctx: &Context<'_>) -> Result<Driver> {
        let caller = Caller::of(ctx)?;
        caller.read("driver", "mobility:read").await.map_err(|e| e.extend())?;
        let driver = state(ctx)?.actors.mobility.driver(&caller.principal.subject).await.map_err(AppError::from);
        Ok(Driver::from(&driver.map_err(|e| e.extend())?))
    }
}

/// Mobility's mutations.
#[derive(Default)]
pub struct MobilityMutation;

#[Object]
impl MobilityMutation {
    /// Create the caller's driver profile or change its vehicle and wallet.
    async fn put_driver(&self, ctx: &Context<'_>, input: DriverInput) -> Result<Driver> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let seats = u8::try_from(input.seats)
                .map_err(|_| AppError::from(MobilityError::InvalidProfile { field: "seats".into() }))?;
            let vehicle = crate::domain::mobility::Vehicle::new(input.mode.into(), &input.plate, seats)?;
            let wallet = input.wallet.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", "wallet"))?;
            let (driver, _) = state.actors.mobility.put_driver(&caller.principal.subject, vehicle, wallet).await?;
            Ok::<_, AppError>(driver)
        };
        let resource = "/api/v1/mobility/drivers/me".to_owned();
        let driver =
            caller.write("putDriver", resource, "mobility:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(Driver::from(&driver))
    }

    /// Go online (`available`) or `offline`.
    async fn set_driver_availability(&self, ctx: &Context<'_>, available: bool) -> Result<Driver> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let to = if available { Availability::Available } else { Availability::Offline };
        let run =
            async { Ok::<_, AppError>(state.actors.mobility.set_availability(&caller.principal.subject, to).await?) };
        let resource = "/api/v1/mobility/drivers/me/availability".to_owned();
        let driver = caller
            .write("setDriverAvailability", resource, "mobility:write", 200, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Driver::from(&driver))
    }

    /// A driver's position, at most one a second; `true` when the driver can be offered rides
    /// from there. Not audited, like the REST report.
    async fn report_driver_location(
        &self,
        ctx: &Context<'_>,
        location: GeoPoint,
        heading: Option<f64>,
        speed: Option<f64>,
    ) -> Result<bool> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        caller.report("reportDriverLocation", "mobility:write").await.map_err(|e| e.extend())?;
        let run = async {
            let fix = Fix::new(point(location, "location")?, heading, speed)?;
            Ok::<_, AppError>(state.actors.mobility.report_location(&caller.principal.subject, fix).await?)
        };
        let accepted = run.await.map_err(|e| e.extend())?;
        Ok(accepted.dispatchable)
    }

    /// A price, a route and a CO2e estimate for a trip.
    async fn request_quote(&self, ctx: &Context<'_>, input: QuoteInput) -> Result<Quote> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let (pickup, dropoff) = (point(input.pickup, "pickup")?, point(input.dropoff, "dropoff")?);
            let currency = Currency::parse(&input.currency).map_err(AppError::from)?;
            let mode = Mode::from(input.mode);
            Ok::<_, AppError>(
                state.actors.mobility.quote(&caller.principal.subject, pickup, dropoff, mode, currency).await?,
            )
        };
        let resource = "/api/v1/mobility/quotes".to_owned();
        let answer = caller
            .write("requestQuote", resource, "mobility:write", 201, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Quote::from(&answer))
    }
}

/// A step of a ride.
#[derive(SimpleObject)]
pub struct RideStep {
    /// The state reached.
    pub state: String,
    /// When.
    pub at: DateTime<Utc>,
    /// rider, driver or system.
    pub by: String,
    /// A note (`driver_cancelled`).
    pub note: Option<String>,
}

/// A ride.
#[derive(SimpleObject)]
pub struct Ride {
    /// Id.
    pub id: ID,
    /// requested, driver_assigned, driver_arriving, in_progress, completed, cancelled or expired.
    pub state: String,
    /// The mode.
    pub mode: String,
    /// The driver, once one took it.
    pub driver: Option<ID>,
    /// Where it starts; `null` once erased or past its retention.
    pub pickup: Option<GeoPoint>,
    /// Where it ends.
    pub dropoff: Option<GeoPoint>,
    /// The quoted fare, minor units.
    pub quoted_fare: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// The final fare, once completed.
    pub fare: Option<i64>,
    /// The platform's commission.
    pub commission: Option<i64>,
    /// held, captured, released or failed.
    pub payment: String,
    /// Why a payment step failed.
    pub payment_error: Option<String>,
    /// The cancellation fee, when cancelled.
    pub cancellation_fee: Option<i64>,
    /// Every change of state.
    pub timeline: Vec<RideStep>,
    /// Changes so far.
    pub version: i64,
    /// Requested at.
    pub requested_at: DateTime<Utc>,
}

impl From<&StoredRide> for Ride {
    fn from(s: &StoredRide) -> Self {
        let r = &s.ride;
        let point = |p: Point| GeoPoint { lat: p.lat, lon: p.lon };
        Self {
            id: ID(r.id.to_string()),
            state: r.state.as_str().to_owned(),
            mode: r.quote.mode.as_str().to_owned(),
            driver: r.driver.map(|d| ID(d.to_string())),
            pickup: s.points.then(|| point(r.quote.pickup)),
            dropoff: s.points.then(|| point(r.quote.dropoff)),
            quoted_fare: r.quote.fare,
            currency: r.quote.currency.code().to_owned(),
            fare: r.fare,
            commission: r.commission,
            payment: r.payment.as_str().to_owned(),
            payment_error: r.payment_error.clone(),
            cancellation_fee: r.cancellation.as_ref().map(|c| c.fee),
            timeline: r
                .timeline
                .iter()
                .map(|t| RideStep {
                    state: t.state.as_str().to_owned(),
                    at: t.at,
                    by: t.by.as_str().to_owned(),
                    note: t.note.clone(),
                })
                .collect(),
            version: r.version,
            requested_at: r.requested_at,
        }
    }
}

/// An action on a ride.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RideActionValue {
    /// A driver takes the ride offered to them.
    Accept,
    /// A driver turns it down.
    Decline,
    /// The driver is at the pickup.
    Arrive,
    /// The rider is on board.
    Start,
    /// The ride is over (`distanceM`, `durationS`).
    Complete,
    /// Call it off (`reason`).
    Cancel,
    /// Rate the other party (`score`).
    Rate,
}

fn ride_uuid(id: &ID) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| {
        AppError::client(crate::error::ErrorCode::InvalidParameter, "the ride id is not a UUID").with("field", "ride")
    })
}

fn key_of(raw: &str) -> Result<IdempotencyKey, AppError> {
    Ok(IdempotencyKey::parse(raw)?)
}

/// Rides' queries.
#[derive(Default)]
pub struct RideQuery;

#[Object]
impl RideQuery {
    /// One ride, for its rider or a driver it was offered to.
    async fn ride(&self, ctx: &Context<'_>, id: ID) -> Result<Ride> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        caller.read("ride", "mobility:read").await.map_err(|e| e.extend())?;
        let run = async {
            let id = ride_uuid(&id)?;
            Ok::<_, AppError>(state.actors.mobility.ride(&caller.principal.subject, id).await?)
        };
        Ok(Ride::from(&run.await.map_err(|e| e.extend())?))
    }

    /// The caller's rides (as driver when `asDriver`), newest first, `first` at a time (1 to 100,
    /// 20 by default), after the cursor `after` (a page's `nextCursor`).
    async fn rides(
        &self,
        ctx: &Context<'_>,
        as_driver: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<RidePage> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        caller.read("rides", "mobility:read").await.map_err(|e| e.extend())?;
        let as_driver = as_driver.unwrap_or(false);
        let run = async {
            let scope =
                ["mobility.rides", caller.principal.subject.as_str(), if as_driver { "driver" } else { "rider" }];
            let page = state.cursors.page(&scope, first, ("first", 20, 100), after.as_deref(), "after")?;
            let mobility = &state.actors.mobility;
            let role = if as_driver {
                let driver = mobility.driver_id(&caller.principal.subject).await?;
                Role::Driver(driver.ok_or(MobilityError::DriverNotFound)?)
            } else {
                Role::Rider
            };
            let found = mobility.rides(&caller.principal.subject, role, page.after, page.fetch()).await?;
            page.finish(found, |r| (r.ride.requested_at, r.ride.id))
        };
        let (found, next_cursor) = run.await.map_err(|e| e.extend())?;
        Ok(RidePage { items: found.iter().map(Ride::from).collect(), next_cursor })
    }
}

/// A page of rides.
#[derive(SimpleObject)]
#[graphql(name = "RidePage")]
pub struct RidePage {
    /// Newest first.
    pub items: Vec<Ride>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Rides' mutations.
#[derive(Default)]
pub struct RideMutation;

#[Object]
impl RideMutation {
    /// Request a ride from a quote, its fare held on `wallet`.
    async fn request_ride(&self, ctx: &Context<'_>, quote: ID, wallet: ID, idempotency_key: String) -> Result<Ride> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let quote = uuid::Uuid::parse_str(quote.as_str()).map_err(|_| {
                AppError::client(crate::error::ErrorCode::InvalidParameter, "the quote id is not a UUID")
                    .with("field", "quote")
            })?;
            let wallet = wallet.parse::<WalletId>().map_err(|e| AppError::from(e).with("field", "wallet"))?;
            let key = key_of(&idempotency_key)?;
            Ok::<_, AppError>(state.actors.mobility.request_ride(&caller.principal.subject, quote, wallet, key).await?)
        };
        let resource = "/api/v1/mobility/rides".to_owned();
        let answer = caller
            .write("requestRide", resource, "mobility:write", 201, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Ride::from(&answer.ride))
    }

    /// An action on a ride: accept, decline, arrive, start, complete (with `distanceM` and
    /// `durationS`), cancel (with an optional `reason`) or rate (with `score`).
    #[allow(clippy::too_many_arguments)]
    async fn ride_action(
        &self,
        ctx: &Context<'_>,
        ride: ID,
        action: RideActionValue,
        idempotency_key: String,
        distance_m: Option<i64>,
        duration_s: Option<i64>,
        reason: Option<String>,
        score: Option<i32>,
    ) -> Result<Ride> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let id = ride_uuid(&ride)?;
            let key = key_of(&idempotency_key)?;
            let missing = |field: &'static str| {
                AppError::client(crate::error::ErrorCode::InvalidParameter, format!("`{field}` is required"))
                    .with("field", field)
            };
            let command = match action {
                RideActionValue::Accept => RideCommand::Accept,
                RideActionValue::Decline => RideCommand::Decline,
                RideActionValue::Arrive => RideCommand::Arrive,
                RideActionValue::Start => RideCommand::Start,
                RideActionValue::Complete => RideCommand::Complete {
                    distance_m: distance_m
                        .and_then(|d| u64::try_from(d).ok())
                        .filter(|d| *d <= 2_000_000)
                        .ok_or_else(|| missing("distanceM"))?,
                    duration_s: duration_s
                        .and_then(|d| u64::try_from(d).ok())
                        .filter(|d| *d <= 172_800)
                        .ok_or_else(|| missing("durationS"))?,
                },
                RideActionValue::Cancel => RideCommand::Cancel { reason },
                RideActionValue::Rate => RideCommand::Rate {
                    score: score.and_then(|s| u8::try_from(s).ok()).ok_or(MobilityError::InvalidRating)?,
                },
            };
            Ok::<_, AppError>(state.actors.mobility.act(&caller.principal.subject, id, command, key).await?)
        };
        let resource = format!("/api/v1/mobility/rides/{}", ride.as_str());
        let answer =
            caller.write("rideAction", resource, "mobility:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(Ride::from(&answer.ride))
    }
}
