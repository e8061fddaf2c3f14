//! The event consumer: a member of the workers' consumer group that hands each inbound message
//! to the handler its domain registered for the message's type (see [`super::routes`]), which
//! queues it to the actor owning its aggregate; many are applied at once. A partition's offset is committed
//! only up to the first message still being applied, so a crash re-delivers what was not
//! finished; the change is recorded under a transaction id derived from the event id, so a
//! re-delivery changes nothing. A message that can never be applied (malformed, refused by a rule
//! of its domain, a conflicting duplicate) goes to `<topic>.dlq` with the reason and its original
//! coordinates, and its partition moves on. A transient failure (the ledger unreachable, timed
//! out or overloaded) never dead-letters: the message is retried with capped backoff until it is
//! applied, its partition paused meanwhile (nothing more of it is fetched) and its offset not
//! committed.

use std::{convert::Infallible, sync::Arc, time::Duration};

use actix::fut::wrap_future;
use actix::{AsyncContext, Message, SpawnHandle};
use chrono::Utc;
use parking_lot::Mutex;
use rdkafka::consumer::CommitMode;
use tokio::sync::{oneshot, Semaphore};

use super::routes::{Applied, EventRoutes, Route};

use crate::{
    actors::runtime::{every, Ctx, Handle, Host, Managed, Reply},
    adapters::bus::{BusError, InRecord, KafkaConsumer, MemoryBroker, MemoryConsumer, OutRecord, Publisher, Tracker},
    config::{EventBusKind, EventBusSettings},
    domain::events::InboundError,
    telemetry::{self, Metrics},
};

/// Registered name of the event consumer.
pub const NAME: &str = "event-consumer";

/// Threads that decode and apply inbound messages.
const APPLY_THREADS: usize = 2;

/// Commit the offsets that moved.
#[derive(Debug, Clone, Copy)]
pub struct CommitOffsets;

impl Message for CommitOffsets {
    type Result = Result<usize, Infallible>;
}

enum Source {
    Kafka(KafkaConsumer),
    Memory(MemoryConsumer),
}

impl Source {
    async fn recv(&self) -> Result<InRecord, BusError> {
        match self {
            Self::Kafka(c) => c.recv().await,
            Self::Memory(c) => Ok(c.recv().await),
        }
    }

    fn pause(&self, topic: &str, partition: i32) {
        match self {
            Self::Kafka(c) => {
                if let Err(e) = c.pause(topic, partition) {
                    tracing::warn!(error = %e, topic, partition, "cannot pause the partition");
                }
            }
            Self::Memory(c) => c.pause(topic, partition),
        }
    }

    fn resume(&self, topic: &str, partition: i32) {
        match self {
            Self::Kafka(c) => {
                if let Err(e) = c.resume(topic, partition) {
                    tracing::warn!(error = %e, topic, partition, "cannot resume the partition");
                }
            }
            Self::Memory(c) => c.resume(topic, partition),
        }
    }
}

/// The partitions paused while some of their messages wait for a transient failure to pass, with
/// how many messages each is paused for.
struct Holds {
    source: Arc<Source>,
    paused: Mutex<std::collections::HashMap<(String, i32), usize>>,
    gauge: metrics::Gauge,
}

impl Holds {
    fn new(source: Arc<Source>, metrics: &Metrics) -> Self {
        let gauge = metrics.with(|| metrics::gauge!(telemetry::EVENTS_PAUSED_PARTITIONS));
        gauge.set(0.0);
        Self { source, paused: Mutex::default(), gauge }
    }

    /// Pause `record`'s partition for it (the first message held pauses it).
    fn hold(&self, record: &InRecord) {
        let mut paused = self.paused.lock();
        let count = paused.entry((record.topic.clone(), record.partition)).or_insert(0);
        *count += 1;
        if *count == 1 {
            self.source.pause(&record.topic, record.partition);
            tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, "partition paused until the ledger answers again");
        }
        self.gauge.set(paused.len() as f64);
    }

    /// Release `record`'s hold on its partition (the last one resumes it).
    fn release(&self, record: &InRecord) {
        let mut paused = self.paused.lock();
        let key = (record.topic.clone(), record.partition);
        if let Some(count) = paused.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                paused.remove(&key);
                self.source.resume(&record.topic, record.partition);
                tracing::info!(topic = %record.topic, partition = record.partition, "partition resumed");
            }
        }
        self.gauge.set(paused.len() as f64);
    }
}

