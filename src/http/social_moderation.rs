//! Moderation over REST: users report a post or a profile (`social:write`, counted against
//! `rate_limit.social_post`); administrators (`admin`) read the queue of reports, with a reason in
//! `X-Access-Reason` since it shows others' posts and profiles, resolve reports, and hide or show
//! posts. Every change is audited by the guard, as every write is.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    guard::{client_ip, Group},
    json::Json,
    privacy::{audited_reason, given_reason},
    social::{HandlePath, ProfileBody, VisibilityBody},
    social_posts::{id_of, request_id, HiddenBody, IdPath, ReasonBody},
    state::AppState,
};
use crate::{
    actors::social::moderation::{ModeratedView, ReportView, Target},
    adapters::social::{Report, PAGE_MAX},
    auth::{policy::ADMIN, Principal},
    domain::social::moderation::{Resolution, Status},
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can.
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        (
            "reportPost",
            &[InvalidParameter, PostNotFound, OwnContent, AlreadyReported, ProfileRequired, PrivacyUnavailable],
        ),
        ("reportProfile", &[InvalidHandle, ProfileNotFound, OwnContent, AlreadyReported, ProfileRequired]),
        (
            "listReports",
            &[
                ScopeMissing,
                ReasonRequired,
                InvalidParameter,
                PageTooLarge,
                InvalidCursor,
                PageBeyondEnd,
                PrivacyUnavailable,
            ],
        ),
        ("resolveReport", &[ScopeMissing, InvalidParameter, ReportNotFound, ReportClosed, PrivacyUnavailable]),
        ("hidePost", &[ScopeMissing, InvalidParameter, PostNotFound]),
        ("unhidePost", &[ScopeMissing, InvalidParameter, PostNotFound]),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/social/posts/{id}/reports").route(web::post().to(report_post)))
        .service(web::resource("/social/profiles/{handle}/reports").route(web::post().to(report_profile)))
        .service(web::resource("/social/moderation/reports").route(web::get().to(list_reports)))
        .service(web::resource("/social/moderation/reports/{id}/resolve").route(web::post().to(resolve_report)))
        .service(web::resource("/social/moderation/posts/{id}/hide").route(web::post().to(hide_post)))
        .service(web::resource("/social/moderation/posts/{id}/unhide").route(web::post().to(unhide_post)));
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportStatus)]
pub enum StatusBody {
    /// Waiting in the queue.
    Open,
    /// Acted on.
    Actioned,
    /// Nothing to act on.
    Dismissed,
}

impl From<StatusBody> for Status {
    fn from(s: StatusBody) -> Self {
        match s {
            StatusBody::Open => Status::Open,
            StatusBody::Actioned => Status::Actioned,
            StatusBody::Dismissed => Status::Dismissed,
        }
    }
}

impl From<Status> for StatusBody {
    fn from(s: Status) -> Self {
        match s {
            Status::Open => StatusBody::Open,
            Status::Actioned => StatusBody::Actioned,
            Status::Dismissed => StatusBody::Dismissed,
        }
    }
}

/// A report to file.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReportWrite)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// Why.
    pub reason: ReasonBody,
}

/// A report as its reporter gets it back.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportReceipt)]
pub struct ReceiptBody {
    /// Its id.
    pub id: Uuid,
    /// Why.
    pub reason: ReasonBody,
    /// `open`.
    pub status: StatusBody,
    /// Filed.
    pub created_at: DateTime<Utc>,
}

impl From<&Report> for ReceiptBody {
    fn from(r: &Report) -> Self {
        Self { id: r.id, reason: r.reason.into(), status: r.status.into(), created_at: r.created_at }
    }
}

/// A reported post, as a moderator reads it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportedPost)]
pub struct ReportedPostBody {
    /// Its id.
    pub id: Uuid,
    /// The text; `null` once its author's personal data was erased.
    pub text: Option<String>,
    /// Who sees it.
    pub visibility: VisibilityBody,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Hidden, when it is.
    pub hidden: Option<HiddenBody>,
}

