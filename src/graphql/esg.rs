//! ESG over GraphQL: the caller's score, totals and trend, their activities, and reports, through
//! the same client, rules and error codes (`extensions.code`) as the REST API. An administrator
//! reads another subject's overview with a reason, audited.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, NaiveDate, Utc};

use super::caller::Caller;
use crate::{
    actors::esg::client::Overview,
    adapters::esg::{Activity, Place, PAGE_MAX},
    domain::{
        esg::{
            leaderboard::{pseudonym, Period},
            ActivityType,
        },
        idempotency::IdempotencyKey,
    },
    error::{AppError, ErrorCode},
    http::{
        esg::{ActivityBody, OverviewBody},
        privacy::checked_subject,
        state::AppState,
    },
};

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

/// An activity type a user may report.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReportableActivity")]
pub enum ReportableValue {
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

impl From<ReportableValue> for ActivityType {
    fn from(v: ReportableValue) -> Self {
        match v {
            ReportableValue::Walk => Self::Walk,
            ReportableValue::Bike => Self::Bike,
            ReportableValue::EBike => Self::EBike,
            ReportableValue::EScooter => Self::EScooter,
            ReportableValue::Bus => Self::Bus,
            ReportableValue::Coach => Self::Coach,
            ReportableValue::Tram => Self::Tram,
            ReportableValue::Metro => Self::Metro,
            ReportableValue::Train => Self::Train,
        }
    }
}

/// An activity to report.
#[derive(InputObject)]
#[graphql(name = "ActivityInput")]
pub struct ActivityInput {
    /// How the caller travelled.
    #[graphql(name = "type")]
    pub kind: ReportableValue,
    /// The day (UTC): today or up to 365 days back.
    pub date: NaiveDate,
    /// Kilometres: above 0, at most 2000.
    pub distance_km: f64,
}

/// An activity as recorded, with its footprint.
#[derive(SimpleObject)]
#[graphql(name = "EsgActivity")]
pub struct EsgActivity {
    /// Its id.
    pub id: ID,
    /// `ride` or `report`.
    pub source: String,
    /// The activity type.
    #[graphql(name = "type")]
    pub kind: String,
    /// The day.
    pub date: NaiveDate,
    /// Kilometres.
    pub distance_km: f64,
    /// Emitted, kg CO2e.
    #[graphql(name = "co2eKg")]
    pub co2e_kg: f64,
    /// An average petrol car over the same distance, kg.
    pub baseline_kg: f64,
    /// Avoided against that car, kg.
    pub avoided_kg: f64,
    /// Who published the emission factor.
    pub factor_source: String,
    /// Which release of it.
    pub factor_version: String,
    /// provider, cache, simulator, fallback (the shipped table) or none.
    pub factor_route: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

impl From<&Activity> for EsgActivity {
    fn from(a: &Activity) -> Self {
        let b = ActivityBody::from(a);
        Self {
            id: ID(b.id.to_string()),
            source: b.source,
            kind: b.kind,
            date: b.date,
            distance_km: b.distance_km,
            co2e_kg: b.co2e_kg,
            baseline_kg: b.baseline_kg,
            avoided_kg: b.avoided_kg,
            factor_source: b.factor_source,
            factor_version: b.factor_version,
            factor_route: b.factor_route,
            recorded_at: b.recorded_at,
        }
    }
}

/// A component of a score.
#[derive(SimpleObject)]
#[graphql(name = "EsgComponent")]
pub struct EsgComponent {
    /// environmental, social or governance.
    pub part: String,
    /// 0 to 100, or null without data.
    pub value: Option<i32>,
    /// Its weight in the total when it has a value.
    pub weight: i32,
    /// The figures it was computed from, as JSON.
    pub inputs: async_graphql::Json<std::collections::BTreeMap<String, u64>>,
    /// Why it has no value, when it has none.
    pub missing: Option<String>,
}

/// A score with its components.
#[derive(SimpleObject)]
#[graphql(name = "EsgScore")]
pub struct EsgScore {
    /// The method that made it.
    pub method_version: String,
    /// The day it is for.
    pub as_of: NaiveDate,
    /// 0 to 100.
    pub total: i32,
    /// Environmental, social and governance.
    pub components: Vec<EsgComponent>,
}

/// Totals, or one month's.
#[derive(SimpleObject)]
#[graphql(name = "EsgTotals")]
pub struct EsgTotals {
    /// `YYYY-MM` for a month of the trend; null for the totals.
    pub month: Option<String>,
    /// Activities.
    pub activities: i64,
    /// Kilometres.
    pub distance_km: f64,
    /// Emitted, kg CO2e.
    #[graphql(name = "co2eKg")]
    pub co2e_kg: f64,
    /// Avoided, kg CO2e.
    pub avoided_kg: f64,
}

/// A subject's overview.
#[derive(SimpleObject)]
#[graphql(name = "EsgOverview")]
pub struct EsgOverview {
    /// The latest score, null before the first activity.
    pub score: Option<EsgScore>,
    /// Totals.
    pub totals: EsgTotals,
    /// The last twelve months with activity, oldest first.
    pub trend: Vec<EsgTotals>,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl From<&Overview> for EsgOverview {
    fn from(o: &Overview) -> Self {
        let b = OverviewBody::from(o);
        Self {
            score: b.score.map(|s| EsgScore {
                method_version: s.method_version,
                as_of: s.as_of,
                total: i32::from(s.total),
                components: s
                    .components
                    .into_iter()
                    .map(|c| EsgComponent {
                        part: c.part,
                        value: c.value.map(i32::from),
                        weight: i32::try_from(c.weight).unwrap_or(0),
                        inputs: async_graphql::Json(c.inputs),
                        missing: c.missing,
                    })
                    .collect(),
            }),
            totals: EsgTotals {
                month: None,
                activities: count(b.totals.activities),
                distance_km: b.totals.distance_km,
                co2e_kg: b.totals.co2e_kg,
                avoided_kg: b.totals.avoided_kg,
            },
            trend: b
                .trend
                .into_iter()
                .map(|m| EsgTotals {
                    month: Some(m.month),
                    activities: count(m.activities),
                    distance_km: m.distance_km,
                    co2e_kg: m.co2e_kg,
                    avoided_kg: m.avoided_kg,
                })
                .collect(),
        }
    }
}

/// A page of activities.
#[derive(SimpleObject)]
#[graphql(name = "EsgActivityPage")]
pub struct EsgActivityPage {
    /// Latest recorded first.
    pub items: Vec<EsgActivity>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A report recorded.
#[derive(SimpleObject)]
#[graphql(name = "ActivityRecorded")]
pub struct ActivityRecorded {
    /// The activity.
    pub activity: EsgActivity,
    /// Whether it was recorded before under the same idempotency key.
    pub replayed: bool,
}

/// A place on a leaderboard.
#[derive(SimpleObject)]
#[graphql(name = "LeaderboardPlace")]
pub struct BoardPlace {
    /// 1 for the most avoided.
    pub rank: i64,
    /// The member's pseudonym.
    pub member: String,
    /// kg CO2e avoided in the month.
    pub avoided_kg: f64,
    /// Whether it is the caller.
    pub you: bool,
}

/// A month's leaderboard.
#[derive(SimpleObject)]
#[graphql(name = "Leaderboard")]
pub struct Board {
    /// `YYYY-MM`.
    pub period: String,
    /// The community, or null for all members.
    pub community: Option<String>,
    /// The top places.
    pub places: Vec<BoardPlace>,
    /// The caller's place, when they are on it.
    pub me: Option<BoardPlace>,
}

/// A subject's membership of the leaderboards.
#[derive(SimpleObject)]
#[graphql(name = "LeaderboardMembership")]
pub struct Membership {
    /// Whether they are ranked.
    pub opt_in: bool,
    /// Their community, if any.
    pub community: Option<String>,
    /// How the boards show them.
    pub member: String,
}

/// ESG's queries.
#[derive(Default)]
pub struct EsgQuery;

#[Object]
impl EsgQuery {
    /// The caller's ESG overview (scope `esg:read`). An administrator reading another subject's
    /// names them in `subject` and gives a `reason` (or the `X-Access-Reason` header), which is
    /// audited.
    async fn esg(&self, ctx: &Context<'_>, subject: Option<String>, reason: Option<String>) -> Result<EsgOverview> {
        let caller = Caller::of(ctx)?;
        caller.read("esg", "esg:read").await.map_err(|e| e.extend())?;
        let subject = subject.unwrap_or_else(|| caller.principal.subject.clone());
        if subject != caller.principal.subject {
            checked_subject(&subject, "subject").map_err(|e| e.extend())?;
            caller.principal.require_owner(&subject).map_err(|e| AppError::from(e).extend())?;
            let resource = format!("/api/v1/esg/subjects/{subject}");
            caller.read_of_another("esg", resource, reason).await.map_err(|e| e.extend())?;
        }
        let overview = state(ctx)?.actors.esg.overview(&subject).await.map_err(|e| AppError::from(e).extend())?;
        Ok(EsgOverview::from(&overview))
    }

