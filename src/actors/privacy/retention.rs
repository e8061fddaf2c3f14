//! Retention: a supervised actor that removes, every `privacy.retention_interval_secs`, what each
//! category of personal data keeps past its period, `privacy.retention_batch` items per statement,
//! and counts what it removed by category.
//!
//! - audit IPs (`privacy.audit_ip_retention_days`): the key of every month whose end is past the
//!   period is deleted, which makes the addresses it sealed in the audit files unreadable (the
//!   files are append-only: crypto-shredding by period);
//! - ride coordinates (`privacy.ride_coordinates_retention_days`) and idempotency responses
//!   (`fintech.idempotency_ttl_secs`): each registered holder removes its own.

use std::{collections::BTreeMap, time::Duration};

use actix::Message;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use super::{HolderError, Holders};
use crate::{
    actors::runtime::{every, Ctx, Handle, Managed, Reply},
    adapters::privacy::{Vault, VaultError},
    domain::privacy::Category,
    telemetry::{self, Metrics},
};

/// Registered name of the retention actor.
pub const NAME: &str = "privacy-retention";

/// Most batches one category removes in one round: a backlog is worked off over several rounds.
const ROUND_BATCHES: usize = 10;

/// The `outcome` label of a round that removed what was due.
const ROUND_OK: &str = "ok";
/// The `outcome` label of a round that failed (retried at the next one).
const ROUND_FAILED: &str = "failed";

/// How far back the keys of past months are looked for, in months.
const MONTHS_BACK: u32 = 240;

/// The retention period of each category.
#[derive(Debug, Clone)]
pub struct Periods {
    /// Audit IPs.
    pub audit_ip: Duration,
    /// Exact ride coordinates.
    pub ride_coordinates: Duration,
    /// Idempotency keys with their requests and receipts.
    pub idempotency_responses: Duration,
}

impl Periods {
    /// The period of `category`.
    pub fn of(&self, category: Category) -> Duration {
        match category {
            Category::AuditIp => self.audit_ip,
            Category::RideCoordinates => self.ride_coordinates,
            Category::IdempotencyResponses => self.idempotency_responses,
        }
    }
}

/// Why a round of retention failed (it is retried at the next one).
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A holder failed.
    #[error(transparent)]
    Holder(#[from] HolderError),
}

/// The months (`2026-12`) whose end is before `cutoff`, most recent first, as far back as keys
/// are looked for.
pub fn months_ended_before(cutoff: DateTime<Utc>) -> Vec<String> {
    let first_of = |d: NaiveDate| NaiveDate::from_ymd_opt(d.year(), d.month(), 1);
    let Some(mut month) = first_of(cutoff.date_naive()) else { return Vec::new() };
    let mut months = Vec::new();
    for _ in 0..MONTHS_BACK {
        // A month ends where the next begins: keep it only if that is before the cutoff.
        let Some(next) = month.checked_add_months(Months::new(1)) else { break };
        if next.and_hms_opt(0, 0, 0).is_some_and(|n| n.and_utc() <= cutoff) {
            months.push(month.format("%Y-%m").to_string());
        }
        let Some(previous) = month.checked_sub_months(Months::new(1)) else { break };
        month = previous;
    }
    months
}

/// What retention applies, shared by the actor and the tests.
#[derive(Clone)]
pub struct Rules {
    vault: Vault,
    holders: Holders,
    periods: Periods,
    batch: usize,
}

impl Rules {
    /// The rules over `vault` and `holders`.
    pub fn new(vault: Vault, holders: Holders, periods: Periods, batch: usize) -> Self {
        Self { vault, holders, periods, batch: batch.max(1) }
    }

    /// Remove what is past its period at `now`; answers how much of each category was removed.
    pub async fn apply(&self, now: DateTime<Utc>) -> Result<BTreeMap<Category, u64>, RetentionError> {
        let mut removed = BTreeMap::new();
        for category in Category::ALL {
            let period = chrono::Duration::from_std(self.periods.of(category)).unwrap_or(chrono::Duration::MAX);
            let Some(cutoff) = now.checked_sub_signed(period) else { continue };
            let mut total = 0;
            if category == Category::AuditIp {
                for months in months_ended_before(cutoff).chunks(self.batch) {
                    total += self.vault.erase_periods(months).await?;
                }
            }
            for _ in 0..ROUND_BATCHES {
                let n = self.holders.expire(category, cutoff, self.batch).await?;
                total += n;
                if (n as usize) < self.batch {
                    break;
                }
            }
            removed.insert(category, total);
        }
        Ok(removed)
    }
}

/// Apply retention now; answers what was removed.
#[derive(Debug, Clone, Copy)]
pub struct ApplyRetention;

impl Message for ApplyRetention {
    type Result = Result<BTreeMap<Category, u64>, RetentionFailed>;
}

/// A round of retention failed; it is retried at the next one.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a round of retention failed")]
pub struct RetentionFailed;

/// Applies the rules every `interval`.
pub struct Retention {
    rules: Rules,
    interval: Duration,
    metrics: Metrics,
}

impl Retention {
    /// The actor applying `rules` every `interval`.
    pub fn new(rules: Rules, interval: Duration, metrics: Metrics) -> Self {
        // The series exist from the start (at zero), for the dashboard and the alert.
        metrics.with(|| {
            for category in Category::ALL {
                metrics::counter!(telemetry::PRIVACY_RETENTION_REMOVED_TOTAL, "category" => category.as_str())
                    .increment(0);
            }
            for outcome in [ROUND_OK, ROUND_FAILED] {
                metrics::counter!(telemetry::PRIVACY_RETENTION_ROUNDS_TOTAL, "outcome" => outcome).increment(0);
            }
        });
        Self { rules, interval, metrics }
    }
}

impl Managed for Retention {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.interval, || ApplyRetention);
    }
}

impl Handle<ApplyRetention> for Retention {
    fn handle(
        &mut self,
        _: ApplyRetention,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, Result<BTreeMap<Category, u64>, RetentionFailed>> {
        let (rules, metrics) = (self.rules.clone(), self.metrics.clone());
        let round = async move {
            let applied = rules.apply(Utc::now()).await;
            let outcome = if applied.is_ok() { ROUND_OK } else { ROUND_FAILED };
            metrics.with(|| {
                metrics::counter!(telemetry::PRIVACY_RETENTION_ROUNDS_TOTAL, "outcome" => outcome).increment(1)
            });
            let removed = applied.map_err(|e| {
                tracing::warn!(error = %e, "retention of personal data failed; retried at the next round");
                RetentionFailed
            })?;
            for (category, n) in &removed {
                let label = category.as_str();
                metrics.with(|| {
                    metrics::counter!(telemetry::PRIVACY_RETENTION_REMOVED_TOTAL, "category" => label).increment(*n)
                });
                if *n > 0 {
                    tracing::info!(category = label, removed = n, "personal data past its retention period removed");
                }
            }
            Ok(removed)
        };
        // One round at a time: a slow round is not overlapped by the next tick's.
        Reply::atomic(round, |result, _, _| result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_month_goes_once_it_has_ended_before_the_cutoff() {
        let cutoff = Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap();
        let months = months_ended_before(cutoff);
        assert_eq!(&months[..3], ["2026-02", "2026-01", "2025-12"]);
        assert_eq!(months.len() as u32, MONTHS_BACK - 1);
        // The first instant of April: March has just ended.
        let april = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        assert_eq!(months_ended_before(april)[0], "2026-03");
    }
}