/// A report in the moderation queue.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Report)]
pub struct ReportBody {
    /// Its id.
    pub id: Uuid,
    /// Why.
    pub reason: ReasonBody,
    /// Where it stands.
    pub status: StatusBody,
    /// Filed.
    pub created_at: DateTime<Utc>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who reported.
    pub reporter: ProfileBody,
    /// The profile reported, or the reported post's author.
    pub profile: ProfileBody,
    /// The post reported, if a post was.
    pub post: Option<ReportedPostBody>,
}

impl From<&ReportView> for ReportBody {
    fn from(r: &ReportView) -> Self {
        Self {
            id: r.id,
            reason: r.reason.into(),
            status: r.status.into(),
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            reporter: ProfileBody::from(&r.reporter),
            profile: ProfileBody::from(&r.profile),
            post: r.post.as_ref().map(|p| ReportedPostBody {
                id: p.id,
                text: p.text.value().cloned(),
                visibility: p.visibility.into(),
                created_at: p.created_at,
                hidden: p.hidden.as_ref().map(HiddenBody::from),
            }),
        }
    }
}

/// A page of reports.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReportPage)]
pub struct ReportPage {
    /// Oldest first.
    pub items: Vec<ReportBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Query of the moderation queue.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Which reports (default `open`).
    pub status: Option<StatusBody>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$"
    )]
    pub cursor: Option<String>,
}

/// How to resolve a report.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReportResolution)]
pub enum ResolutionBody {
    /// Acted on.
    Actioned,
    /// Nothing to act on.
    Dismissed,
}

/// A report's resolution.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReportResolve)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `actioned` or `dismissed`.
    pub resolution: ResolutionBody,
}

/// Why a post is hidden.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PostHide)]
#[serde(deny_unknown_fields)]
pub struct HideRequest {
    /// Why.
    pub reason: ReasonBody,
}

/// A post after a moderator hid or showed it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ModeratedPost)]
pub struct ModeratedBody {
    /// The post.
    pub id: Uuid,
    /// Hidden, when it is now.
    pub hidden: Option<HiddenBody>,
    /// Whether this changed it.
    pub changed: bool,
    /// Open reports of the post closed as actioned by this.
    pub reports_closed: u64,
}

impl From<&ModeratedView> for ModeratedBody {
    fn from(m: &ModeratedView) -> Self {
        Self {
            id: m.id,
            hidden: m.hidden.as_ref().map(HiddenBody::from),
            changed: m.changed,
            reports_closed: m.reports_closed,
        }
    }
}

async fn report(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    target: Target<'_>,
    reason: ReasonBody,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(req, &state.guard.limits.trusted_proxies);
    state.guard.charge(Group::SocialPost, ip, Some(&principal.subject)).await?;
    let filed = state.actors.social.report(&principal.subject, target, reason.into()).await?;
    Ok(HttpResponse::Created().json(ReceiptBody::from(&filed)))
}

/// Report a post the caller sees (not their own) to the moderators: one open report per
/// reporter and post (409 `already_reported`). Counted against `rate_limit.social_post`.
#[utoipa::path(
    post,
    path = "/api/v1/social/posts/{id}/reports",
    operation_id = "reportPost",
    tag = "social",
    params(IdPath),
    request_body(content = ReportRequest, example = json!({"reason": "spam"})),
    responses((status = 201, description = "Filed.", body = ReceiptBody))
)]
pub async fn report_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<ReportRequest>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    report(&state, &req, &principal, Target::Post(id), body.into_inner().reason).await
}

/// Report a profile (not the caller's own) to the moderators: one open report per reporter and
/// profile (409 `already_reported`). Counted against `rate_limit.social_post`.
#[utoipa::path(
    post,
    path = "/api/v1/social/profiles/{handle}/reports",
    operation_id = "reportProfile",
    tag = "social",
    params(HandlePath),
    request_body(content = ReportRequest, example = json!({"reason": "harassment"})),
    responses((status = 201, description = "Filed.", body = ReceiptBody))
)]
pub async fn report_profile(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<HandlePath>,
    body: Json<ReportRequest>,
) -> Result<HttpResponse, AppError> {
    let handle = path.into_inner().handle;
    report(&state, &req, &principal, Target::Profile(&handle), body.into_inner().reason).await
}

