//! What the mobility routes read and answer, each with the schema the OpenAPI document publishes,
//! its limits taken from the constants the domain checks against.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{
    openapi::{schema::SchemaType, ObjectBuilder, Schema, Type},
    ToSchema,
};
use uuid::Uuid;

use crate::{
    actors::mobility::QuoteAnswer,
    domain::{
        fintech::Currency,
        mobility::{Availability, Driver, Mode, Point, Quote},
    },
    http::{fintech::CurrencyCode, json},
};

/// Plates: 1 to 16 letters, digits, spaces or hyphens, starting with a letter or digit (upper
/// case is kept).
pub const PLATE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9 -]{0,15}$";

fn number(min: f64, max: f64, description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Number).minimum(Some(min)).maximum(Some(max)).description(Some(description))
}

fn latitude() -> Schema {
    number(-90.0, 90.0, "Latitude, WGS 84 degrees.").into()
}

fn longitude() -> Schema {
    number(-180.0, 180.0, "Longitude, WGS 84 degrees.").into()
}

fn heading() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(0.0))
        .exclusive_maximum(Some(360.0))
        .description(Some("Heading, degrees clockwise from north, 0 to less than 360."))
        .into()
}

fn speed() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(0.0))
        .maximum(Some(100.0))
        .description(Some("Speed, metres per second, 0 to 100."))
        .into()
}

fn plate() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PLATE_PATTERN))
        .description(Some("The vehicle's plate: 1 to 16 letters, digits, spaces or hyphens."))
        .into()
}

fn seats() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(8))
        .description(Some(
            "Passenger seats: 1 for a bike, a scooter or a motorbike, up to 7 for a car, up to 8 for a van \
             (more than the mode holds is 422 `too_many_seats`).",
        ))
        .into()
}

/// A point as the API reads and shows it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[schema(as = Point)]
#[serde(deny_unknown_fields)]
pub struct PointBody {
    /// Latitude.
    #[schema(schema_with = latitude)]
    pub lat: f64,
    /// Longitude.
    #[schema(schema_with = longitude)]
    pub lon: f64,
}

impl From<Point> for PointBody {
    fn from(p: Point) -> Self {
        Self { lat: p.lat, lon: p.lon }
    }
}

/// A vehicle mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = VehicleMode)]
pub enum ModeBody {
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

impl From<ModeBody> for Mode {
    fn from(m: ModeBody) -> Self {
        match m {
            ModeBody::Car => Self::Car,
            ModeBody::EvCar => Self::EvCar,
            ModeBody::Motorbike => Self::Motorbike,
            ModeBody::Bike => Self::Bike,
            ModeBody::Scooter => Self::Scooter,
            ModeBody::Van => Self::Van,
        }
    }
}

impl From<Mode> for ModeBody {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Car => Self::Car,
            Mode::EvCar => Self::EvCar,
            Mode::Motorbike => Self::Motorbike,
            Mode::Bike => Self::Bike,
            Mode::Scooter => Self::Scooter,
            Mode::Van => Self::Van,
        }
    }
}

/// A driver's profile to create or change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverRequest {
    /// The vehicle's mode (another name is 400 `unknown_mode`).
    #[schema(value_type = ModeBody)]
    pub mode: String,
    /// The vehicle's plate.
    #[schema(schema_with = plate)]
    pub plate: String,
    /// Passenger seats.
    #[serde(deserialize_with = "json::integer")]
    #[schema(schema_with = seats)]
    pub seats: i64,
    /// The caller's wallet credited with their share of each fare.
    pub wallet: Uuid,
}

/// Whether a driver takes rides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityBody {
    /// Not taking rides; position reports are refused.
    Offline,
    /// Taking rides.
    Available,
    /// On a ride (set by the ride, never asked for).
    OnRide,
}

impl From<Availability> for AvailabilityBody {
    fn from(a: Availability) -> Self {
        match a {
            Availability::Offline => Self::Offline,
            Availability::Available => Self::Available,
            Availability::OnRide => Self::OnRide,
        }
    }
}

/// An availability to go to: `available` or `offline`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// `available` or `offline` (`on_ride` is set by rides only: 409 `driver_busy` while on one).
    pub availability: AvailabilityBody,
}

