//! `/api/v1/esg`: activities the caller reports, and their footprint and score. Handlers parse
//! input and call the [`EsgClient`]; the domain's rules answer refusals with their codes.
//!
//! [`EsgClient`]: crate::actors::esg::EsgClient

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    json::Json,
    privacy::{may_read_personal_data_of, SubjectPath},
    state::AppState,
};
use crate::{
    actors::esg::{client::Overview, leaderboards::Membership},
    adapters::esg::{Activity, Month, Place, PAGE_MAX},
    auth::Principal,
    domain::{
        esg::{
            leaderboard::{pseudonym, Period},
            Component, Score,
        },
        idempotency::IdempotencyKey,
    },
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        (
            "reportActivity",
            &[
                UnknownActivityType,
                InvalidDistance,
                DateOutOfRange,
                DuplicateActivity,
                IdempotencyKeyReused,
                InvalidParameter,
                PrivacyUnavailable,
            ],
        ),
        ("getMyEsg", &[PrivacyUnavailable]),
        ("listMyActivities", &[PageTooLarge, InvalidCursor, PageBeyondEnd, PrivacyUnavailable]),
        ("getSubjectEsg", &[InvalidParameter, NotOwner, ReasonRequired, PrivacyUnavailable, AuditUnavailable]),
        ("setLeaderboardMembership", &[InvalidParameter]),
        ("getLeaderboardMembership", &[]),
        ("getLeaderboard", &[InvalidParameter, DateOutOfRange, PageTooLarge]),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/esg/activities").route(web::post().to(report_activity)))
        .service(web::resource("/esg/me").route(web::get().to(get_mine)))
        .service(web::resource("/esg/me/activities").route(web::get().to(list_mine)))
        .service(web::resource("/esg/subjects/{subject}").route(web::get().to(get_subject)))
        .service(
            web::resource("/esg/me/leaderboard")
                .route(web::get().to(get_membership))
                .route(web::put().to(set_membership)),
        )
        .service(web::resource("/esg/leaderboards/{period}").route(web::get().to(get_board)));
}

/// An activity type a user may report.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportableActivity)]
pub enum ReportableBody {
    /// On foot.
    Walk,
    /// A bicycle.
    Bike,
    /// An electric-assisted bicycle.
    EBike,
    /// An electric kick scooter.
    EScooter,
    /// A local bus.
    Bus,
    /// A long-distance coach.
    Coach,
    /// A tram or light rail.
    Tram,
    /// An underground or metro.
    Metro,
    /// A train.
    Train,
}

/// An activity to report.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ActivityReport)]
#[serde(deny_unknown_fields)]
pub struct ActivityRequest {
    /// How the caller travelled (another name, a ride's type among them, is 400
    /// `unknown_activity_type`: rides are credited from their own events).
    #[serde(rename = "type")]
    #[schema(value_type = ReportableBody)]
    pub kind: String,
    /// The day (UTC): today or up to 365 days back (otherwise 422 `date_out_of_range`).
    #[schema(value_type = String, format = Date, example = "2026-12-01")]
    pub date: NaiveDate,
    /// Kilometres: above 0, at most 2000 (otherwise 422 `invalid_distance`).
    #[schema(exclusive_minimum = 0.0, maximum = 2000.0, example = 12.5)]
    pub distance_km: f64,
}

