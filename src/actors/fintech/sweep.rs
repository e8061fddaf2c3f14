//! The hold sweeper: a supervised actor that releases the pending holds whose time has passed.
//! Each is voided through its wallet's actor like any other ledger command (the ledger records it
//! `expired`, since its `expires_at` has passed); until then an expired hold still counts as held,
//! and posting it is refused with `hold_expired`.

use std::time::Duration;

use actix::Message;
use chrono::Utc;

use super::{FintechClient, LedgerFailure};
use crate::{
    actors::runtime::{every, Ctx, Handle, Managed, Reply},
    adapters::ledger::LedgerStore,
    domain::fintech::{LedgerCommand, LedgerOutcome},
    telemetry::{self, Metrics},
};

/// Registered name of the sweeper.
pub const NAME: &str = "hold-sweeper";

/// Most holds released in one round; a backlog is worked off over several rounds.
const ROUND: usize = 500;

/// Release the holds expired by now; answers how many were released.
#[derive(Debug, Clone, Copy)]
pub struct SweepExpiredHolds;

impl Message for SweepExpiredHolds {
    type Result = Result<u64, LedgerFailure>;
}

/// Releases expired holds every `interval`.
pub struct HoldSweeper {
    store: LedgerStore,
    fintech: FintechClient,
    interval: Duration,
    released: metrics::Counter,
}

impl HoldSweeper {
    /// A sweeper of `store`'s holds, releasing them through `fintech`.
    pub fn new(store: LedgerStore, fintech: FintechClient, interval: Duration, metrics: &Metrics) -> Self {
        let released = metrics.with(|| metrics::counter!(telemetry::HOLDS_EXPIRED_TOTAL));
        Self { store, fintech, interval, released }
    }
}

impl Managed for HoldSweeper {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.interval, || SweepExpiredHolds);
    }
}

impl Handle<SweepExpiredHolds> for HoldSweeper {
    fn handle(&mut self, _: SweepExpiredHolds, _: &mut Ctx<Self>) -> Reply<Self, Result<u64, LedgerFailure>> {
        let (store, fintech, released) = (self.store.clone(), self.fintech.clone(), self.released.clone());
        let round = async move {
            let expired = store.expired_holds(Utc::now(), ROUND).await.map_err(|e| {
                tracing::warn!(error = %e, "expired holds not read; retried at the next round");
                LedgerFailure::Store
            })?;
            let mut total = 0;
            for hold in expired {
                let void = LedgerCommand::VoidHold { hold: hold.id, wallet: hold.wallet };
                match fintech.apply(void, None).await {
                    Ok(LedgerOutcome::Applied { .. }) => total += 1,
                    // Posted or voided meanwhile.
                    Ok(_) => {}
                    Err(e) => tracing::warn!(hold = %hold.id, error = %e, "expired hold not released; retried later"),
                }
            }
            released.increment(total);
            if total > 0 {
                tracing::info!(released = total, "expired holds released");
            }
            Ok(total)
        };
        // One round at a time: a slow round is not overlapped by the next tick's.
        Reply::atomic(round, |result, _, _| result)
    }
}
