//! The ESG writer: records what many callers (the event consumer's rides, REST and GraphQL
//! reports) queue up while the previous batch is in flight in one database transaction, so that
//! a commit's cost, the subjects' locks and the window reads are shared by every activity waiting
//! for them. Subjects are split into [`SHARDS`] shards by their blind index; each shard has one
//! batch in flight at a time, so the shards' commits overlap while one subject's activities are
//! still recorded in the order they arrived, and no two batches in flight wait for each other's
//! locks. The queue is bounded: while the database is slow or unreachable, an activity beyond the
//! bound is refused at once (the store is unavailable, retry later) instead of piling up.

use actix::fut::{wrap_future, ActorFutureExt};
use actix::AsyncContext;
use tokio::sync::oneshot;

use super::messages::{Answer, EsgFailure, Note, Record};
use crate::{
    actors::runtime::{Ctx, Handle, Host, Managed, Reply},
    adapters::esg::{Entry, EsgStore, EsgStoreError, Noted, Recorded},
    telemetry::{self, Metrics},
};

/// Registered name of the ESG writer.
pub const NAME: &str = "esg-writer";

/// Most activities recorded together.
pub const BATCH_MAX: usize = 512;

/// Most activities waiting for a batch.
pub const QUEUE_MAX: usize = 16_384;

/// Batches in flight at once, each for its own subjects.
pub const SHARDS: usize = 4;

type Waiter = oneshot::Sender<Answer<Recorded>>;

/// One shard's activities waiting, and whether its batch is in flight.
#[derive(Default)]
struct Shard {
    pending: Vec<(Entry, Waiter)>,
    in_flight: bool,
}

/// Owns the write path to the ESG store.
pub struct EsgWriter {
    store: EsgStore,
    shards: Vec<Shard>,
    waiting: usize,
    batch_size: metrics::Histogram,
}

impl EsgWriter {
    /// A writer recording into `store`.
    pub fn new(store: EsgStore, metrics: &Metrics) -> Self {
        let batch_size = metrics.with(|| metrics::histogram!(telemetry::ESG_BATCH_SIZE));
        Self { store, shards: (0..SHARDS).map(|_| Shard::default()).collect(), waiting: 0, batch_size }
    }

    /// Record what `shard` has pending (up to [`BATCH_MAX`]), unless its batch is in flight (it
    /// starts the next one when it ends).
    fn flush(&mut self, shard: usize, ctx: &mut Ctx<Self>) {
        let Some(s) = self.shards.get_mut(shard) else { return };
        if s.in_flight || s.pending.is_empty() {
            return;
        }
        let take = s.pending.len().min(BATCH_MAX);
        let (entries, waiters): (Vec<Entry>, Vec<Waiter>) = s.pending.drain(..take).unzip();
        s.in_flight = true;
        self.waiting -= take;
        self.batch_size.record(take as f64);
        let store = self.store.clone();
        let batch = async move { (store.record_batch(&entries).await, waiters) };
        ctx.spawn(wrap_future::<_, Host<Self>>(batch).map(move |(results, waiters), host, ctx| {
            match results {
                Ok(recorded) => {
                    for (result, waiter) in recorded.into_iter().zip(waiters) {
                        let _ = waiter.send(Ok(result));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, activities = waiters.len(), "ESG batch not recorded");
                    for waiter in waiters {
                        let _ = waiter.send(Err(EsgFailure::Store(e.clone())));
                    }
                }
            }
            let writer = host.actor();
            if let Some(s) = writer.shards.get_mut(shard) {
                s.in_flight = false;
            }
            writer.flush(shard, ctx);
        }));
    }
}

impl Managed for EsgWriter {}

impl Handle<Record> for EsgWriter {
    fn handle(&mut self, Record(entry): Record, ctx: &mut Ctx<Self>) -> Reply<Self, Answer<Recorded>> {
        if self.waiting >= QUEUE_MAX {
            let overloaded = EsgStoreError::Unavailable("the ESG writer's queue is full".into());
            return Reply::Now(Err(overloaded.into()));
        }
        let shard = usize::from(entry.0.index.0[0]) % SHARDS;
        let (tx, rx) = oneshot::channel();
        self.shards[shard].pending.push((entry, tx));
        self.waiting += 1;
        self.flush(shard, ctx);
        Reply::later(async move {
            rx.await.unwrap_or_else(|_| Err(EsgStoreError::Unavailable("the ESG writer restarted".into()).into()))
        })
    }
}

impl Handle<Note> for EsgWriter {
    /// One transaction of its own: participations and wallet changes are few beside activities,
    /// and the subject's row lock orders it with the batches that credit the same subject.
    fn handle(&mut self, Note(credit, signal): Note, _: &mut Ctx<Self>) -> Reply<Self, Answer<Noted>> {
        let store = self.store.clone();
        Reply::later(async move { Ok(store.note(&credit, &signal).await?) })
    }
}
