//! Starting managed actors, the handles callers use to reach them, and the watchdog that notices
//! an actor whose mailbox closed (its thread or task died) and starts it again.

use std::{future::Future, sync::Arc, time::Duration};

use actix::{Addr, MailboxError, Message, Supervisor};
use actix_rt::{Arbiter, ArbiterHandle};
use arc_swap::ArcSwap;
use futures::future::{join_all, LocalBoxFuture};
use parking_lot::Mutex;

use super::{
    fault::{FaultKind, InjectFault},
    host::{Drain, Envelope, Handle, Host, Managed, MessageMetricsCache, Restart, Succeeded},
    policy::RestartPolicy,
    registry::{ActorEntry, ActorKind, ActorState, FailureReason, Registry},
};
use crate::{
    config::SupervisionSettings,
    error::code::{Coded, ErrorCode},
    telemetry,
    telemetry::Metrics,
};

/// How an actor is registered.
#[derive(Debug, Clone)]
pub struct ActorSpec {
    /// Unique name, used in health, metrics and logs.
    pub name: String,
    /// What the actor is for.
    pub kind: ActorKind,
    /// Whether readiness depends on it.
    pub critical: bool,
}

impl ActorSpec {
    /// A spec.
    pub fn new(name: &str, kind: ActorKind, critical: bool) -> Self {
        Self { name: name.into(), kind, critical }
    }
}

/// Why an ask got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AskError {
    /// The actor is restarting, failed or gone; try again after `retry_after`.
    #[error("actor {actor} is unavailable")]
    Unavailable {
        /// Actor name.
        actor: Arc<str>,
        /// Suggested wait before retrying.
        retry_after: Duration,
    },
    /// The actor did not answer in time.
    #[error("actor {actor} did not answer within {timeout:?}")]
    Timeout {
        /// Actor name.
        actor: Arc<str>,
        /// The timeout that expired.
        timeout: Duration,
    },
}

impl Coded for AskError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } => ErrorCode::ActorUnavailable,
            Self::Timeout { .. } => ErrorCode::ActorTimeout,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => Some(*retry_after),
            Self::Timeout { .. } => None,
        }
    }
}

type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

struct Slot<A: Managed> {
    entry: Arc<ActorEntry>,
    addr: ArcSwap<Addr<Host<A>>>,
    arbiter: Mutex<ArbiterHandle>,
    factory: Factory<A>,
    metrics: Metrics,
    capacity: usize,
    ask_timeout: Duration,
}

impl<A: Managed> Slot<A> {
    fn start(
        factory: &Factory<A>,
        entry: &Arc<ActorEntry>,
        metrics: &Metrics,
        capacity: usize,
        arbiter: &ArbiterHandle,
        delay: Option<Duration>,
    ) -> Addr<Host<A>> {
        let (factory, entry, metrics) = (factory.clone(), entry.clone(), metrics.clone());
        // actix creates the mailbox with its default capacity and applies ours only once the
        // actor's thread runs this closure; wait for it so that no sender sees the small default.
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let addr = Supervisor::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            let _ = ready_tx.send(());
            Host::new(factory, entry, Arc::new(MessageMetricsCache::new(metrics)), delay)
        });
        // A dead arbiter never runs it: the watchdog replaces the actor then.
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
        addr
    }
}

/// The handle through which everything reaches a managed actor. It survives restarts, including
/// the replacement of an actor whose thread died.
pub struct ActorRef<A: Managed> {
    slot: Arc<Slot<A>>,
}

impl<A: Managed> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        Self { slot: self.slot.clone() }
    }
}

impl<A: Managed> ActorRef<A> {
    /// Registered name.
    pub fn name(&self) -> &str {
        &self.slot.entry.name
    }

    /// The supervision record.
    pub fn entry(&self) -> &Arc<ActorEntry> {
        &self.slot.entry
    }

