//! The idempotency key purger: a supervised actor that forgets expired idempotency keys in
//! batches, so that the table holds the keys of the last `fintech.idempotency_ttl_secs` only. An
//! expired key counts as new whether or not it was purged yet; purging keeps the table small.

use std::time::Duration;

use actix::Message;
use chrono::Utc;

use super::LedgerFailure;
use crate::{
    actors::runtime::{every, Ctx, Handle, Managed, Reply},
    adapters::ledger::LedgerStore,
    telemetry::{self, Metrics},
};

/// Registered name of the purger.
pub const NAME: &str = "idempotency-purger";

/// Most batches deleted in one round: a backlog is worked off over several rounds, leaving the
/// database to other work in between.
const ROUND_BATCHES: usize = 10;

/// Forget the idempotency keys expired by now; answers how many were forgotten.
#[derive(Debug, Clone, Copy)]
pub struct PurgeExpiredKeys;

impl Message for PurgeExpiredKeys {
    type Result = Result<u64, LedgerFailure>;
}

/// Purges expired idempotency keys every `interval`, `batch` keys per statement.
pub struct KeyPurger {
    store: LedgerStore,
    interval: Duration,
    batch: usize,
    purged: metrics::Counter,
}

impl KeyPurger {
    /// A purger of `store`'s keys.
    pub fn new(store: LedgerStore, interval: Duration, batch: usize, metrics: &Metrics) -> Self {
        let purged = metrics.with(|| metrics::counter!(telemetry::IDEMPOTENCY_KEYS_PURGED_TOTAL));
        Self { store, interval, batch: batch.max(1), purged }
    }
}

impl Managed for KeyPurger {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.interval, || PurgeExpiredKeys);
    }
}

impl Handle<PurgeExpiredKeys> for KeyPurger {
    fn handle(&mut self, _: PurgeExpiredKeys, _: &mut Ctx<Self>) -> Reply<Self, Result<u64, LedgerFailure>> {
        let (store, batch, purged) = (self.store.clone(), self.batch, self.purged.clone());
        let round = async move {
            let now = Utc::now();
            let mut total = 0;
            for _ in 0..ROUND_BATCHES {
                let n = store.purge_expired_keys(now, batch).await.map_err(|e| {
                    tracing::warn!(error = %e, "idempotency key purge failed; retried at the next round");
                    LedgerFailure::Store
                })?;
                purged.increment(n);
                total += n;
                if (n as usize) < batch {
                    break;
                }
            }
            if total > 0 {
                tracing::info!(purged = total, "expired idempotency keys purged");
            }
            Ok(total)
        };
        // One round at a time: a slow round is not overlapped by the next tick's.
        Reply::atomic(round, |result, _, _| result)
    }
}
