//! Moderation over GraphQL: reports of a post or a profile (scope `social:write`), and for
//! administrators (scope `admin`) the queue of reports (with a reason, audited), their resolution,
//! and hiding and showing posts, through the same client, rules and error codes as REST.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::{
    caller::Caller,
    social::{SocialProfile, VisibilityValue},
    social_posts::{id_of, request_id, PostHidden, ReasonValue},
};
use crate::{
    actors::social::moderation::{ModeratedView, ReportView, Target},
    adapters::social::{Report, PAGE_MAX},
    auth::policy::ADMIN,
    domain::social::moderation::{Reason, Resolution, Status},
    error::AppError,
    http::{guard::Group, state::AppState},
};

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

/// Where a report stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReportStatus")]
pub enum StatusValue {
    /// Waiting in the queue.
    Open,
    /// Acted on.
    Actioned,
    /// Nothing to act on.
    Dismissed,
}

impl From<StatusValue> for Status {
    fn from(s: StatusValue) -> Self {
        match s {
            StatusValue::Open => Status::Open,
            StatusValue::Actioned => Status::Actioned,
            StatusValue::Dismissed => Status::Dismissed,
        }
    }
}

impl From<Status> for StatusValue {
    fn from(s: Status) -> Self {
        match s {
            Status::Open => StatusValue::Open,
            Status::Actioned => StatusValue::Actioned,
            Status::Dismissed => StatusValue::Dismissed,
        }
    }
}

/// How a report is resolved.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReportResolution")]
pub enum ResolutionValue {
    /// Acted on.
    Actioned,
    /// Nothing to act on.
    Dismissed,
}

/// A report as its reporter gets it back.
#[derive(SimpleObject)]
#[graphql(name = "ReportReceipt")]
pub struct ReportReceipt {
    /// Its id.
    pub id: ID,
    /// Why.
    pub reason: ReasonValue,
    /// OPEN.
    pub status: StatusValue,
    /// Filed.
    pub created_at: DateTime<Utc>,
}

impl From<&Report> for ReportReceipt {
    fn from(r: &Report) -> Self {
        Self { id: ID(r.id.to_string()), reason: r.reason.into(), status: r.status.into(), created_at: r.created_at }
    }
}

/// A reported post, as a moderator reads it.
#[derive(SimpleObject)]
#[graphql(name = "ReportedPost")]
pub struct ReportedPost {
    /// Its id.
    pub id: ID,
    /// The text; null once its author was erased.
    pub text: Option<String>,
    /// Who sees it.
    pub visibility: VisibilityValue,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Hidden, when it is.
    pub hidden: Option<PostHidden>,
}

/// A report in the moderation queue.
#[derive(SimpleObject)]
#[graphql(name = "Report")]
pub struct ReportObject {
    /// Its id.
    pub id: ID,
    /// Why.
    pub reason: ReasonValue,
    /// Where it stands.
    pub status: StatusValue,
    /// Filed.
    pub created_at: DateTime<Utc>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who reported.
    pub reporter: SocialProfile,
    /// The profile reported, or the reported post's author.
    pub profile: SocialProfile,
    /// The post reported, if a post was.
    pub post: Option<ReportedPost>,
}

impl From<&ReportView> for ReportObject {
    fn from(r: &ReportView) -> Self {
        Self {
            id: ID(r.id.to_string()),
            reason: r.reason.into(),
            status: r.status.into(),
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            reporter: SocialProfile::from(&r.reporter),
            profile: SocialProfile::from(&r.profile),
            post: r.post.as_ref().map(|p| ReportedPost {
                id: ID(p.id.to_string()),
                text: p.text.value().cloned(),
                visibility: p.visibility.into(),
                created_at: p.created_at,
                hidden: p.hidden.as_ref().map(PostHidden::from),
            }),
        }
    }
}

