//! `/api/v1/mobility/rides`: requesting a ride from a quote, its actions (accept, decline,
//! arrive, start, complete, cancel, rate: each idempotent by `Idempotency-Key`), one ride with its
//! timeline, and the caller's rides as rider or as driver, paged.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::bodies::{ModeBody, PointBody};
use crate::{
    actors::mobility::{RideAnswer, RideCommand, Role},
    adapters::mobility::ride_store::StoredRide,
    auth::Principal,
    domain::{
        fintech::{Currency, WalletId},
        idempotency::IdempotencyKey,
        mobility::{MobilityError, PAGE_MAX},
    },
    error::{AppError, ErrorCode},
    http::{
        fintech::{CurrencyCode, IdempotencyKeyHeader},
        json::{self, Json},
        state::AppState,
    },
};

/// Page size when the query names none.
pub const PAGE_DEFAULT: usize = 20;

/// A ride to request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RideRequest {
    /// The quote it uses (the rider's, not expired, not used before).
    pub quote: Uuid,
    /// The rider's wallet, in the quote's currency: the fare is held on it until the ride is
    /// paid or called off.
    pub wallet: Uuid,
}

/// The route actually driven.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Metres.
    #[serde(deserialize_with = "json::integer")]
    #[schema(minimum = 0, maximum = 2_000_000)]
    pub distance_m: i64,
    /// Seconds.
    #[serde(deserialize_with = "json::integer")]
    #[schema(minimum = 0, maximum = 172_800)]
    pub duration_s: i64,
}

/// A cancellation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, optionally (at most 500 characters).
    #[schema(max_length = 500, nullable = true)]
    #[serde(default)]
    pub reason: Option<String>,
}

/// A rating of the other party.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRequest {
    /// 1 to 5.
    #[serde(deserialize_with = "json::integer")]
    #[schema(minimum = 1, maximum = 5)]
    pub score: i64,
}

/// Path of a ride.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RidePath {
    /// Ride id (a UUID, hyphenated).
    #[param(value_type = Uuid)]
    pub id: String,
}

/// Whose rides to list.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleParam {
    /// The rides the caller requested.
    Rider,
    /// The rides offered to or taken by the caller as a driver.
    Driver,
}

/// Query of the rides listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RidesQuery {
    /// `rider` (default) or `driver`.
    #[param(inline)]
    pub role: Option<RoleParam>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$"
    )]
    pub cursor: Option<String>,
}

/// A ride's figures as quoted.
#[derive(Debug, Serialize, ToSchema)]
pub struct RideQuote {
    /// The quote.
    pub id: Uuid,
    /// Quoted fare, minor units.
    pub fare: i64,
    /// Currency of the fare.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// Planned route, metres.
    pub distance_m: u64,
    /// Planned route, seconds.
    pub duration_s: u64,
    /// Estimated emissions, grams CO2e.
    #[schema(nullable = true)]
    pub co2e_g: Option<u64>,
}

/// A step of a ride.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineBody {
    /// The state reached.
    pub state: String,
    /// When.
    pub at: DateTime<Utc>,
    /// `rider`, `driver` or `system`.
    pub by: String,
    /// A note (`driver_cancelled` when the driver gave the ride back).
    #[schema(nullable = true)]
    pub note: Option<String>,
}

/// How a ride was called off.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationBody {
    /// `rider` or `driver`.
    pub by: String,
    /// The fee charged, minor units (0 within the grace period).
    pub fee: i64,
    /// Why.
    #[schema(nullable = true)]
    pub reason: Option<String>,
}