/// What the consumer needs.
#[derive(Clone)]
pub struct ConsumerDeps {
    /// Bus settings.
    pub settings: Arc<EventBusSettings>,
    /// Producer of dead letters.
    pub publisher: Publisher,
    /// The in-process broker (embedded mode).
    pub broker: MemoryBroker,
    /// The handlers of every consumed event type.
    pub routes: Arc<EventRoutes>,
    /// Metrics.
    pub metrics: Metrics,
}

/// The event consumer.
pub struct EventConsumer {
    deps: ConsumerDeps,
    tracker: Arc<Mutex<Tracker>>,
    source: Option<Arc<Source>>,
    pump: Option<SpawnHandle>,
    workers: Vec<actix_rt::ArbiterHandle>,
}

impl EventConsumer {
    /// A consumer of the configured inbound topics.
    pub fn new(deps: ConsumerDeps) -> Self {
        Self { deps, tracker: Arc::default(), source: None, pump: None, workers: Vec::new() }
    }

    fn stop_workers(&mut self) {
        for worker in self.workers.drain(..) {
            worker.stop();
        }
    }
}

impl Drop for EventConsumer {
    /// The apply threads go with the actor (a restart builds a new one).
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// How one message ended.
enum Verdict {
    Applied,
    Duplicate,
    Ignored,
    DeadLetter { reason: &'static str, detail: String },
}

impl Managed for EventConsumer {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        // A restart starts from the committed offsets with a fresh view of what is in flight.
        self.tracker = Arc::default();
        let deps = self.deps.clone();
        let topics = deps.settings.inbound_topics.clone();
        if topics.is_empty() {
            tracing::info!("no inbound topics configured: this process consumes nothing");
            return;
        }
        let source = match deps.settings.effective_kind() {
            EventBusKind::Kafka => {
                match KafkaConsumer::new(&deps.settings, self.tracker.clone(), deps.metrics.clone()) {
                    Ok(c) => Source::Kafka(c),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot create the Kafka consumer");
                        return;
                    }
                }
            }
            EventBusKind::Memory => Source::Memory(deps.broker.consumer(&deps.settings.consumer_group, &topics)),
        };
        let source = Arc::new(source);
        self.source = Some(source.clone());
        let holds = Arc::new(Holds::new(source.clone(), &deps.metrics));
        // Messages are decoded and applied on a few threads of their own; the actor's thread only
        // receives them and keeps the offsets.
        self.stop_workers();
        self.workers = (0..APPLY_THREADS).map(|_| actix_rt::Arbiter::new().handle()).collect();
        let workers = self.workers.clone();
        let tracker = self.tracker.clone();
        let pump = async move {
            let settings = deps.settings.clone();
            if settings.create_topic_partitions > 0 {
                let mut all = topics.clone();
                all.extend(topics.iter().map(|t| format!("{t}{}", settings.dead_letter_suffix)));
                if let Err(e) = deps
                    .publisher
                    .ensure_topics(&all, settings.create_topic_partitions, settings.create_topic_replication)
                    .await
                {
                    tracing::warn!(error = %e, "cannot create the inbound topics");
                }
            }
            // Subscribed only once the topics exist (see `KafkaConsumer::subscribe`).
            if let Source::Kafka(consumer) = source.as_ref() {
                if let Err(e) = consumer.subscribe(&topics) {
                    tracing::error!(error = %e, "cannot subscribe to the inbound topics");
                    return;
                }
            }
            let slots = Arc::new(Semaphore::new(settings.max_in_flight));
            let mut next = 0usize;
            let mut turns = Turns::default();
            let mut meters = Meters::default();
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let record = match source.recv().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "event consumer: receive failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                tracker.lock().start(&record.topic, record.partition, record.offset);
                let routes = deps.routes.route(&record);
                let domains: Vec<&'static str> = match &routes {
                    Ok(routes) => routes.iter().map(|r| r.domain).collect(),
                    Err(_) => vec![UNROUTED],
                };
                // One set of meters per consuming domain; the partition's own are in each.
                let meters: Vec<PartitionMeters> = domains
                    .iter()
                    .map(|domain| meters.of(&deps.metrics, &record.topic, record.partition, domain).clone())
                    .collect();
                if let Some(first) = meters.first() {
                    first.consumed.increment(1);
                    if let Some(ts) = record.timestamp_ms {
                        first.age.set((Utc::now().timestamp_millis() - ts).max(0) as f64 / 1000.0);
                    }
                }
                let (deps, tracker, holds) = (deps.clone(), tracker.clone(), holds.clone());
                let turn = turns.take(&record, settings.max_in_flight);
                // One key's messages go to one thread, where waiting for the previous one of the
                // key wakes no other thread.
                let pick = record.key.as_deref().map(key_hash).unwrap_or_else(|| {
                    next = next.wrapping_add(1);
                    next
                });
                let worker = &workers[pick % workers.len()];
                worker.spawn(async move {
                    handle_record(&deps, &holds, &meters, &record, routes, turn).await;
                    tracker.lock().finish(&record.topic, record.partition, record.offset);
                    drop(slot);
                });
            }
        };
        self.pump = Some(ctx.spawn(wrap_future::<_, Host<Self>>(pump)));
        every(ctx, Duration::from_millis(self.deps.settings.commit_interval_ms), || CommitOffsets);
    }

    fn drained(&mut self, ctx: &mut Ctx<Self>) {
        if let Some(pump) = self.pump.take() {
            ctx.cancel_future(pump);
        }
        self.stop_workers();
        let offsets = self.tracker.lock().committable();
        let Some(source) = self.source.take() else { return };
        if let Source::Memory(c) = source.as_ref() {
            c.commit(&offsets);
            return;
        }
        // Committing and leaving the group wait for the broker: do it off the actor thread, for
        // a bounded time; the client itself closes once the cancelled pump has let go of it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if let Source::Kafka(c) = source.as_ref() {
                c.leave(&offsets);
            }
            let _ = tx.send(());
            let mut source = source;
            for _ in 0..500 {
                match Arc::try_unwrap(source) {
                    Ok(owned) => return drop(owned),
                    Err(shared) => source = shared,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        if rx.recv_timeout(Duration::from_secs(5)).is_ok() {
            tracing::info!("event consumer committed its offsets and left the group");
        } else {
            tracing::warn!("event consumer did not leave the group within 5 s");
        }
    }
}