    /// A month's leaderboard (`YYYY-MM`), overall or of a `community`, and the caller's place
    /// (scope `esg:read`).
    async fn esg_leaderboard(
        &self,
        ctx: &Context<'_>,
        period: String,
        community: Option<String>,
        first: Option<i32>,
    ) -> Result<Board> {
        let caller = Caller::of(ctx)?;
        caller.read("esgLeaderboard", "esg:read").await.map_err(|e| e.extend())?;
        let period = Period::parse(&period, Utc::now().date_naive()).map_err(|e| AppError::from(e).extend())?;
        let limit = first.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(AppError::client(ErrorCode::PageTooLarge, "first must be between 1 and 100").extend());
        }
        let subject = &caller.principal.subject;
        let board = state(ctx)?
            .actors
            .esg
            .board(subject, period, community.as_deref(), limit as usize)
            .await
            .map_err(|e| AppError::from(e).extend())?;
        let me = board.me.as_ref().map(|p| p.member.clone());
        let place = |p: &Place| BoardPlace {
            rank: i64::try_from(p.rank).unwrap_or(i64::MAX),
            member: pseudonym(&p.member),
            avoided_kg: p.avoided_g as f64 / 1000.0,
            you: Some(&p.member) == me.as_ref(),
        };
        Ok(Board {
            period: board.period.label(),
            community: board.community.clone(),
            places: board.places.iter().map(place).collect(),
            me: board.me.as_ref().map(place),
        })
    }

