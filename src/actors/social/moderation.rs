//! Moderation through the [`SocialClient`]: a user reports a post they see or a profile; an
//! administrator reads the queue (the reported post's text opened, since judging it is the
//! point), resolves reports, and hides or shows posts. Who is an administrator is the
//! transport's check; every change here is audited by the transport that asked for it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    client::{act, ProfileView},
    messages::{FileReport, GetPost, GetProfileById, ListReports, ModeratePost, ResolveReport},
    posts::fields,
    Answer, SocialClient,
};
use crate::{
    adapters::social::{Hidden, Report},
    domain::{
        privacy::Personal,
        social::{
            moderation::{self, Reason, Resolution, Status},
            SocialError, Visibility,
        },
    },
    telemetry,
};

/// What is counted in [`telemetry::SOCIAL_REPORTS_TOTAL`].
pub const TARGETS: [&str; 2] = ["post", "profile"];

/// What is counted in [`telemetry::SOCIAL_MODERATION_ACTIONS_TOTAL`].
pub const ACTIONS: [&str; 4] = ["hidden", "unhidden", "actioned", "dismissed"];

/// What a user reports.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A post they see.
    Post(Uuid),
    /// The profile of a handle.
    Profile(&'a str),
}

/// A reported post as a moderator reads it.
#[derive(Debug, Clone)]
pub struct ReportedPost {
    /// Its id.
    pub id: Uuid,
    /// The text (erased with its author).
    pub text: Personal<String>,
    /// Who sees it.
    pub visibility: Visibility,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Hidden, when it is.
    pub hidden: Option<Hidden>,
}

/// A report, its profiles and post opened.
#[derive(Debug, Clone)]
pub struct ReportView {
    /// Its id.
    pub id: Uuid,
    /// Why.
    pub reason: Reason,
    /// Where it stands.
    pub status: Status,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who reported.
    pub reporter: ProfileView,
    /// The profile reported, or the reported post's author.
    pub profile: ProfileView,
    /// The post reported, if a post was.
    pub post: Option<ReportedPost>,
}

/// A post after a moderator hid or showed it.
#[derive(Debug, Clone)]
pub struct ModeratedView {
    /// The post.
    pub id: Uuid,
    /// Hidden, when it is now.
    pub hidden: Option<Hidden>,
    /// Whether this changed it.
    pub changed: bool,
    /// Open reports of it closed as actioned.
    pub reports_closed: u64,
}

impl SocialClient {
    fn count_action(&self, action: &'static str) {
        self.metrics
            .with(|| metrics::counter!(telemetry::SOCIAL_MODERATION_ACTIONS_TOTAL, "action" => action).increment(1));
    }

    /// `subject` reports `target` for `reason`: a post they see (not their own), or a profile
    /// (not their own, found across blocks too). One open report per reporter and target. The
    /// report as filed: the reporter gets back nothing of the profiles or post it names.
    pub async fn report(&self, subject: &str, target: Target<'_>, reason: Reason) -> Answer<Report> {
        let me = self.required(subject).await?;
        let (target_profile, target_post, counted) = match target {
            Target::Post(id) => {
                let (post, author, _) = self.visible_post(subject, id).await?;
                (author.id, Some(post.id), "post")
            }
            Target::Profile(handle) => (self.by_handle(handle).await?.id, None, "profile"),
        };
        moderation::may_report(me.id, target_profile)?;
        let report = Report {
            id: Uuid::now_v7(),
            reporter: me.id,
            target_profile,
            target_post,
            reason,
            status: Status::Open,
            created_at: Utc::now(),
            resolved_at: None,
        };
        let filed = self.domain.ask(FileReport { report }).await??;
        self.metrics.with(|| metrics::counter!(telemetry::SOCIAL_REPORTS_TOTAL, "target" => counted).increment(1));
        Ok(filed)
    }

    /// A page of the reports in `status`, oldest first (for a moderator).
    pub async fn reports(
        &self,
        status: Status,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<ReportView>> {
        let found = self.domain.ask(ListReports { status, after, limit }).await??;
        let mut out = Vec::with_capacity(found.len());
        for report in found {
            // A report whose profiles or post went meanwhile went with them.
            if let Some(view) = self.report_view(report).await? {
                out.push(view);
            }
        }
        Ok(out)
    }

    /// Resolve the open report `id` (for a moderator).
    pub async fn resolve_report(&self, id: Uuid, resolution: Resolution) -> Answer<ReportView> {
        let resolved = self.domain.ask(ResolveReport { id, resolution, at: Utc::now() }).await??;
        self.count_action(match resolution {
            Resolution::Actioned => "actioned",
            Resolution::Dismissed => "dismissed",
        });
        self.report_view(resolved).await?.ok_or_else(|| SocialError::ReportNotFound(id).into())
    }

    /// Hide the post `id` for `reason` (`Some`; its open reports close as actioned), or show it
    /// again (`None`) (for a moderator).
    pub async fn moderate_post(
        &self,
        id: Uuid,
        hide: Option<Reason>,
        request_id: Option<String>,
    ) -> Answer<ModeratedView> {
        let moderated = self.domain.ask(ModeratePost { id, hide, act: act(request_id) }).await??;
        if moderated.changed {
            self.count_action(if hide.is_some() { "hidden" } else { "unhidden" });
        }
        Ok(ModeratedView {
            id,
            hidden: moderated.post.hidden,
            changed: moderated.changed,
            reports_closed: moderated.reports_closed,
        })
    }

    /// `report` with its profiles and post opened; `None` when one of them is gone.
    async fn report_view(&self, report: Report) -> Answer<Option<ReportView>> {
        let Some(reporter) = self.domain.ask(GetProfileById { id: report.reporter }).await?? else { return Ok(None) };
        let Some(profile) = self.domain.ask(GetProfileById { id: report.target_profile }).await?? else {
            return Ok(None);
        };
        let post = match report.target_post {
            Some(id) => {
                let Some(post) = self.domain.ask(GetPost { id }).await?? else { return Ok(None) };
                let text = self.open_text(fields::POST_BODY, post.id, &post.body).await?;
                Some(ReportedPost {
                    id,
                    text,
                    visibility: post.visibility,
                    created_at: post.created_at,
                    hidden: post.hidden,
                })
            }
            None => None,
        };
        Ok(Some(ReportView {
            id: report.id,
            reason: report.reason,
            status: report.status,
            created_at: report.created_at,
            resolved_at: report.resolved_at,
            reporter: self.view(&reporter, None).await?,
            profile: self.view(&profile, None).await?,
            post,
        }))
    }
}