impl Handle<CommitOffsets> for EventConsumer {
    fn handle(&mut self, _: CommitOffsets, _: &mut Ctx<Self>) -> Reply<Self, Result<usize, Infallible>> {
        let Some(source) = self.source.clone() else { return Reply::Now(Ok(0)) };
        let offsets = self.tracker.lock().advanced();
        let n = offsets.len();
        match source.as_ref() {
            Source::Memory(c) => c.commit(&offsets),
            Source::Kafka(c) => {
                if let Err(e) = c.commit(&offsets, CommitMode::Async) {
                    tracing::warn!(error = %e, "offset commit failed; retried at the next tick");
                    // Forget what was not committed so that the next tick tries again.
                    self.tracker.lock().uncommit(&offsets);
                }
            }
        }
        Reply::Now(Ok(n))
    }
}

/// The metrics of one inbound partition, registered when its first message arrives (a lookup by
/// name and labels for every message would cost more than the increment).
#[derive(Clone)]
struct PartitionMeters {
    consumed: metrics::Counter,
    age: metrics::Gauge,
    applied: metrics::Counter,
    duplicate: metrics::Counter,
    ignored: metrics::Counter,
}

/// The `actor` label of messages no domain consumes.
const UNROUTED: &str = "none";

/// Every inbound partition's metrics, by topic (a few), partition and consuming domain.
#[derive(Default)]
struct Meters(Vec<(String, ByPartition)>);