/// A page of reports.
#[derive(SimpleObject)]
#[graphql(name = "ReportPage")]
pub struct ReportPage {
    /// Oldest first.
    pub items: Vec<ReportObject>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A post after a moderator hid or showed it.
#[derive(SimpleObject)]
#[graphql(name = "ModeratedPost")]
pub struct ModeratedPost {
    /// The post.
    pub id: ID,
    /// Hidden, when it is now.
    pub hidden: Option<PostHidden>,
    /// Whether this changed it.
    pub changed: bool,
    /// Open reports of the post closed as actioned by this.
    pub reports_closed: i64,
}

impl From<&ModeratedView> for ModeratedPost {
    fn from(m: &ModeratedView) -> Self {
        Self {
            id: ID(m.id.to_string()),
            hidden: m.hidden.as_ref().map(PostHidden::from),
            changed: m.changed,
            reports_closed: i64::try_from(m.reports_closed).unwrap_or(i64::MAX),
        }
    }
}

/// Moderation's queries.
#[derive(Default)]
pub struct SocialModerationQuery;

#[Object]
impl SocialModerationQuery {
    /// The moderation queue: reports in a status (default OPEN), oldest first, with the reported
    /// post's text (scope `admin`; `reason`, or the `X-Access-Reason` header, is required and
    /// audited).
    async fn moderation_reports(
        &self,
        ctx: &Context<'_>,
        status: Option<StatusValue>,
        first: Option<i32>,
        after: Option<String>,
        reason: Option<String>,
    ) -> Result<ReportPage> {
        let caller = Caller::of(ctx)?;
        caller.read("moderationReports", ADMIN).await.map_err(|e| e.extend())?;
        let state = state(ctx)?;
        let status: Status = status.unwrap_or(StatusValue::Open).into();
        let scope = ["social.reports", status.as_str()];
        let page = state
            .cursors
            .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
            .map_err(|e| e.extend())?;
        caller
            .read_of_another("moderationReports", "/api/v1/social/moderation/reports".into(), reason)
            .await
            .map_err(|e| e.extend())?;
        let found = state
            .actors
            .social
            .reports(status, page.after, page.fetch())
            .await
            .map_err(|e| AppError::from(e).extend())?;
        let (found, next_cursor) = page.finish(found, |r| (r.created_at, r.id)).map_err(|e| e.extend())?;
        Ok(ReportPage { items: found.iter().map(ReportObject::from).collect(), next_cursor })
    }
}

/// Moderation's mutations.
#[derive(Default)]
pub struct SocialModerationMutation;

impl SocialModerationMutation {
    async fn file(
        ctx: &Context<'_>,
        (field, resource): (&str, String),
        target: Result<Target<'_>, AppError>,
        reason: ReasonValue,
    ) -> Result<ReportReceipt> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let run = async {
            caller.charge(Group::SocialPost).await?;
            let target = target?;
            Ok::<_, AppError>(social.report(&caller.principal.subject, target, reason.into()).await?)
        };
        let filed = caller.write(field, resource, "social:write", 201, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(ReportReceipt::from(&filed))
    }

    async fn moderate(
        ctx: &Context<'_>,
        (field, action): (&str, &str),
        id: ID,
        hide: Option<Reason>,
    ) -> Result<ModeratedPost> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/moderation/posts/{}/{action}", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.moderate_post(id, hide, request_id()).await?)
        };
        let moderated = caller.write(field, resource, ADMIN, 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(ModeratedPost::from(&moderated))
    }
}

#[Object]
impl SocialModerationMutation {
    /// Report a post the caller sees, not their own, once while the report is open (scope
    /// `social:write`; counted against `rate_limit.social_post`).
    async fn report_post(&self, ctx: &Context<'_>, id: ID, reason: ReasonValue) -> Result<ReportReceipt> {
        let resource = format!("/api/v1/social/posts/{}/reports", id.as_str());
        Self::file(ctx, ("reportPost", resource), id_of(&id, "id").map(Target::Post), reason).await
    }

    /// Report a profile, not the caller's own, once while the report is open (scope
    /// `social:write`; counted against `rate_limit.social_post`).
    async fn report_profile(&self, ctx: &Context<'_>, handle: String, reason: ReasonValue) -> Result<ReportReceipt> {
        let resource = format!("/api/v1/social/profiles/{handle}/reports");
        Self::file(ctx, ("reportProfile", resource), Ok(Target::Profile(&handle)), reason).await
    }

    /// Resolve an open report (scope `admin`).
    async fn resolve_report(&self, ctx: &Context<'_>, id: ID, resolution: ResolutionValue) -> Result<ReportObject> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/moderation/reports/{}/resolve", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            let resolution = match resolution {
                ResolutionValue::Actioned => Resolution::Actioned,
                ResolutionValue::Dismissed => Resolution::Dismissed,
            };
            Ok::<_, AppError>(social.resolve_report(id, resolution).await?)
        };
        let resolved =
            caller.write("resolveReport", resource, ADMIN, 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(ReportObject::from(&resolved))
    }

    /// Hide a post: only its author sees it from now on, and its open reports close as actioned
    /// (scope `admin`).
    async fn hide_post(&self, ctx: &Context<'_>, id: ID, reason: ReasonValue) -> Result<ModeratedPost> {
        Self::moderate(ctx, ("hidePost", "hide"), id, Some(reason.into())).await
    }

    /// Show a hidden post again (scope `admin`).
    async fn unhide_post(&self, ctx: &Context<'_>, id: ID) -> Result<ModeratedPost> {
        Self::moderate(ctx, ("unhidePost", "unhide"), id, None).await
    }
}