/// An activity as recorded, with its footprint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgActivity)]
pub struct ActivityBody {
    /// Its id (a completed ride's event, or the report).
    pub id: Uuid,
    /// `ride` or `report`.
    pub source: String,
    /// The activity type (`ride_<mode>` for rides).
    #[serde(rename = "type")]
    pub kind: String,
    /// The day.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// Kilometres (to the metre).
    pub distance_km: f64,
    /// Emitted, kg CO2e (to the gram).
    pub co2e_kg: f64,
    /// What an average petrol car would have emitted over the same distance, kg.
    pub baseline_kg: f64,
    /// Avoided against that car, kg (0 unless the type is low carbon).
    pub avoided_kg: f64,
    /// Who published the emission factor.
    pub factor_source: String,
    /// Which release of it.
    pub factor_version: String,
    /// Who answered for it: `provider`, `cache`, `simulator`, `fallback` (the shipped table,
    /// the provider having failed) or `none` (nothing emitted in use).
    pub factor_route: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

fn kg(grams: u64) -> f64 {
    grams as f64 / 1000.0
}

impl From<&Activity> for ActivityBody {
    fn from(a: &Activity) -> Self {
        Self {
            id: a.id,
            source: a.origin.as_str().to_owned(),
            kind: a.report.kind.as_str().to_owned(),
            date: a.report.date,
            distance_km: f64::from(a.report.distance_m) / 1000.0,
            co2e_kg: kg(a.footprint.co2e_g),
            baseline_kg: kg(a.footprint.baseline_g),
            avoided_kg: kg(a.footprint.avoided_g),
            factor_source: a.factor.source.clone(),
            factor_version: a.factor.version.clone(),
            factor_route: a.factor.route.clone(),
            recorded_at: a.recorded_at,
        }
    }
}

/// A component of a score.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgComponent)]
pub struct ComponentBody {
    /// `environmental`, `social` or `governance`.
    pub part: String,
    /// 0 to 100, or `null` without data.
    pub value: Option<u8>,
    /// Its weight in the total when it has a value.
    pub weight: u64,
    /// The figures it was computed from.
    #[schema(value_type = Object)]
    pub inputs: BTreeMap<String, u64>,
    /// Why it has no value, when it has none.
    pub missing: Option<String>,
}

impl From<&Component> for ComponentBody {
    fn from(c: &Component) -> Self {
        let part = serde_json::to_value(c.part).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        Self { part, value: c.value, weight: c.weight, inputs: c.inputs.clone(), missing: c.missing.clone() }
    }
}

/// A score with its components explained.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgScore)]
pub struct ScoreBody {
    /// The method that made it (see `docs/esg-method.md`).
    pub method_version: String,
    /// The day it is for.
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// 0 to 100.
    pub total: u8,
    /// Environmental, social and governance.
    pub components: Vec<ComponentBody>,
}

impl From<&Score> for ScoreBody {
    fn from(s: &Score) -> Self {
        Self {
            method_version: s.method_version.clone(),
            as_of: s.as_of,
            total: s.total,
            components: s.components.iter().map(ComponentBody::from).collect(),
        }
    }
}

/// Totals over every activity recorded.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = EsgTotals)]
pub struct TotalsBody {
    /// Activities.
    pub activities: u64,
    /// Kilometres.
    pub distance_km: f64,
    /// Emitted, kg CO2e.
    pub co2e_kg: f64,
    /// Avoided, kg CO2e.
    pub avoided_kg: f64,
}

/// One month's totals, every type together.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgMonth)]
pub struct MonthBody {
    /// `YYYY-MM`.
    pub month: String,
    /// Activities.
    pub activities: u64,
    /// Kilometres.
    pub distance_km: f64,
    /// Emitted, kg CO2e.
    pub co2e_kg: f64,
    /// Avoided, kg CO2e.
    pub avoided_kg: f64,
}

/// A subject's ESG overview.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgOverview)]
pub struct OverviewBody {
    /// The latest score, `null` before the first activity.
    pub score: Option<ScoreBody>,
    /// Totals.
    pub totals: TotalsBody,
    /// The last twelve months with activity, oldest first: the trend.
    pub trend: Vec<MonthBody>,
}

fn trend(months: &[Month]) -> Vec<MonthBody> {
    let mut by_month: BTreeMap<NaiveDate, (u64, u64, u64, u64)> = BTreeMap::new();
    for m in months {
        let t = by_month.entry(m.month).or_default();
        *t = (t.0 + m.activities, t.1 + m.distance_m, t.2 + m.co2e_g, t.3 + m.avoided_g);
    }
    by_month
        .into_iter()
        .map(|(month, (activities, distance, co2e, avoided))| MonthBody {
            month: month.format("%Y-%m").to_string(),
            activities,
            distance_km: distance as f64 / 1000.0,
            co2e_kg: kg(co2e),
            avoided_kg: kg(avoided),
        })
        .collect()
}

impl From<&Overview> for OverviewBody {
    fn from(o: &Overview) -> Self {
        let totals = o.state.as_ref().map_or_else(TotalsBody::default, |s| TotalsBody {
            activities: s.totals.activities,
            distance_km: s.totals.distance_m as f64 / 1000.0,
            co2e_kg: kg(s.totals.co2e_g),
            avoided_kg: kg(s.totals.avoided_g),
        });
        Self {
            score: o.state.as_ref().and_then(|s| s.score.as_ref()).map(ScoreBody::from),
            totals,
            trend: trend(&o.months),
        }
    }
}

/// A report recorded, and the score after it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ActivityRecorded)]
pub struct RecordedBody {
    /// The activity.
    pub activity: ActivityBody,
    /// The caller's score after it; `null` on a replay.
    pub score: Option<ScoreBody>,
}

/// Report an activity: it is priced at once (emission factor of its type, against an average
/// petrol car) and the caller's score recomputed. With an `Idempotency-Key`, a retry answers the
/// activity recorded first (`Idempotent-Replayed: true`).
#[utoipa::path(
    post,
    path = "/api/v1/esg/activities",
    operation_id = "reportActivity",
    tag = "esg",
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 printable ASCII characters: a retry with the same key and body replays the first answer.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]{1,255}$")),
    request_body(content = ActivityRequest, example = json!({"type": "train", "date": "2026-12-01", "distance_km": 42.5})),
    responses(
        (status = 201, description = "Recorded.", body = RecordedBody),
        (status = 200, description = "Recorded before under this key: the first answer's activity.", body = RecordedBody)
    )
)]
pub async fn report_activity(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: Json<ActivityRequest>,
) -> Result<HttpResponse, AppError> {
    let ActivityRequest { kind, date, distance_km } = body.into_inner();
    let key = match req.headers().get("idempotency-key") {
        Some(v) => Some(IdempotencyKey::parse(v.to_str().unwrap_or("\u{0}"))?),
        None => None,
    };
    let request_id = crate::telemetry::current_request_id().map(|r| r.as_str().to_owned());
    let reported = state.actors.esg.report(&principal.subject, &kind, date, distance_km, key, request_id).await?;
    let body = RecordedBody {
        activity: ActivityBody::from(&reported.activity),
        score: reported.state.as_ref().and_then(|s| s.score.as_ref()).map(ScoreBody::from),
    };
    Ok(if reported.replayed {
        HttpResponse::Ok().insert_header(("Idempotent-Replayed", "true")).json(body)
    } else {
        HttpResponse::Created().json(body)
    })
}