/// One topic's metrics, by partition and consuming domain.
type ByPartition = std::collections::HashMap<(i32, &'static str), PartitionMeters>;

impl Meters {
    fn of(&mut self, recorder: &Metrics, topic: &str, partition: i32, domain: &'static str) -> &PartitionMeters {
        let i = match self.0.iter().position(|(t, _)| t == topic) {
            Some(i) => i,
            None => {
                self.0.push((topic.to_owned(), Default::default()));
                self.0.len() - 1
            }
        };
        self.0[i].1.entry((partition, domain)).or_insert_with(|| {
            recorder.with(|| {
                let (t, p) = (topic.to_owned(), partition.to_string());
                let applied = |result: &'static str| {
                    metrics::counter!(telemetry::EVENTS_APPLIED_TOTAL, "topic" => t.clone(), "actor" => domain, "result" => result)
                };
                PartitionMeters {
                    consumed: metrics::counter!(telemetry::EVENTS_CONSUMED_TOTAL, "topic" => t.clone(), "partition" => p.clone()),
                    age: metrics::gauge!(telemetry::EVENTS_CONSUMER_LAG_SECONDS, "topic" => t.clone(), "partition" => p),
                    applied: applied("applied"),
                    duplicate: applied("duplicate"),
                    ignored: applied("ignored"),
                }
            })
        })
    }
}

/// Messages of one key reach the owning actor in the order they were received, though they are
/// decoded and checked in parallel: each waits until the previous message of its key has been
/// queued to the actor (or has ended) before it queues its own command.
#[derive(Default)]
struct Turns {
    last: std::collections::HashMap<Vec<u8>, oneshot::Receiver<()>>,
}

/// A message's place among the messages of its key.
struct Turn {
    /// Resolves when the previous message of the key has been queued (or has ended).
    after: Option<oneshot::Receiver<()>>,
    /// Tells the next message of the key that this one has been queued (dropped: has ended).
    done: Option<oneshot::Sender<()>>,
}

impl Turns {
    fn take(&mut self, record: &InRecord, in_flight: usize) -> Turn {
        let Some(key) = &record.key else { return Turn { after: None, done: None } };
        if self.last.len() > 4 * in_flight.max(1) {
            // Forget the keys whose last message has been queued already.
            self.last.retain(|_, rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty)));
        }
        let (tx, rx) = oneshot::channel();
        let after = self.last.insert(key.clone(), rx);
        Turn { after, done: Some(tx) }
    }
}

impl Turn {
    async fn wait(&mut self) {
        if let Some(after) = self.after.take() {
            let _ = after.await;
        }
    }

    fn queued(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

fn key_hash(key: &[u8]) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish() as usize
}

/// Apply one message in every domain that consumes it (`meters` are theirs, in the order of
/// `routes`), retrying transient failures, and dead-letter it, once, when a domain cannot apply
/// it (the others' changes stand: each domain applies an event once, so a replay of the dead
/// letter changes nothing where it was applied).
async fn handle_record(
    deps: &ConsumerDeps,
    holds: &Holds,
    meters: &[PartitionMeters],
    record: &InRecord,
    routes: Result<Vec<Route>, InboundError>,
    mut turn: Turn,
) {
    let verdicts = match routes {
        Ok(routes) => apply_with_retries(deps, holds, &routes, record, &mut turn).await,
        Err(InboundError::UnknownType(t)) if deps.routes.ignores(&t) => vec![Verdict::Ignored],
        Err(e) => vec![Verdict::DeadLetter { reason: e.reason(), detail: e.to_string() }],
    };
    drop(turn);
    let mut refused = None;
    for (verdict, meters) in verdicts.into_iter().zip(meters) {
        match verdict {
            Verdict::Applied => meters.applied.increment(1),
            Verdict::Duplicate => meters.duplicate.increment(1),
            Verdict::Ignored => meters.ignored.increment(1),
            Verdict::DeadLetter { reason, detail } => {
                refused.get_or_insert((reason, detail));
            }
        }
    }
    if let Some((reason, detail)) = refused {
        tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, reason, detail = %detail, "event dead-lettered");
        let letter = dead_letter(record, &deps.settings.dead_letter_suffix, reason, &detail);
        let mut backoff = Duration::from_millis(deps.settings.retry_backoff_ms.max(1));
        while let Err(e) = deps.publisher.send(letter.clone()).await {
            tracing::warn!(error = %e, "cannot publish a dead letter; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        deps.metrics.with(|| {
            metrics::counter!(telemetry::EVENTS_DEAD_LETTERED_TOTAL, "topic" => record.topic.clone(), "reason" => reason)
                .increment(1)
        });
    }
}