    /// Send `msg` and wait for the answer, at most the configured ask timeout.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        A: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        self.ask_queued(msg).await
    }

    /// Queue `msg` now (in call order, before the returned future is first polled) and return
    /// the answer's future, bounded by the ask timeout.
    pub fn ask_queued<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, AskError>> + 'static
    where
        A: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        self.bounded(self.slot.addr.load().send(Envelope::new(msg, &self.slot.entry)))
    }

    /// Bound an answer by the ask timeout and flatten its errors: a closed mailbox is
    /// `Unavailable`, silence is `Timeout`.
    fn bounded<R>(
        &self,
        request: impl Future<Output = Result<R, MailboxError>> + 'static,
    ) -> impl Future<Output = Result<R, AskError>> + 'static {
        let (timeout, this) = (self.slot.ask_timeout, self.clone());
        async move {
            match tokio::time::timeout(timeout, request).await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(_)) => Err(this.unavailable()),
                Err(_) => Err(AskError::Timeout { actor: this.slot.entry.name.clone(), timeout }),
            }
        }
    }

    /// Send `msg` without waiting; returns false (and counts the drop) if it could not be queued.
    pub fn tell<M>(&self, msg: M) -> bool
    where
        A: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        let addr = self.slot.addr.load();
        if addr.connected() {
            addr.do_send(Envelope::new(msg, &self.slot.entry));
            true
        } else {
            self.slot.metrics.with(|| {
                metrics::counter!(telemetry::ACTOR_DROPPED_TOTAL, "actor" => self.slot.entry.name.to_string())
                    .increment(1)
            });
            false
        }
    }

    /// Queue `msg` without waiting and without exceeding the mailbox capacity; returns false
    /// (and counts the drop) if the mailbox is full or closed.
    pub fn try_tell<M>(&self, msg: M) -> bool
    where
        A: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        let sent = self.slot.addr.load().try_send(Envelope::new(msg, &self.slot.entry)).is_ok();
        if !sent {
            self.slot.metrics.with(|| {
                metrics::counter!(telemetry::ACTOR_DROPPED_TOTAL, "actor" => self.slot.entry.name.to_string())
                    .increment(1)
            });
        }
        sent
    }

    fn unavailable(&self) -> AskError {
        let retry_after = match self.slot.entry.state() {
            ActorState::Failed => Duration::from_secs(30),
            _ => Duration::from_secs(1),
        };
        AskError::Unavailable { actor: self.slot.entry.name.clone(), retry_after }
    }
}

/// What the watchdog and the shutdown sequence need from any managed actor.
trait Child: Send + Sync {
    fn entry(&self) -> &Arc<ActorEntry>;
    /// Start the actor again if its mailbox closed.
    fn check(&self);
    fn drain(&self, timeout: Duration) -> LocalBoxFuture<'static, bool>;
    fn inject(&self, kind: FaultKind) -> LocalBoxFuture<'static, Result<(), AskError>>;
    fn restart(&self) -> LocalBoxFuture<'static, Result<(), AskError>>;
    fn stop_thread(&self);
}

impl<A: Managed> Child for ActorRef<A> {
    fn entry(&self) -> &Arc<ActorEntry> {
        &self.slot.entry
    }

    fn check(&self) {
        let slot = &self.slot;
        if slot.addr.load().connected() || slot.entry.state() == ActorState::Stopped {
            return;
        }
        slot.metrics.with(|| {
            metrics::counter!(telemetry::ACTOR_FAILURES_TOTAL, "actor" => slot.entry.name.to_string(), "reason" => FailureReason::MailboxClosed.as_str()).increment(1)
        });
        let decision = slot.entry.record_failure(
            FailureReason::MailboxClosed,
            "the actor's mailbox closed: its thread or task ended".into(),
        );
        let mut arbiter = slot.arbiter.lock();
        if !arbiter.spawn(async {}) {
            *arbiter = Arbiter::new().handle();
        }
        let addr =
            Slot::start(&slot.factory, &slot.entry, &slot.metrics, slot.capacity, &arbiter, Some(decision.delay));
        slot.addr.store(Arc::new(addr));
    }

