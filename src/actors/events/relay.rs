//! The outbox relay: publishes the events the ledger committed, batch after batch in outbox
//! order, and deletes a batch only once the broker has acknowledged every event in it. Records
//! are enqueued one after the other on a producer that keeps their order per partition and never
//! times a record out, so a broker outage delays publication without reordering or losing it.

use std::{
    collections::{BTreeMap, HashSet, VecDeque},
    convert::Infallible,
    sync::Arc,
    time::Duration,
};

use actix::fut::{wrap_future, ActorFutureExt};
use actix::{AsyncContext, Message};
use chrono::Utc;
use futures::future::join_all;
use uuid::Uuid;

use crate::{
    actors::runtime::{every, Ctx, Dependency, DependencyStatus, Envelope, Handle, Host, Managed, Registry, Reply},
    adapters::{
        bus::{BusError, OutRecord, Pending, Publisher},
        outbox::{Outbox, OutboxBatch, OutboxError},
    },
    config::EventBusSettings,
    domain::events::DomainEvent,
    telemetry::{self, Metrics},
};

/// Registered name of the outbox relay.
pub const NAME: &str = "outbox-relay";

/// Rounds published back to back before the relay lets its other messages in.
const ROUNDS_PER_TICK: usize = 16;

/// Rounds enqueued on the producer and not yet wholly acknowledged, at most.
const ROUNDS_IN_FLIGHT: usize = 4;

/// Publish what the outbox holds.
#[derive(Debug, Clone, Copy)]
pub struct Publish;

impl Message for Publish {
    type Result = Result<(), Infallible>;
}

/// Measure the outbox lag and probe the broker.
#[derive(Debug, Clone, Copy)]
pub struct Measure;

impl Message for Measure {
    type Result = Result<(), Infallible>;
}

/// The outbox relay.
pub struct OutboxRelay {
    outbox: Arc<tokio::sync::Mutex<Outbox>>,
    /// A connection of its own for measuring the lag: a publication waiting for the broker
    /// holds `outbox`, and the lag matters most then.
    gauge: Arc<tokio::sync::Mutex<Outbox>>,
    publisher: Publisher,
    settings: Arc<EventBusSettings>,
    metrics: Metrics,
    registry: Arc<Registry>,
    probe_every: Duration,
    probe_timeout: Duration,
    busy: bool,
    /// Events of a partly published batch that the broker already acknowledged.
    acked: Arc<parking_lot::Mutex<HashSet<Uuid>>>,
    /// The domains that publish: each one's topic is created at start.
    domains: Vec<&'static str>,
}

/// What the relay needs besides its outbox.
pub struct RelayDeps {
    /// Producer.
    pub publisher: Publisher,
    /// Bus settings.
    pub settings: Arc<EventBusSettings>,
    /// Metrics.
    pub metrics: Metrics,
    /// Where the broker's state is reported.
    pub registry: Arc<Registry>,
    /// Broker probe period.
    pub probe_every: Duration,
    /// Broker probe timeout.
    pub probe_timeout: Duration,
    /// The domains that publish through the outbox.
    pub domains: Vec<&'static str>,
}

impl OutboxRelay {
    /// A relay publishing `outbox`, and measuring its lag through `gauge` (another connection
    /// to the same outbox, which never takes the lead).
    pub fn new(outbox: Outbox, gauge: Outbox, deps: RelayDeps) -> Self {
        Self {
            outbox: Arc::new(tokio::sync::Mutex::new(outbox)),
            gauge: Arc::new(tokio::sync::Mutex::new(gauge)),
            publisher: deps.publisher,
            settings: deps.settings,
            metrics: deps.metrics,
            registry: deps.registry,
            probe_every: deps.probe_every,
            probe_timeout: deps.probe_timeout,
            busy: false,
            acked: Arc::default(),
            domains: deps.domains,
        }
    }
}

