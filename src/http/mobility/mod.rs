//! `/api/v1/mobility`: drivers (their profile, availability and position reports) and quotes.
//! Handlers parse input into the domain's types and call the [`MobilityClient`]; the domain's
//! rules answer refusals with their codes.
//!
//! [`MobilityClient`]: crate::actors::mobility::MobilityClient

mod bodies;
pub mod rides;

use actix_web::{web, HttpResponse};

pub use self::bodies::*;
use super::{json::Json, state::AppState};
use crate::{
    auth::Principal,
    domain::{
        fintech::{Currency, WalletId},
        mobility::{Availability, Fix, Mode, Point, Vehicle},
    },
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        (
            "putDriver",
            &[
                UnknownMode,
                InvalidParameter,
                TooManySeats,
                WalletNotFound,
                WalletClosed,
                DriverBusy,
                PrivacyUnavailable,
            ],
        ),
        ("getDriver", &[DriverNotFound, PrivacyUnavailable]),
        ("setDriverAvailability", &[InvalidParameter, DriverNotFound, DriverBusy, PrivacyUnavailable]),
        (
            "reportDriverLocation",
            &[
                InvalidCoordinates,
                InvalidParameter,
                DriverNotFound,
                DriverOffline,
                LocationRateLimited,
                PrivacyUnavailable,
            ],
        ),
        (
            "requestRide",
            &[
                QuoteNotFound,
                QuoteExpired,
                QuoteUsed,
                RideAlreadyOpen,
                WalletNotFound,
                WalletFrozen,
                WalletClosed,
                CurrencyMismatch,
                InsufficientFunds,
                LedgerUnavailable,
                Overloaded,
                PrivacyUnavailable,
            ],
        ),
        ("getRide", &[InvalidParameter, RideNotFound, PrivacyUnavailable]),
        ("listRides", &[PageTooLarge, InvalidCursor, PageBeyondEnd, DriverNotFound, PrivacyUnavailable]),
        (
            "acceptRide",
            &[
                InvalidParameter,
                RideNotFound,
                RideStateConflict,
                RideNotOffered,
                DriverOffline,
                DriverBusy,
                PrivacyUnavailable,
            ],
        ),
        ("declineRide", &[InvalidParameter, RideNotFound, RideNotOffered, PrivacyUnavailable]),
        ("arriveRide", &[InvalidParameter, RideNotFound, RideStateConflict, PrivacyUnavailable]),
        ("startRide", &[InvalidParameter, RideNotFound, RideStateConflict, PrivacyUnavailable]),
        (
            "completeRide",
            &[InvalidParameter, RideNotFound, RideStateConflict, LedgerUnavailable, Overloaded, PrivacyUnavailable],
        ),
        (
            "cancelRide",
            &[InvalidParameter, RideNotFound, RideStateConflict, LedgerUnavailable, Overloaded, PrivacyUnavailable],
        ),
        ("rateRide", &[InvalidParameter, RideNotFound, RideStateConflict, AlreadyRated, PrivacyUnavailable]),
        (
            "requestQuote",
            &[
                InvalidCoordinates,
                UnknownMode,
                SamePickupDropoff,
                UnknownCurrency,
                UnsupportedCurrency,
                NoRoute,
                PrivacyUnavailable,
            ],
        ),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/mobility/drivers/me").route(web::get().to(get_driver)).route(web::put().to(put_driver)),
    )
    .service(web::resource("/mobility/drivers/me/availability").route(web::put().to(set_availability)))
    .service(web::resource("/mobility/drivers/me/location").route(web::post().to(report_location)))
    .service(web::resource("/mobility/quotes").route(web::post().to(request_quote)))
    .configure(rides::routes);
}

fn point(p: PointBody, name: &str) -> Result<Point, AppError> {
    Ok(Point::new(p.lat, p.lon, name)?)
}