/// A ride as its parties see it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ride)]
pub struct RideBody {
    /// Identity.
    pub id: Uuid,
    /// `requested`, `driver_assigned`, `driver_arriving`, `in_progress`, `completed`, `cancelled`
    /// or `expired`.
    pub state: String,
    /// The mode.
    pub mode: ModeBody,
    /// The rider (subject); `null` once erased.
    #[schema(nullable = true)]
    pub rider: Option<String>,
    /// Whether the rider's personal data was erased.
    pub erased: bool,
    /// The driver, once one took it.
    #[schema(nullable = true)]
    pub driver: Option<Uuid>,
    /// Where it starts; `null` once erased or past its retention.
    #[schema(nullable = true)]
    pub pickup: Option<PointBody>,
    /// Where it ends; `null` once erased or past its retention.
    #[schema(nullable = true)]
    pub dropoff: Option<PointBody>,
    /// The quote it was requested from.
    pub quote: RideQuote,
    /// The wallet the fare is held on.
    pub wallet: Uuid,
    /// Final fare, once completed (the actual route's, at most the quote plus the tolerance).
    #[schema(nullable = true)]
    pub fare: Option<i64>,
    /// The platform's commission on it.
    #[schema(nullable = true)]
    pub commission: Option<i64>,
    /// The route actually driven, metres.
    #[schema(nullable = true)]
    pub distance_m: Option<u64>,
    /// The route actually driven, seconds.
    #[schema(nullable = true)]
    pub duration_s: Option<u64>,
    /// How it was called off.
    #[schema(nullable = true)]
    pub cancellation: Option<CancellationBody>,
    /// `held`, `captured`, `released` or `failed`.
    pub payment: String,
    /// Why a payment step failed (the hold was then released).
    #[schema(nullable = true)]
    pub payment_error: Option<String>,
    /// The rider's rating of the driver.
    #[schema(nullable = true)]
    pub rider_rating: Option<u8>,
    /// The driver's rating of the rider.
    #[schema(nullable = true)]
    pub driver_rating: Option<u8>,
    /// Every change of state, oldest first.
    pub timeline: Vec<TimelineBody>,
    /// Changes so far.
    pub version: i64,
    /// Requested at.
    pub requested_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredRide> for RideBody {
    fn from(s: &StoredRide) -> Self {
        let r = &s.ride;
        Self {
            id: r.id,
            state: r.state.as_str().to_owned(),
            mode: r.quote.mode.into(),
            rider: (!s.erased).then(|| r.rider.clone()),
            erased: s.erased,
            driver: r.driver.map(|d| d.0),
            pickup: s.points.then(|| r.quote.pickup.into()),
            dropoff: s.points.then(|| r.quote.dropoff.into()),
            quote: RideQuote {
                id: r.quote.id,
                fare: r.quote.fare,
                currency: r.quote.currency,
                distance_m: r.quote.distance_m,
                duration_s: r.quote.duration_s,
                co2e_g: r.quote.co2e_g,
            },
            wallet: r.rider_wallet.0,
            fare: r.fare,
            commission: r.commission,
            distance_m: r.distance_m,
            duration_s: r.duration_s,
            cancellation: r.cancellation.as_ref().map(|c| CancellationBody {
                by: c.by.as_str().to_owned(),
                fee: c.fee,
                reason: c.reason.clone(),
            }),
            payment: r.payment.as_str().to_owned(),
            payment_error: r.payment_error.clone(),
            rider_rating: r.rider_rating,
            driver_rating: r.driver_rating,
            timeline: r
                .timeline
                .iter()
                .map(|t| TimelineBody {
                    state: t.state.as_str().to_owned(),
                    at: t.at,
                    by: t.by.as_str().to_owned(),
                    note: t.note.clone(),
                })
                .collect(),
            version: r.version,
            requested_at: r.requested_at,
            updated_at: r.updated_at,
        }
    }
}

/// A page of rides, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RidePage {
    /// Rides.
    pub items: Vec<RideBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(nullable = true)]
    pub next_cursor: Option<String>,
}

fn ride_id(raw: &str) -> Result<Uuid, AppError> {
    let parsed = (raw.len() == 36).then(|| Uuid::parse_str(raw).ok()).flatten();
    parsed.ok_or_else(|| AppError::client(ErrorCode::InvalidParameter, "the ride id is not a UUID").with("field", "id"))
}

fn respond(status: actix_web::http::StatusCode, answer: &RideAnswer) -> HttpResponse {
    let mut res = HttpResponse::build(status).json(RideBody::from(&answer.ride));
    if answer.replayed {
        res.headers_mut()
            .insert(header::HeaderName::from_static("idempotent-replayed"), header::HeaderValue::from_static("true"));
    }
    res
}

/// Request a ride from a quote: the fare is held on the wallet, then drivers are offered it.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides",
    operation_id = "requestRide",
    tag = "mobility",
    params(IdempotencyKeyHeader),
    request_body(content = RideRequest, example = json!({"quote": "0193b1d2-7f3a-7c1e-9a4b-2f6d8e0c1a2b", "wallet": "0193b1d2-7f3a-7c1e-9a4b-2f6d8e0c1a2c"})),
    responses((status = 201, description = "The ride, requested.", body = RideBody))
)]
pub async fn request_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    body: Json<RideRequest>,
) -> Result<HttpResponse, AppError> {
    let RideRequest { quote, wallet } = body.into_inner();
    let answer = state.actors.mobility.request_ride(&principal.subject, quote, WalletId(wallet), key.0).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &answer))
}

/// One ride with its timeline: its rider's, or a driver's it was offered to.
#[utoipa::path(
    get,
    path = "/api/v1/mobility/rides/{id}",
    operation_id = "getRide",
    tag = "mobility",
    params(RidePath),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn get_ride(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<RidePath>,
) -> Result<HttpResponse, AppError> {
    let id = ride_id(&path.id)?;
    let ride = state.actors.mobility.ride(&principal.subject, id).await?;
    Ok(HttpResponse::Ok().json(RideBody::from(&ride)))
}

