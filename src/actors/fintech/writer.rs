//! The ledger writer: commits what many wallet actors queue up while the previous commit is in
//! flight in one database transaction (group commit), so that a commit's cost is shared by every
//! command waiting for it. Its queue is bounded: while the database is slow or unreachable, a
//! command beyond the bound is refused at once (`overloaded`) instead of piling up; the store
//! bounds each commit in time, so the queue drains again as soon as the database answers.

use actix::fut::{wrap_future, ActorFutureExt};
use actix::AsyncContext;
use tokio::sync::oneshot;

use super::messages::{Commit, LedgerFailure};
use crate::{
    actors::runtime::{Ctx, Handle, Host, Managed, Reply},
    adapters::ledger::{LedgerStore, StoreError},
    domain::fintech::{LedgerOp, LedgerOutcome},
    telemetry::{self, Metrics},
};

/// Registered name of the ledger writer.
pub const NAME: &str = "ledger-writer";

/// Most commands committed together.
pub const BATCH_MAX: usize = 512;

type Waiter = oneshot::Sender<Result<LedgerOutcome, LedgerFailure>>;

/// Owns the write path to the ledger store.
pub struct LedgerWriter {
    store: LedgerStore,
    pending: Vec<(LedgerOp, Waiter)>,
    in_flight: bool,
    queue_max: usize,
    batch_size: metrics::Histogram,
    overloaded: metrics::Counter,
}

impl LedgerWriter {
    /// A writer committing to `store`, holding at most `queue_max` commands waiting.
    pub fn new(store: LedgerStore, queue_max: usize, metrics: &Metrics) -> Self {
        let batch_size = metrics.with(|| metrics::histogram!(telemetry::LEDGER_BATCH_SIZE));
        let overloaded = metrics.with(|| metrics::counter!(telemetry::LEDGER_OVERLOADED_TOTAL));
        Self { store, pending: Vec::new(), in_flight: false, queue_max: queue_max.max(1), batch_size, overloaded }
    }

    /// Start a commit of everything pending, unless one is in flight (it starts the next one
    /// when it ends).
    fn flush(&mut self, ctx: &mut Ctx<Self>) {
        if self.in_flight || self.pending.is_empty() {
            return;
        }
        let take = self.pending.len().min(BATCH_MAX);
        let (ops, waiters): (Vec<LedgerOp>, Vec<Waiter>) = self.pending.drain(..take).unzip();
        self.in_flight = true;
        self.batch_size.record(ops.len() as f64);
        let store = self.store.clone();
        let commit = async move {
            let results = store.commit(&ops).await;
            (results, waiters)
        };
        ctx.spawn(wrap_future::<_, Host<Self>>(commit).map(|(results, waiters), host, ctx| {
            for (result, waiter) in results.into_iter().zip(waiters) {
                let _ = waiter.send(result.map_err(|e: StoreError| {
                    tracing::error!(error = %e, "ledger commit failed");
                    LedgerFailure::Store
                }));
            }
            let writer = host.actor();
            writer.in_flight = false;
            writer.flush(ctx);
        }));
    }
}

impl Managed for LedgerWriter {}

impl Handle<Commit> for LedgerWriter {
    fn handle(&mut self, Commit(op): Commit, ctx: &mut Ctx<Self>) -> Reply<Self, Result<LedgerOutcome, LedgerFailure>> {
        if self.pending.len() >= self.queue_max {
            self.overloaded.increment(1);
            return Reply::Now(Err(LedgerFailure::Overloaded));
        }
        let (tx, rx) = oneshot::channel();
        self.pending.push((op, tx));
        self.flush(ctx);
        Reply::later(async move { rx.await.unwrap_or(Err(LedgerFailure::Store)) })
    }
}
