//! Mobility over GraphQL: the caller's driver profile, availability and position reports, and
//! quotes, through the same client, rules and error codes (`extensions.code`) as the REST API.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::caller::Caller;
use crate::{
    actors::mobility::QuoteAnswer,
    domain::{
        fintech::{Currency, WalletId},
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
