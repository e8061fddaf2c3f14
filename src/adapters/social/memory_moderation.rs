//! Moderation in the embedded store: the same rules as PostgreSQL's, under the store's one lock.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    moderation::{Moderated, Report},
    Act, Hidden, Memory, SocialStoreError,
};
use crate::{
    adapters::outbox::MemOutbox,
    domain::social::{
        events,
        moderation::{self, Reason, Resolution, Status},
        SocialError,
    },
};

impl Memory {
    pub(super) fn report(&mut self, report: &Report) -> Result<Report, SocialStoreError> {
        let exists = |id: &Uuid| self.profiles.contains_key(id);
        let post_exists = report.target_post.is_none_or(|p| self.posts.contains_key(&p));
        if !exists(&report.reporter) || !exists(&report.target_profile) || !post_exists {
            return Err(SocialStoreError::Gone);
        }
        let open = self.reports.values().find(|r| {
            r.status == Status::Open
                && (r.reporter, r.target_profile, r.target_post)
                    == (report.reporter, report.target_profile, report.target_post)
        });
        if let Some(open) = open {
            return Err(SocialError::AlreadyReported(open.id).into());
        }
        let made = Report { status: Status::Open, resolved_at: None, ..report.clone() };
        self.reports.insert(made.id, made.clone());
        Ok(made)
    }

    pub(super) fn reports(&self, status: Status, after: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Vec<Report> {
        let mut found: Vec<Report> = self
            .reports
            .values()
            .filter(|r| r.status == status && after.is_none_or(|a| (r.created_at, r.id) > a))
            .cloned()
            .collect();
        found.sort_by_key(|r| (r.created_at, r.id));
        found.truncate(limit);
        found
    }

    pub(super) fn reports_by(&self, reporter: Uuid) -> Vec<Report> {
        let mut found: Vec<Report> = self.reports.values().filter(|r| r.reporter == reporter).cloned().collect();
        found.sort_by_key(|r| (r.created_at, r.id));
        found
    }

    pub(super) fn resolve_report(
        &mut self,
        id: Uuid,
        resolution: Resolution,
        at: DateTime<Utc>,
    ) -> Result<Report, SocialStoreError> {
        let report = self.reports.get_mut(&id).ok_or(SocialError::ReportNotFound(id))?;
        report.status = moderation::resolve(id, report.status, resolution)?;
        report.resolved_at = Some(at);
        Ok(report.clone())
    }

    pub(super) fn moderate_post(
        &mut self,
        id: Uuid,
        hide: Option<Reason>,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Moderated, SocialStoreError> {
        let current = self.post_mut(id)?.clone();
        let mut closed = 0;
        if hide.is_some() {
            for r in self.reports.values_mut().filter(|r| r.target_post == Some(id) && r.status == Status::Open) {
                r.status = Status::Actioned;
                r.resolved_at = Some(act.at);
                closed += 1;
            }
        }
        if current.hidden.is_some() == hide.is_some() {
            return Ok(Moderated { post: current, changed: false, reports_closed: closed });
        }
        let post = self.post_mut(id)?;
        post.hidden = hide.map(|reason| Hidden { at: act.at, reason });
        post.version += 1;
        let after = post.clone();
        let event = events::post_moderated((id, after.author), hide, after.version, act.request_id.clone(), act.at);
        outbox.append(act.at, vec![event]);
        Ok(Moderated { post: after, changed: true, reports_closed: closed })
    }

    /// The profile `id` is being erased: the reports it made or that name it go, with those of
    /// its posts.
    pub(super) fn erase_reports_of(&mut self, id: Uuid) {
        let posts = &self.posts;
        self.reports.retain(|_, r| {
            r.reporter != id && r.target_profile != id && r.target_post.is_none_or(|p| posts.contains_key(&p))
        });
    }
}