    /// The caller's activities, latest recorded first (scope `esg:read`).
    async fn esg_activities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<EsgActivityPage> {
        let caller = Caller::of(ctx)?;
        caller.read("esgActivities", "esg:read").await.map_err(|e| e.extend())?;
        let state = state(ctx)?;
        let scope = ["esg.activities", &caller.principal.subject];
        let page = state
            .cursors
            .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
            .map_err(|e| e.extend())?;
        let found = state
            .actors
            .esg
            .activities(&caller.principal.subject, page.after, page.fetch())
            .await
            .map_err(|e| AppError::from(e).extend())?;
        let (found, next_cursor) = page.finish(found, |a| (a.recorded_at, a.id)).map_err(|e| e.extend())?;
        Ok(EsgActivityPage { items: found.iter().map(EsgActivity::from).collect(), next_cursor })
    }
}

/// ESG's mutations.
#[derive(Default)]
pub struct EsgMutation;

#[Object]
impl EsgMutation {
    /// Join (`optIn: true`, in a `community` if given) or leave the leaderboards (scope
    /// `esg:write`).
    async fn set_leaderboard_membership(
        &self,
        ctx: &Context<'_>,
        opt_in: bool,
        community: Option<String>,
    ) -> Result<Membership> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let subject = &caller.principal.subject;
            Ok::<_, AppError>(state.actors.esg.set_membership(subject, opt_in, community.as_deref()).await?)
        };
        let resource = "/api/v1/esg/me/leaderboard".to_owned();
        let m = caller
            .write("setLeaderboardMembership", resource, "esg:write", 200, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(Membership { opt_in: m.opted_in, community: m.community, member: m.pseudonym })
    }

    /// Report an activity (scope `esg:write`); with an `idempotencyKey`, a retry answers the
    /// activity recorded first.
    async fn report_activity(
        &self,
        ctx: &Context<'_>,
        input: ActivityInput,
        idempotency_key: Option<String>,
    ) -> Result<ActivityRecorded> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let key = idempotency_key.as_deref().map(IdempotencyKey::parse).transpose()?;
            let request_id = crate::telemetry::current_request_id().map(|r| r.as_str().to_owned());
            let subject = &caller.principal.subject;
            let kind = ActivityType::from(input.kind).as_str();
            Ok::<_, AppError>(
                state.actors.esg.report(subject, kind, input.date, input.distance_km, key, request_id).await?,
            )
        };
        let resource = "/api/v1/esg/activities".to_owned();
        let reported =
            caller.write("reportActivity", resource, "esg:write", 201, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(ActivityRecorded { activity: EsgActivity::from(&reported.activity), replayed: reported.replayed })
    }
}