/// The caller's score, its components, totals and monthly trend.
#[utoipa::path(
    get,
    path = "/api/v1/esg/me",
    operation_id = "getMyEsg",
    tag = "esg",
    responses((status = 200, description = "The overview.", body = OverviewBody))
)]
pub async fn get_mine(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, AppError> {
    let overview = state.actors.esg.overview(&principal.subject).await?;
    Ok(HttpResponse::Ok().json(OverviewBody::from(&overview)))
}

/// Query of the activities listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivitiesQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$"
    )]
    pub cursor: Option<String>,
}

/// A page of activities.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EsgActivityPage)]
pub struct ActivityPage {
    /// Latest recorded first.
    pub items: Vec<ActivityBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The caller's activities, latest recorded first.
#[utoipa::path(
    get,
    path = "/api/v1/esg/me/activities",
    operation_id = "listMyActivities",
    tag = "esg",
    params(ActivitiesQuery),
    responses((status = 200, description = "A page of activities.", body = ActivityPage))
)]
pub async fn list_mine(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ActivitiesQuery>,
) -> Result<HttpResponse, AppError> {
    let ActivitiesQuery { limit, cursor } = query.into_inner();
    let scope = ["esg.activities", &principal.subject];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let found = state.actors.esg.activities(&principal.subject, page.after, page.fetch()).await?;
    let (found, next_cursor) = page.finish(found, |a| (a.recorded_at, a.id))?;
    Ok(HttpResponse::Ok().json(ActivityPage { items: found.iter().map(ActivityBody::from).collect(), next_cursor }))
}

/// Another subject's overview (`admin`, with a reason in `X-Access-Reason`; audited).
#[utoipa::path(
    get,
    path = "/api/v1/esg/subjects/{subject}",
    operation_id = "getSubjectEsg",
    tag = "esg",
    params(SubjectPath, ("X-Access-Reason" = Option<String>, Header, description = "Why the data is read (required unless the subject is the caller); audited.", min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$")),
    responses((status = 200, description = "The overview.", body = OverviewBody))
)]
pub async fn get_subject(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<SubjectPath>,
) -> Result<HttpResponse, AppError> {
    let subject = path.into_inner().subject;
    may_read_personal_data_of(&state, &req, &principal, &subject).await?;
    let overview = state.actors.esg.overview(&subject).await?;
    Ok(HttpResponse::Ok().json(OverviewBody::from(&overview)))
}

/// Joining or leaving the leaderboards.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LeaderboardMembershipRequest)]
#[serde(deny_unknown_fields)]
pub struct MembershipRequest {
    /// `true` to be ranked (under a pseudonym), `false` to be taken off every board.
    pub opt_in: bool,
    /// The community to compete in as well: 1 to 32 of `a-z`, `0-9`, `_` and `-` (another name is
    /// 400 `invalid_parameter`).
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9][a-z0-9_-]{0,31}$", example = "paris-11")]
    pub community: Option<String>,
}

/// A subject's membership of the leaderboards.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LeaderboardMembership)]
pub struct MembershipBody {
    /// Whether they are ranked.
    pub opt_in: bool,
    /// Their community, if any.
    pub community: Option<String>,
    /// How the boards show them (derived from their blind index: it names no one).
    pub member: String,
}