/// The dead letter of `record`: its key, value and headers, plus why and where it came from.
pub fn dead_letter(record: &InRecord, suffix: &str, reason: &str, detail: &str) -> OutRecord {
    let mut headers = record.headers.clone();
    headers.extend([
        ("dlq-reason".to_owned(), reason.as_bytes().to_vec()),
        ("dlq-error".to_owned(), detail.as_bytes().to_vec()),
        ("dlq-original-topic".to_owned(), record.topic.as_bytes().to_vec()),
        ("dlq-original-partition".to_owned(), record.partition.to_string().into_bytes()),
        ("dlq-original-offset".to_owned(), record.offset.to_string().into_bytes()),
        ("dlq-failed-at".to_owned(), Utc::now().to_rfc3339().into_bytes()),
    ]);
    OutRecord {
        topic: format!("{}{suffix}", record.topic),
        key: record.key.clone(),
        payload: record.payload.clone().unwrap_or_default(),
        headers,
    }
}

/// How each of `routes` ended with `record`, in their order.
async fn apply_with_retries(
    deps: &ConsumerDeps,
    holds: &Holds,
    routes: &[Route],
    record: &InRecord,
    turn: &mut Turn,
) -> Vec<Verdict> {
    let mut verdicts: Vec<Option<Verdict>> = routes.iter().map(|_| None).collect();
    let mut pending = Vec::with_capacity(routes.len());
    for (i, route) in routes.iter().enumerate() {
        match route.handler.prepare(record) {
            Ok(attempt) => pending.push((i, attempt)),
            Err(e) => verdicts[i] = Some(Verdict::DeadLetter { reason: e.reason(), detail: e.to_string() }),
        }
    }
    let mut backoff = Duration::from_millis(deps.settings.retry_backoff_ms.max(1));
    let most = Duration::from_millis(deps.settings.retry_backoff_max_ms).max(backoff);
    let mut held = false;
    while !pending.is_empty() {
        // Queued in the order the messages of this key were received, in every domain (the
        // first attempt only: a retry keeps the place its first attempt took).
        turn.wait().await;
        let answers: Vec<_> = pending.iter().map(|(_, attempt)| attempt()).collect();
        turn.queued();
        let answers = futures::future::join_all(answers).await;
        let mut failing = Vec::new();
        for ((i, attempt), answer) in pending.into_iter().zip(answers) {
            verdicts[i] = match answer {
                Ok(Applied::Applied) => Some(Verdict::Applied),
                Ok(Applied::Duplicate) => Some(Verdict::Duplicate),
                Ok(Applied::Ignored) => Some(Verdict::Ignored),
                Ok(Applied::Refused(e)) => Some(Verdict::DeadLetter { reason: e.reason(), detail: e.to_string() }),
                Err(failure) => {
                    deps.metrics.with(|| {
                        metrics::counter!(telemetry::EVENTS_FAILED_TOTAL, "topic" => record.topic.clone(), "reason" => failure)
                            .increment(1)
                    });
                    failing.push((i, attempt));
                    None
                }
            };
        }
        pending = failing;
        if !pending.is_empty() {
            // Transient: retried until applied, however long the store takes to answer, with
            // the partition paused so that nothing after it is fetched meanwhile.
            if !held {
                holds.hold(record);
                held = true;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(most);
        }
    }
    if held {
        holds.release(record);
    }
    verdicts.into_iter().map(|v| v.unwrap_or(Verdict::Ignored)).collect()
}
