//! Moderation on PostgreSQL: one open report per reporter and target (a unique index), the queue
//! by status oldest first, and a post hidden or shown under its row lock.

use chrono::{DateTime, Utc};
use tokio_postgres::{error::SqlState, Row};
use uuid::Uuid;

use super::{
    moderation::{Moderated, Report},
    pg_posts::{locked, post_of, POST_COLUMNS},
    postgres::queue,
    Act, SocialStoreError,
};
use crate::{
    adapters::postgres::PgPool,
    domain::social::{
        events,
        moderation::{self, Reason, Resolution, Status},
        SocialError,
    },
};

const REPORT_COLUMNS: &str = "id, reporter, target_profile, target_post, reason, status, created_at, resolved_at";

fn report_of(row: &Row) -> Result<Report, SocialStoreError> {
    Ok(Report {
        id: row.get("id"),
        reporter: row.get("reporter"),
        target_profile: row.get("target_profile"),
        target_post: row.get("target_post"),
        reason: Reason::parse(row.get("reason")).ok_or(SocialStoreError::Corrupt("report reason"))?,
        status: Status::parse(row.get("status")).ok_or(SocialStoreError::Corrupt("report status"))?,
        created_at: row.get("created_at"),
        resolved_at: row.get("resolved_at"),
    })
}

pub(super) async fn report(pool: &PgPool, report: &Report) -> Result<Report, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "INSERT INTO social_reports (id, reporter, target_profile, target_post, reason, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'open', $6) RETURNING {REPORT_COLUMNS}"
    );
    let r = report;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&r.id, &r.reporter, &r.target_profile, &r.target_post, &r.reason.as_str(), &r.created_at];
    match conn.query_one(&sql, &params).await {
        Ok(row) => report_of(&row),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let open = conn
                .query_opt(
                    "SELECT id FROM social_reports WHERE reporter = $1 AND target_profile = $2 \
                     AND target_post IS NOT DISTINCT FROM $3 AND status = 'open'",
                    &[&r.reporter, &r.target_profile, &r.target_post],
                )
                .await?;
            Err(SocialError::AlreadyReported(open.map_or(Uuid::nil(), |row| row.get(0))).into())
        }
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => Err(SocialStoreError::Gone),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn reports(
    pool: &PgPool,
    status: Status,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<Report>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM social_reports WHERE status = $1 \
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4"
    );
    let (at, last) = (after.map(|a| a.0), after.map_or(Uuid::nil(), |a| a.1));
    let limit = i64::try_from(limit).unwrap_or(100);
    conn.query(&sql, &[&status.as_str(), &at, &last, &limit]).await?.iter().map(report_of).collect()
}

pub(super) async fn reports_by(pool: &PgPool, reporter: Uuid) -> Result<Vec<Report>, SocialStoreError> {
    let conn = pool.get().await?;
    let sql = format!("SELECT {REPORT_COLUMNS} FROM social_reports WHERE reporter = $1 ORDER BY created_at, id");
    conn.query(&sql, &[&reporter]).await?.iter().map(report_of).collect()
}

pub(super) async fn resolve_report(
    pool: &PgPool,
    id: Uuid,
    resolution: Resolution,
    at: DateTime<Utc>,
) -> Result<Report, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let sql = format!("SELECT {REPORT_COLUMNS} FROM social_reports WHERE id = $1 FOR UPDATE");
    let current = report_of(&tx.query_opt(&sql, &[&id]).await?.ok_or(SocialError::ReportNotFound(id))?)?;
    let status = moderation::resolve(id, current.status, resolution)?;
    let sql =
        format!("UPDATE social_reports SET status = $2, resolved_at = $3 WHERE id = $1 RETURNING {REPORT_COLUMNS}");
    let resolved = report_of(&tx.query_one(&sql, &[&id, &status.as_str(), &at]).await?)?;
    tx.commit().await?;
    Ok(resolved)
}

pub(super) async fn moderate_post(
    pool: &PgPool,
    id: Uuid,
    hide: Option<Reason>,
    act: &Act,
) -> Result<Moderated, SocialStoreError> {
    let mut conn = pool.get().await?;
    let tx = conn.transaction().await?;
    let current = locked(&tx, id).await?;
    let closed = match hide {
        Some(_) => {
            tx.execute(
                "UPDATE social_reports SET status = 'actioned', resolved_at = $2 \
                 WHERE target_post = $1 AND status = 'open'",
                &[&id, &act.at],
            )
            .await?
        }
        None => 0,
    };
    if current.hidden.is_some() == hide.is_some() {
        tx.commit().await?;
        return Ok(Moderated { post: current, changed: false, reports_closed: closed });
    }
    let (at, reason) = (hide.map(|_| act.at), hide.map(Reason::as_str));
    let sql = format!(
        "UPDATE social_posts SET hidden_at = $2, hidden_reason = $3, version = version + 1 WHERE id = $1 \
         RETURNING {POST_COLUMNS}"
    );
    let after = post_of(&tx.query_one(&sql, &[&id, &at, &reason]).await?)?;
    let event = events::post_moderated((id, after.author), hide, after.version, act.request_id.clone(), act.at);
    queue(&tx, act.at, &[event]).await?;
    tx.commit().await?;
    Ok(Moderated { post: after, changed: true, reports_closed: closed })
}