fn record(topic: &str, event: &DomainEvent) -> OutRecord {
    let mut headers = vec![
        ("event-id".to_owned(), event.id.to_string().into_bytes()),
        ("event-type".to_owned(), event.event_type.clone().into_bytes()),
        ("schema-version".to_owned(), event.schema_version.to_string().into_bytes()),
        ("content-type".to_owned(), b"application/json".to_vec()),
    ];
    if let Some(id) = &event.request_id {
        headers.push(("request-id".to_owned(), id.clone().into_bytes()));
    }
    OutRecord {
        topic: topic.to_owned(),
        key: Some(event.aggregate_id.clone().into_bytes()),
        payload: serde_json::to_vec(event).unwrap_or_default(),
        headers,
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] OutboxError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// One round: the batches fetched together, their records enqueued on the producer in outbox
/// order, and the waits for their acknowledgements.
struct Round {
    batches: Vec<OutboxBatch>,
    waits: Vec<(i64, Uuid, String, Pending)>,
}

/// Fetch the batches after `after` and enqueue their events (those not acknowledged already).
async fn start_round(
    outbox: &mut Outbox,
    publisher: &Publisher,
    settings: &EventBusSettings,
    acked: &parking_lot::Mutex<HashSet<Uuid>>,
    after: i64,
) -> Result<Round, RelayError> {
    let batches = outbox.fetch_after(after, settings.relay_batch_rows).await?;
    let mut waits = Vec::new();
    for batch in &batches {
        for event in &batch.events {
            if acked.lock().contains(&event.id) {
                continue;
            }
            let topic = settings.topic_of(&event.domain);
            let pending = publisher.enqueue(record(&topic, event)).await?;
            waits.push((batch.id, event.id, topic, pending));
        }
    }
    Ok(Round { batches, waits })
}

/// Wait for a round's acknowledgements and delete the batches the broker took whole.
async fn finish_round(
    round: Round,
    outbox: &mut Outbox,
    acked: &parking_lot::Mutex<HashSet<Uuid>>,
    metrics: &Metrics,
) -> Result<(), RelayError> {
    let Round { batches, waits } = round;
    let results = join_all(
        waits.into_iter().map(|(batch, event, topic, pending)| async move { (batch, event, topic, pending.await) }),
    )
    .await;
    let mut failed: HashSet<i64> = HashSet::new();
    let mut published: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    for (batch, event, topic, result) in results {
        match result {
            Ok(_) => {
                acked.lock().insert(event);
                *published.entry(topic).or_default() += 1;
            }
            Err(e) => {
                failed.insert(batch);
                metrics.with(|| {
                    metrics::counter!(telemetry::EVENTS_FAILED_TOTAL, "topic" => topic, "reason" => "publish")
                        .increment(1)
                });
                first_error.get_or_insert(e);
            }
        }
    }
    metrics.with(|| {
        for (topic, n) in published {
            metrics::counter!(telemetry::EVENTS_PUBLISHED_TOTAL, "topic" => topic).increment(n);
        }
    });
    let done: Vec<i64> = batches.iter().map(|b| b.id).filter(|id| !failed.contains(id)).collect();
    if !done.is_empty() {
        outbox.delete(&done).await?;
        let mut acked = acked.lock();
        for batch in batches.iter().filter(|b| !failed.contains(&b.id)) {
            for event in &batch.events {
                acked.remove(&event.id);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Publish up to [`ROUNDS_PER_TICK`] rounds from the oldest batch on, with up to
/// [`ROUNDS_IN_FLIGHT`] of them enqueued at once: the next round is fetched and enqueued while
/// the broker acknowledges the previous ones. The producer keeps the records' order within a
/// partition across rounds; a round's batches are deleted only once every event in them was
/// acknowledged. After a failure no new round starts, the rounds in flight are finished, and the
/// next tick starts again from the oldest batch left. Returns whether the outbox may hold more.
async fn publish(
    outbox: &mut Outbox,
    publisher: &Publisher,
    settings: &EventBusSettings,
    acked: &parking_lot::Mutex<HashSet<Uuid>>,
    metrics: &Metrics,
) -> Result<bool, RelayError> {
    let mut in_flight: VecDeque<Round> = VecDeque::new();
    let (mut after, mut started, mut more) = (0, 0, true);
    let mut first_error: Option<RelayError> = None;
    loop {
        while first_error.is_none() && more && started < ROUNDS_PER_TICK && in_flight.len() < ROUNDS_IN_FLIGHT {
            match start_round(outbox, publisher, settings, acked, after).await {
                Ok(round) => {
                    more = round.batches.len() == settings.relay_batch_rows;
                    after = round.batches.last().map_or(after, |b| b.id);
                    started += 1;
                    in_flight.push_back(round);
                }
                Err(e) => first_error = Some(e),
            }
        }
        let Some(round) = in_flight.pop_front() else { break };
        if let Err(e) = finish_round(round, outbox, acked, metrics).await {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(more),
    }
}

impl Managed for OutboxRelay {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        let (publisher, settings, domains) = (self.publisher.clone(), self.settings.clone(), self.domains.clone());
        let create = async move {
            if settings.create_topic_partitions > 0 {
                let topics: Vec<String> = domains.iter().map(|d| settings.topic_of(d)).collect();
                if let Err(e) = publisher
                    .ensure_topics(&topics, settings.create_topic_partitions, settings.create_topic_replication)
                    .await
                {
                    tracing::warn!(error = %e, "cannot create the event topics; publication waits for them");
                }
            }
        };
        ctx.wait(wrap_future::<_, Host<Self>>(create));
        every(ctx, Duration::from_millis(self.settings.relay_poll_ms), || Publish);
        every(ctx, self.probe_every, || Measure);
    }
}

impl Handle<Publish> for OutboxRelay {
    fn handle(&mut self, _: Publish, ctx: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        if self.busy {
            return Reply::Now(Ok(()));
        }
        self.busy = true;
        let (outbox, publisher, settings, acked, metrics) = (
            self.outbox.clone(),
            self.publisher.clone(),
            self.settings.clone(),
            self.acked.clone(),
            self.metrics.clone(),
        );
        let work = async move {
            let mut outbox = outbox.lock().await;
            match outbox.lead().await {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay cannot reach the database");
                    return false;
                }
            }
            match publish(&mut outbox, &publisher, &settings, &acked, &metrics).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox publication failed; retrying");
                    false
                }
            }
        };
        // A full tick leaves more behind: the next one starts at once instead of at the next poll.
        ctx.spawn(wrap_future::<_, Host<Self>>(work).map(|more, host, ctx| {
            host.actor().busy = false;
            if more {
                ctx.notify(Envelope::new(Publish, host.entry()));
            }
        }));
        Reply::Now(Ok(()))
    }
}

impl Handle<Measure> for OutboxRelay {
    fn handle(&mut self, _: Measure, _: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        let (outbox, publisher, metrics, registry, timeout) = (
            self.gauge.clone(),
            self.publisher.clone(),
            self.metrics.clone(),
            self.registry.clone(),
            self.probe_timeout,
        );
        let kafka = matches!(publisher, Publisher::Kafka(_));
        Reply::later(async move {
            if kafka {
                let result = publisher.probe(timeout).await;
                registry.report_dependency(Dependency {
                    name: "kafka".into(),
                    status: if result.is_ok() { DependencyStatus::Up } else { DependencyStatus::Down },
                    // The outbox holds events while the broker is away: not a reason to stop traffic.
                    required: false,
                    owner: NAME.into(),
                    detail: result.as_ref().err().map(|e| e.to_string()),
                    latency_ms: result.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
                    checked_at: Utc::now(),
                });
            }
            let lag = outbox.lock().await.lag().await;
            match lag {
                Ok(lag) => metrics.with(|| {
                    metrics::gauge!(telemetry::OUTBOX_LAG_EVENTS).set(lag.events as f64);
                    let age = lag.oldest.map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
                    metrics::gauge!(telemetry::OUTBOX_LAG_SECONDS).set(age.unwrap_or(0.0));
                }),
                Err(e) => tracing::warn!(error = %e, "cannot measure the outbox lag"),
            }
            Ok(())
        })
    }
}