/// Create the caller's driver profile (201), or change its vehicle and wallet (200).
#[utoipa::path(
    put,
    path = "/api/v1/mobility/drivers/me",
    operation_id = "putDriver",
    tag = "mobility",
    request_body(content = DriverRequest, example = json!({"mode": "car", "plate": "AB-123-CD", "seats": 4, "wallet": "0193b1d2-7f3a-7c1e-9a4b-2f6d8e0c1a2b"})),
    responses(
        (status = 201, description = "The new profile (offline).", body = DriverBody),
        (status = 200, description = "The profile, changed.", body = DriverBody)
    )
)]
pub async fn put_driver(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<DriverRequest>,
) -> Result<HttpResponse, AppError> {
    let DriverRequest { mode, plate, seats, wallet } = body.into_inner();
    let seats = u8::try_from(seats).unwrap_or(u8::MAX);
    let vehicle = Vehicle::new(Mode::parse(&mode)?, &plate, seats)?;
    let (driver, created) = state.actors.mobility.put_driver(&principal.subject, vehicle, WalletId(wallet)).await?;
    let body = DriverBody::from(&driver);
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

/// The caller's driver profile.
#[utoipa::path(
    get,
    path = "/api/v1/mobility/drivers/me",
    operation_id = "getDriver",
    tag = "mobility",
    responses((status = 200, description = "The profile.", body = DriverBody))
)]
pub async fn get_driver(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, AppError> {
    let driver = state.actors.mobility.driver(&principal.subject).await?;
    Ok(HttpResponse::Ok().json(DriverBody::from(&driver)))
}

/// Go online (`available`: offered rides once a position is reported) or `offline`.
#[utoipa::path(
    put,
    path = "/api/v1/mobility/drivers/me/availability",
    operation_id = "setDriverAvailability",
    tag = "mobility",
    request_body(content = AvailabilityRequest, example = json!({"availability": "available"})),
    responses((status = 200, description = "The profile.", body = DriverBody))
)]
pub async fn set_availability(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<AvailabilityRequest>,
) -> Result<HttpResponse, AppError> {
    let to = match body.into_inner().availability {
        AvailabilityBody::Available => Availability::Available,
        AvailabilityBody::Offline => Availability::Offline,
        AvailabilityBody::OnRide => {
            return Err(AppError::from(crate::domain::mobility::MobilityError::DriverBusy));
        }
    };
    let driver = state.actors.mobility.set_availability(&principal.subject, to).await?;
    Ok(HttpResponse::Ok().json(DriverBody::from(&driver)))
}

/// A driver's position, at most one a second; written to the geo index while available.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/drivers/me/location",
    operation_id = "reportDriverLocation",
    tag = "mobility",
    request_body(content = LocationRequest, example = json!({"lat": 48.8566, "lon": 2.3522, "heading": 90.0, "speed": 8.3})),
    responses((status = 200, description = "Accepted.", body = LocationBody))
)]
pub async fn report_location(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<LocationRequest>,
) -> Result<HttpResponse, AppError> {
    let LocationRequest { lat, lon, heading, speed } = body.into_inner();
    let fix = Fix::new(Point::new(lat, lon, "location")?, heading, speed)?;
    let accepted = state.actors.mobility.report_location(&principal.subject, fix).await?;
    Ok(HttpResponse::Ok().json(LocationBody { dispatchable: accepted.dispatchable }))
}

/// A price, a route and a CO2e estimate for a trip, valid for a few minutes.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/quotes",
    operation_id = "requestQuote",
    tag = "mobility",
    request_body(content = QuoteRequest, example = json!({"pickup": {"lat": 48.8566, "lon": 2.3522}, "dropoff": {"lat": 48.8738, "lon": 2.2950}, "mode": "car", "currency": "EUR"})),
    responses((status = 201, description = "The quote.", body = QuoteBody))
)]
pub async fn request_quote(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<QuoteRequest>,
) -> Result<HttpResponse, AppError> {
    let QuoteRequest { pickup, dropoff, mode, currency } = body.into_inner();
    let (pickup, dropoff) = (point(pickup, "pickup")?, point(dropoff, "dropoff")?);
    let currency = Currency::parse(&currency)?;
    let answer =
        state.actors.mobility.quote(&principal.subject, pickup, dropoff, Mode::parse(&mode)?, currency).await?;
    Ok(HttpResponse::Created().json(QuoteBody::from(&answer)))
}