    fn drain(&self, timeout: Duration) -> LocalBoxFuture<'static, bool> {
        let request = self.slot.addr.load().send(Drain);
        let entry = self.slot.entry.clone();
        Box::pin(async move {
            let drained = matches!(tokio::time::timeout(timeout, request).await, Ok(Ok(())));
            entry.set_state(ActorState::Stopped);
            drained
        })
    }

    fn inject(&self, kind: FaultKind) -> LocalBoxFuture<'static, Result<(), AskError>> {
        let this = self.clone();
        Box::pin(async move { this.ask(InjectFault(kind)).await.map(|_| ()) })
    }

    fn restart(&self) -> LocalBoxFuture<'static, Result<(), AskError>> {
        Box::pin(self.bounded(self.slot.addr.load().send(Restart)))
    }

    fn stop_thread(&self) {
        self.slot.arbiter.lock().stop();
    }
}

/// The owner of a kind of entity actor.
type Owner = Arc<dyn super::entities::EntityOwner>;

/// Starts managed actors, watches them and drains them at shutdown.
pub struct Supervision {
    registry: Arc<Registry>,
    settings: SupervisionSettings,
    metrics: Metrics,
    children: Arc<Mutex<Vec<Arc<dyn Child>>>>,
    owners: Mutex<Vec<(Arc<str>, Owner)>>,
    watchdog: Mutex<Option<Arbiter>>,
}

impl Supervision {
    /// A supervisor for `registry`, with its restart policy from `settings`.
    pub fn new(registry: Arc<Registry>, settings: SupervisionSettings, metrics: Metrics) -> Self {
        Self {
            registry,
            settings,
            metrics,
            children: Arc::default(),
            owners: Mutex::default(),
            watchdog: Mutex::new(None),
        }
    }