/// The caller's rides, as rider (default) or as driver, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/mobility/rides",
    operation_id = "listRides",
    tag = "mobility",
    params(RidesQuery),
    responses((status = 200, description = "A page of rides.", body = RidePage))
)]
pub async fn list_rides(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<RidesQuery>,
) -> Result<HttpResponse, AppError> {
    let RidesQuery { role, limit, cursor } = query.into_inner();
    let as_driver = matches!(role, Some(RoleParam::Driver));
    let scope = ["mobility.rides", &principal.subject, if as_driver { "driver" } else { "rider" }];
    let page = state.cursors.page(&scope, limit, ("limit", PAGE_DEFAULT, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let role = if as_driver {
        let driver = state.actors.mobility.driver_id(&principal.subject).await?;
        Role::Driver(driver.ok_or(MobilityError::DriverNotFound)?)
    } else {
        Role::Rider
    };
    let rides = state.actors.mobility.rides(&principal.subject, role, page.after, page.fetch()).await?;
    let (rides, next_cursor) = page.finish(rides, |r| (r.ride.requested_at, r.ride.id))?;
    Ok(HttpResponse::Ok().json(RidePage { items: rides.iter().map(RideBody::from).collect(), next_cursor }))
}

async fn act(
    state: &AppState,
    principal: &Principal,
    path: &RidePath,
    key: IdempotencyKey,
    command: RideCommand,
) -> Result<HttpResponse, AppError> {
    let id = ride_id(&path.id)?;
    let answer = state.actors.mobility.act(&principal.subject, id, command, key).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &answer))
}

/// A driver takes the ride offered to them.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/accept",
    operation_id = "acceptRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn accept_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
) -> Result<HttpResponse, AppError> {
    act(&state, &principal, &path, key.0, RideCommand::Accept).await
}

/// A driver turns down the ride offered to them; it is offered to the next.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/decline",
    operation_id = "declineRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn decline_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
) -> Result<HttpResponse, AppError> {
    act(&state, &principal, &path, key.0, RideCommand::Decline).await
}

/// The driver is at the pickup.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/arrive",
    operation_id = "arriveRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn arrive_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
) -> Result<HttpResponse, AppError> {
    act(&state, &principal, &path, key.0, RideCommand::Arrive).await
}

/// The rider is on board.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/start",
    operation_id = "startRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn start_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
) -> Result<HttpResponse, AppError> {
    act(&state, &principal, &path, key.0, RideCommand::Start).await
}

/// The ride is over: the final fare comes from the route driven (at most the quote plus the
/// tolerance), is captured from the hold, and the driver's share is paid out.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/complete",
    operation_id = "completeRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    request_body(content = CompleteRequest, example = json!({"distance_m": 5200, "duration_s": 840})),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn complete_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
    body: Json<CompleteRequest>,
) -> Result<HttpResponse, AppError> {
    let CompleteRequest { distance_m, duration_s } = body.into_inner();
    let distance_m = u64::try_from(distance_m).ok().filter(|d| *d <= 2_000_000).ok_or_else(|| {
        AppError::client(ErrorCode::InvalidParameter, "distance_m must be 0 to 2000000").with("field", "distance_m")
    })?;
    let duration_s = u64::try_from(duration_s).ok().filter(|d| *d <= 172_800).ok_or_else(|| {
        AppError::client(ErrorCode::InvalidParameter, "duration_s must be 0 to 172800").with("field", "duration_s")
    })?;
    act(&state, &principal, &path, key.0, RideCommand::Complete { distance_m, duration_s }).await
}

/// Call the ride off: the rider before pickup (free within the grace period, a fee after), or
/// the driver before pickup (the ride is offered to another driver).
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/cancel",
    operation_id = "cancelRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    request_body(content = CancelRequest, example = json!({"reason": "plans changed"})),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn cancel_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
    body: Json<CancelRequest>,
) -> Result<HttpResponse, AppError> {
    let reason = body.into_inner().reason;
    act(&state, &principal, &path, key.0, RideCommand::Cancel { reason }).await
}

/// Rate the other party of a completed ride, once, 1 to 5.
#[utoipa::path(
    post,
    path = "/api/v1/mobility/rides/{id}/rate",
    operation_id = "rateRide",
    tag = "mobility",
    params(RidePath, IdempotencyKeyHeader),
    request_body(content = RateRequest, example = json!({"score": 5})),
    responses((status = 200, description = "The ride.", body = RideBody))
)]
pub async fn rate_ride(
    state: web::Data<AppState>,
    principal: Principal,
    key: IdempotencyKeyHeader,
    path: web::Path<RidePath>,
    body: Json<RateRequest>,
) -> Result<HttpResponse, AppError> {
    let score = u8::try_from(body.into_inner().score).map_err(|_| AppError::from(MobilityError::InvalidRating))?;
    act(&state, &principal, &path, key.0, RideCommand::Rate { score }).await
}

/// Every ride route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/mobility/rides").route(web::get().to(list_rides)).route(web::post().to(request_ride)))
        .service(web::resource("/mobility/rides/{id}").route(web::get().to(get_ride)))
        .service(web::resource("/mobility/rides/{id}/accept").route(web::post().to(accept_ride)))
        .service(web::resource("/mobility/rides/{id}/decline").route(web::post().to(decline_ride)))
        .service(web::resource("/mobility/rides/{id}/arrive").route(web::post().to(arrive_ride)))
        .service(web::resource("/mobility/rides/{id}/start").route(web::post().to(start_ride)))
        .service(web::resource("/mobility/rides/{id}/complete").route(web::post().to(complete_ride)))
        .service(web::resource("/mobility/rides/{id}/cancel").route(web::post().to(cancel_ride)))
        .service(web::resource("/mobility/rides/{id}/rate").route(web::post().to(rate_ride)));
}
