//! Moderation in the social store: reports and their queue, and posts hidden and unhidden, on
//! PostgreSQL (`pg_moderation`) or the embedded store. Hiding a post locks its row,
//! closes its open reports as actioned and queues its event, in one transaction.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{pg_moderation, Act, Post, SocialStore, SocialStoreError};
use crate::domain::social::moderation::{Reason, Resolution, Status};

/// A report of a profile, or of one of its posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its id.
    pub id: Uuid,
    /// The reporter's profile.
    pub reporter: Uuid,
    /// The profile reported, or the reported post's author.
    pub target_profile: Uuid,
    /// The post reported, if a post was.
    pub target_post: Option<Uuid>,
    /// Why.
    pub reason: Reason,
    /// Where it stands.
    pub status: Status,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A post after an administrator hid or unhid it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderated {
    /// The post after.
    pub post: Post,
    /// Whether this changed it (hiding a hidden post, or unhiding a shown one, does not).
    pub changed: bool,
    /// Open reports of the post closed as actioned by this.
    pub reports_closed: u64,
}

impl SocialStore {
    /// `report` (its status ignored: it opens) is made: refused with `already_reported` while the
    /// same reporter's report of the same target is open.
    pub async fn report(&self, report: &Report) -> Result<Report, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_moderation::report(pool, report).await,
            Self::Memory(m, _) => m.lock().report(report),
        }
    }

    /// A page of the reports in `status`, oldest first, after `after`.
    pub async fn reports(
        &self,
        status: Status,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Report>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_moderation::reports(pool, status, after, limit).await,
            Self::Memory(m, _) => Ok(m.lock().reports(status, after, limit)),
        }
    }

    /// Every report `reporter` filed, oldest first: what an export holds of their reports.
    pub async fn reports_by(&self, reporter: Uuid) -> Result<Vec<Report>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_moderation::reports_by(pool, reporter).await,
            Self::Memory(m, _) => Ok(m.lock().reports_by(reporter)),
        }
    }

    /// Resolve the open report `id`.
    pub async fn resolve_report(
        &self,
        id: Uuid,
        resolution: Resolution,
        at: DateTime<Utc>,
    ) -> Result<Report, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_moderation::resolve_report(pool, id, resolution, at).await,
            Self::Memory(m, _) => m.lock().resolve_report(id, resolution, at),
        }
    }

    /// Hide the post `id` for `reason` (`Some`), or show it again (`None`).
    pub async fn moderate_post(
        &self,
        id: Uuid,
        hide: Option<Reason>,
        act: &Act,
    ) -> Result<Moderated, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_moderation::moderate_post(pool, id, hide, act).await,
            Self::Memory(m, outbox) => m.lock().moderate_post(id, hide, act, outbox),
        }
    }
}