    /// The registry every actor reports to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Register and start an actor on its own thread. `factory` builds its state, now and after
    /// every restart. Must run inside an actix system.
    pub fn spawn<A: Managed>(
        &self,
        spec: ActorSpec,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> anyhow::Result<ActorRef<A>> {
        let entry =
            Arc::new(ActorEntry::new(&spec.name, spec.kind, spec.critical, RestartPolicy::from(&self.settings)));
        self.registry.register(entry.clone()).map_err(anyhow::Error::msg)?;
        let factory: Factory<A> = Arc::new(factory);
        let arbiter = Arbiter::new().handle();
        let capacity = self.settings.mailbox_capacity;
        let addr = Slot::start(&factory, &entry, &self.metrics, capacity, &arbiter, None);
        let actor = ActorRef {
            slot: Arc::new(Slot {
                entry,
                addr: ArcSwap::from_pointee(addr),
                arbiter: Mutex::new(arbiter),
                factory,
                metrics: self.metrics.clone(),
                capacity,
                ask_timeout: Duration::from_millis(self.settings.ask_timeout_ms),
            }),
        };
        self.children.lock().push(Arc::new(actor.clone()));
        Ok(actor)
    }

    /// Register a kind of entity actor (see [`super::Entities`]): one record in the registry for
    /// all the entities of the kind, which the owner of the kind spawns on demand.
    pub fn entity_kind(&self, name: &str) -> anyhow::Result<super::EntityKind> {
        let restart = RestartPolicy::from(&self.settings);
        let entry = super::entities::kind_entry(name, restart);
        self.registry.register(entry.clone()).map_err(anyhow::Error::msg)?;
        Ok(super::EntityKind {
            entry,
            messages: Arc::new(MessageMetricsCache::new(self.metrics.clone())),
            ask_timeout: Duration::from_millis(self.settings.ask_timeout_ms),
        })
    }

    /// Name `owner` as the actor that owns the entities of `kind`, so that faults can be injected
    /// into them.
    pub fn own_entities<A>(&self, kind: &super::EntityKind, owner: &ActorRef<A>)
    where
        A: Handle<super::InjectEntityFault>,
    {
        self.owners.lock().push((kind.entry.name.clone(), Arc::new(owner.clone())));
    }

    /// Inject a fault into the entity `entity` of the kind named `name`; `None` if no kind has
    /// that name.
    pub async fn inject_entity_fault(
        &self,
        name: &str,
        entity: &str,
        kind: FaultKind,
    ) -> Option<Result<(), super::EntityFaultError>> {
        let owner = self.owners.lock().iter().find(|(n, _)| &**n == name).map(|(_, o)| o.clone())?;
        let msg = super::InjectEntityFault { kind: name.to_owned(), entity: entity.to_owned(), fault: kind };
        Some(owner.inject(msg).await)
    }

    /// Start the watchdog on its own thread: every interval it restarts actors whose mailbox
    /// closed and records a tick that `/health/live` checks.
    pub fn start_watchdog(&self) {
        let arbiter = Arbiter::new();
        let children = self.children.clone();
        let registry = self.registry.clone();
        let every = Duration::from_millis(self.settings.watchdog_interval_ms);
        arbiter.spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let all: Vec<_> = children.lock().clone();
                for child in all {
                    child.check();
                }
                registry.tick();
            }
        });
        self.registry.tick();
        *self.watchdog.lock() = Some(arbiter);
    }

    /// Inject a fault into the actor named `name`; `None` if there is no such actor.
    pub async fn inject_fault(&self, name: &str, kind: FaultKind) -> Option<Result<(), AskError>> {
        let child = self.children.lock().iter().find(|c| &*c.entry().name == name).cloned()?;
        Some(child.inject(kind).await)
    }

    /// Restart the actor named `name` now (operator action); `None` if there is no such actor.
    pub async fn restart_actor(&self, name: &str) -> Option<Result<(), AskError>> {
        let child = self.children.lock().iter().find(|c| &*c.entry().name == name).cloned()?;
        Some(child.restart().await)
    }

    /// Stop the watchdog, let every actor handle what is already in its mailbox (up to
    /// `timeout`), then stop their threads. Returns the names of actors that did not drain.
    pub async fn shutdown(&self, timeout: Duration) -> Vec<String> {
        if let Some(watchdog) = self.watchdog.lock().take() {
            watchdog.stop();
        }
        let all: Vec<_> = self.children.lock().clone();
        let results = join_all(all.iter().map(|c| c.drain(timeout))).await;
        let undrained =
            all.iter().zip(results).filter(|(_, drained)| !drained).map(|(c, _)| c.entry().name.to_string()).collect();
        for child in &all {
            child.stop_thread();
        }
        undrained
    }

    /// Stop the watchdog and every actor thread at once, without draining (an embedding that
    /// discards the application, such as a test, releases its threads and connections).
    pub fn halt(&self) {
        if let Some(watchdog) = self.watchdog.lock().take() {
            watchdog.stop();
        }
        for child in self.children.lock().iter() {
            child.entry().set_state(ActorState::Stopped);
            child.stop_thread();
        }
    }

    /// Set the per-actor gauges and counters from the supervision records, before a scrape.
    pub fn export_metrics(&self, live_stall: Duration) {
        let report = self.registry.report(live_stall);
        self.metrics.with(|| {
            for actor in self.registry.actors() {
                let name = actor.name.to_string();
                let state = actor.state();
                metrics::gauge!(telemetry::ACTOR_MAILBOX_DEPTH, "actor" => name.clone()).set(actor.mailbox_depth() as f64);
                metrics::counter!(telemetry::ACTOR_RESTARTS_TOTAL, "actor" => name.clone()).absolute(actor.restarts());
                metrics::gauge!(telemetry::ACTOR_UP, "actor" => name.clone(), "kind" => actor.kind.as_str(), "critical" => if actor.critical { "true" } else { "false" })
                    .set(if state == ActorState::Running { 1.0 } else { 0.0 });
                for s in ActorState::ALL {
                    metrics::gauge!(telemetry::ACTOR_STATE, "actor" => name.clone(), "state" => s.as_str()).set(if s == state { 1.0 } else { 0.0 });
                }
            }
            for dep in &report.dependencies {
                let up = dep.status == super::registry::DependencyStatus::Up;
                metrics::gauge!(telemetry::DEPENDENCY_UP, "dependency" => dep.name.clone()).set(if up { 1.0 } else { 0.0 });
            }
            metrics::gauge!(telemetry::HEALTH_READY).set(if report.ready { 1.0 } else { 0.0 });
            metrics::gauge!(telemetry::HEALTH_LIVE).set(if report.live { 1.0 } else { 0.0 });
        });
    }
}