/// The moderation queue: reports in a status (default `open`), oldest first, with the reported
/// post's text (`admin`, with a reason in `X-Access-Reason`; the read is audited).
#[utoipa::path(
    get,
    path = "/api/v1/social/moderation/reports",
    operation_id = "listReports",
    tag = "social",
    params(ReportsQuery, ("X-Access-Reason" = Option<String>, Header, description = "Why the queue is read (required); audited.", min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001F\u007F-\u009F]{1,500}$")),
    responses((status = 200, description = "A page of reports.", body = ReportPage))
)]
pub async fn list_reports(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    query: web::Query<ReportsQuery>,
) -> Result<HttpResponse, AppError> {
    principal.require(ADMIN)?;
    let given = given_reason(&req)?;
    let ReportsQuery { status, limit, cursor } = query.into_inner();
    let status: Status = status.unwrap_or(StatusBody::Open).into();
    let scope = ["social.reports", status.as_str()];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    audited_reason(&state, &req, &principal, given).await?;
    let found = state.actors.social.reports(status, page.after, page.fetch()).await?;
    let (found, next_cursor) = page.finish(found, |r| (r.created_at, r.id))?;
    Ok(HttpResponse::Ok().json(ReportPage { items: found.iter().map(ReportBody::from).collect(), next_cursor }))
}

/// Resolve an open report (`admin`): `actioned` or `dismissed`; a resolved one is 409
/// `report_closed`.
#[utoipa::path(
    post,
    path = "/api/v1/social/moderation/reports/{id}/resolve",
    operation_id = "resolveReport",
    tag = "social",
    params(IdPath),
    request_body(content = ResolveRequest, example = json!({"resolution": "dismissed"})),
    responses((status = 200, description = "Resolved.", body = ReportBody))
)]
pub async fn resolve_report(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<ResolveRequest>,
) -> Result<HttpResponse, AppError> {
    principal.require(ADMIN)?;
    let id = id_of(&path.into_inner().id)?;
    let resolution = match body.into_inner().resolution {
        ResolutionBody::Actioned => Resolution::Actioned,
        ResolutionBody::Dismissed => Resolution::Dismissed,
    };
    let resolved = state.actors.social.resolve_report(id, resolution).await?;
    Ok(HttpResponse::Ok().json(ReportBody::from(&resolved)))
}

/// Hide a post (`admin`): only its author sees it from now on, and its open reports close as
/// actioned. Hiding a hidden post changes nothing (`changed: false`).
#[utoipa::path(
    post,
    path = "/api/v1/social/moderation/posts/{id}/hide",
    operation_id = "hidePost",
    tag = "social",
    params(IdPath),
    request_body(content = HideRequest, example = json!({"reason": "spam"})),
    responses((status = 200, description = "Hidden.", body = ModeratedBody))
)]
pub async fn hide_post(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<HideRequest>,
) -> Result<HttpResponse, AppError> {
    principal.require(ADMIN)?;
    let id = id_of(&path.into_inner().id)?;
    let reason = body.into_inner().reason.into();
    let moderated = state.actors.social.moderate_post(id, Some(reason), request_id()).await?;
    Ok(HttpResponse::Ok().json(ModeratedBody::from(&moderated)))
}

/// Show a hidden post again (`admin`); a shown post changes nothing (`changed: false`).
#[utoipa::path(
    post,
    path = "/api/v1/social/moderation/posts/{id}/unhide",
    operation_id = "unhidePost",
    tag = "social",
    params(IdPath),
    responses((status = 200, description = "Shown.", body = ModeratedBody))
)]
pub async fn unhide_post(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, AppError> {
    principal.require(ADMIN)?;
    let id = id_of(&path.into_inner().id)?;
    let moderated = state.actors.social.moderate_post(id, None, request_id()).await?;
    Ok(HttpResponse::Ok().json(ModeratedBody::from(&moderated)))
}