/// A driver's profile as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Driver)]
pub struct DriverBody {
    /// Identity.
    pub id: Uuid,
    /// The vehicle's mode.
    pub mode: ModeBody,
    /// The plate, upper case.
    pub plate: String,
    /// Passenger seats.
    #[schema(minimum = 1, maximum = 8)]
    pub seats: u8,
    /// The wallet credited with the driver's share.
    pub wallet: Uuid,
    /// Whether the driver takes rides.
    pub availability: AvailabilityBody,
    /// The ride held, while on one.
    #[schema(nullable = true)]
    pub ride: Option<Uuid>,
    /// Average rating received, 1 to 5, once rated.
    #[schema(nullable = true, minimum = 1, maximum = 5)]
    pub rating: Option<f64>,
    /// Ratings received.
    #[schema(minimum = 0)]
    pub ratings: i64,
    /// Changes so far.
    #[schema(minimum = 1)]
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Driver> for DriverBody {
    fn from(d: &Driver) -> Self {
        Self {
            id: d.id.0,
            mode: d.vehicle.mode.into(),
            plate: d.vehicle.plate.clone(),
            seats: d.vehicle.seats,
            wallet: d.wallet.0,
            availability: d.availability.into(),
            ride: d.ride,
            rating: d.average_rating(),
            ratings: d.rating_count,
            version: d.version,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A driver's position report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    /// Latitude.
    #[schema(schema_with = latitude)]
    pub lat: f64,
    /// Longitude.
    #[schema(schema_with = longitude)]
    pub lon: f64,
    /// Heading.
    #[schema(schema_with = heading)]
    #[serde(default)]
    pub heading: Option<f64>,
    /// Speed.
    #[schema(schema_with = speed)]
    #[serde(default)]
    pub speed: Option<f64>,
}

/// What a position report did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LocationAccepted)]
pub struct LocationBody {
    /// Whether the driver can be offered rides from there (available); `false` on a ride.
    pub dispatchable: bool,
}

/// A trip to price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// Where the ride starts.
    pub pickup: PointBody,
    /// Where it ends (at least 10 m from the pickup, else 422 `same_pickup_dropoff`).
    pub dropoff: PointBody,
    /// How (another name is 400 `unknown_mode`).
    #[schema(value_type = ModeBody)]
    pub mode: String,
    /// The currency of the wallet that will pay (422 `unsupported_currency` when no tariff is
    /// set for it).
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
}

/// Where a quote's route came from.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteSource {
    /// `provider`, `cache`, `simulator` or `fallback`.
    pub source: String,
    /// Whether distance and duration are an estimate (the routing provider could not be asked).
    pub estimated: bool,
}

/// A quote: the route, the fare and the CO2e, valid until `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Quote)]
pub struct QuoteBody {
    /// Identity: what a ride request names.
    pub id: Uuid,
    /// Where the ride starts.
    pub pickup: PointBody,
    /// Where it ends.
    pub dropoff: PointBody,
    /// How.
    pub mode: ModeBody,
    /// Route length, metres.
    #[schema(minimum = 0)]
    pub distance_m: u64,
    /// Route duration, seconds.
    #[schema(minimum = 0)]
    pub duration_s: u64,
    /// The fare, minor units of `currency`; the ride that uses the quote keeps it.
    #[schema(minimum = 1)]
    pub fare: i64,
    /// Currency of the fare.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// Estimated emissions of the trip, grams CO2e (`null` when no estimate could be made).
    #[schema(nullable = true, minimum = 0)]
    pub co2e_g: Option<u64>,
    /// Where the emission factor came from.
    #[schema(nullable = true)]
    pub co2e_source: Option<String>,
    /// Where the route came from.
    pub route: RouteSource,
    /// Usable until.
    pub expires_at: DateTime<Utc>,
    /// Made at.
    pub created_at: DateTime<Utc>,
}

impl From<&QuoteAnswer> for QuoteBody {
    fn from(a: &QuoteAnswer) -> Self {
        let q: &Quote = &a.quote;
        Self {
            id: q.id,
            pickup: q.pickup.into(),
            dropoff: q.dropoff.into(),
            mode: q.mode.into(),
            distance_m: q.distance_m,
            duration_s: q.duration_s,
            fare: q.fare,
            currency: q.currency,
            co2e_g: q.co2e_g,
            co2e_source: a.co2e_source.clone(),
            route: RouteSource { source: a.route_source.clone(), estimated: a.route_estimated },
            expires_at: q.expires_at,
            created_at: q.created_at,
        }
    }
}