impl From<Membership> for MembershipBody {
    fn from(m: Membership) -> Self {
        Self { opt_in: m.opted_in, community: m.community, member: m.pseudonym }
    }
}

/// Join or leave the leaderboards (opt-in; only members are ranked).
#[utoipa::path(
    put,
    path = "/api/v1/esg/me/leaderboard",
    operation_id = "setLeaderboardMembership",
    tag = "esg",
    request_body(content = MembershipRequest, example = json!({"opt_in": true, "community": "paris-11"})),
    responses((status = 200, description = "The membership.", body = MembershipBody))
)]
pub async fn set_membership(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<MembershipRequest>,
) -> Result<HttpResponse, AppError> {
    let MembershipRequest { opt_in, community } = body.into_inner();
    let membership = state.actors.esg.set_membership(&principal.subject, opt_in, community.as_deref()).await?;
    Ok(HttpResponse::Ok().json(MembershipBody::from(membership)))
}

/// The caller's membership of the leaderboards.
#[utoipa::path(
    get,
    path = "/api/v1/esg/me/leaderboard",
    operation_id = "getLeaderboardMembership",
    tag = "esg",
    responses((status = 200, description = "The membership.", body = MembershipBody))
)]
pub async fn get_membership(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, AppError> {
    let membership = state.actors.esg.membership(&principal.subject).await?;
    Ok(HttpResponse::Ok().json(MembershipBody::from(membership)))
}

/// The month of a board.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PeriodPath {
    /// `YYYY-MM`: this month or one of the twelve before (another month is 422
    /// `date_out_of_range`).
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$", example = "2026-12")]
    pub period: String,
}

/// Query of a board.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Only the members of this community.
    #[param(min_length = 1, max_length = 32, pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    pub community: Option<String>,
    /// How many places, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// A place on a board.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LeaderboardPlace)]
pub struct PlaceBody {
    /// 1 for the most avoided.
    pub rank: u64,
    /// The member's pseudonym.
    pub member: String,
    /// kg CO2e avoided in the month.
    pub avoided_kg: f64,
    /// Whether it is the caller.
    pub you: bool,
}

/// A month's board.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Leaderboard)]
pub struct BoardBody {
    /// `YYYY-MM`.
    pub period: String,
    /// The community, or `null` for all members.
    pub community: Option<String>,
    /// The top places.
    pub places: Vec<PlaceBody>,
    /// The caller's place, when they are a member with activity that month.
    pub me: Option<PlaceBody>,
}

/// The members who avoided the most CO2e in a month, overall or in a community.
#[utoipa::path(
    get,
    path = "/api/v1/esg/leaderboards/{period}",
    operation_id = "getLeaderboard",
    tag = "esg",
    params(PeriodPath, BoardQuery),
    responses((status = 200, description = "The board.", body = BoardBody))
)]
pub async fn get_board(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<PeriodPath>,
    query: web::Query<BoardQuery>,
) -> Result<HttpResponse, AppError> {
    let period = Period::parse(&path.into_inner().period, Utc::now().date_naive())?;
    let BoardQuery { community, limit } = query.into_inner();
    let limit = limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(AppError::client(ErrorCode::PageTooLarge, "limit must be between 1 and 100").with("field", "limit"));
    }
    let board = state.actors.esg.board(&principal.subject, period, community.as_deref(), limit).await?;
    let me = board.me.as_ref().map(|p| p.member.clone());
    let place = |p: &Place| PlaceBody {
        rank: p.rank,
        member: pseudonym(&p.member),
        avoided_kg: kg(p.avoided_g),
        you: Some(&p.member) == me.as_ref(),
    };
    Ok(HttpResponse::Ok().json(BoardBody {
        period: board.period.label(),
        community: board.community.clone(),
        places: board.places.iter().map(place).collect(),
        me: board.me.as_ref().map(place),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::esg::ActivityType;

    #[test]
    fn the_schema_lists_exactly_the_reportable_types() {
        let names: Vec<String> = [
            ReportableBody::Walk,
            ReportableBody::Bike,
            ReportableBody::EBike,
            ReportableBody::EScooter,
            ReportableBody::Bus,
            ReportableBody::Coach,
            ReportableBody::Tram,
            ReportableBody::Metro,
            ReportableBody::Train,
        ]
        .iter()
        .map(|b| serde_json::to_value(b).unwrap().as_str().unwrap().to_owned())
        .collect();
        let reportable: Vec<&str> = ActivityType::ALL.iter().filter(|t| !t.is_ride()).map(|t| t.as_str()).collect();
        assert_eq!(names, reportable);
    }
}
