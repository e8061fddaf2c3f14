//! What the runtime knows about every actor and every dependency; health and metrics are read
//! from here and nowhere else.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use super::policy::{RestartDecision, RestartHistory, RestartPolicy};

/// Supervision state of one actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum ActorState {
    /// Created, `started` not yet run.
    Starting = 0,
    /// Handling messages.
    Running = 1,
    /// Failed and waiting for its backoff delay before running again.
    Restarting = 2,
    /// Restarted too often within the window; messages are refused until the window passes.
    Failed = 3,
    /// Stopped on purpose (shutdown).
    Stopped = 4,
}

impl ActorState {
    /// Every state, in exposition order.
    pub const ALL: [ActorState; 5] = [Self::Starting, Self::Running, Self::Restarting, Self::Failed, Self::Stopped];

    /// Lower-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Starting,
            1 => Self::Running,
            2 => Self::Restarting,
            3 => Self::Failed,
            _ => Self::Stopped,
        }
    }
}

/// What an actor is for; a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// Owns a domain aggregate (or the actors that do).
    Domain,
    /// Owns connections to infrastructure or external APIs.
    Adapter,
    /// Consumes an event stream.
    Consumer,
    /// Writes the audit trail.
    Audit,
    /// Part of the service's own machinery.
    System,
    /// The per-id actors of one kind (wallets, rides, ...), counted together.
    Entity,
}

impl ActorKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Adapter => "adapter",
            Self::Consumer => "consumer",
            Self::Audit => "audit",
            Self::System => "system",
            Self::Entity => "entity",
        }
    }
}

/// Why an actor stopped unexpectedly; a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// A handler panicked.
    Panic,
    /// A handler reported an unrecoverable error.
    Fatal,
    /// The mailbox closed without a stop: the actor's thread or task died.
    MailboxClosed,
}

impl FailureReason {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Panic => "panic",
            Self::Fatal => "fatal",
            Self::MailboxClosed => "mailbox_closed",
        }
    }
}

/// The last failure of an actor.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Kind of failure.
    pub reason: FailureReason,
    /// Short description (panic message or error), for operators only.
    pub detail: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// Live supervision record of one actor, shared by the actor, its handles and the watchdog.
pub struct ActorEntry {
    /// Registered name; unique in a registry, a metric label.
    pub name: Arc<str>,
    /// What the actor is for.
    pub kind: ActorKind,
    /// Whether readiness depends on this actor running.
    pub critical: bool,
    state: AtomicU8,
    started_once: AtomicBool,
    restarts: AtomicU64,
    handled: AtomicU64,
    depth: AtomicI64,
    /// Boxed: most actors never fail, and an entity's record is kept per live entity.
    last_failure: Mutex<Option<Box<Failure>>>,
    history: Mutex<RestartHistory>,
    /// Shared by the entities of a kind.
    policy: Arc<RestartPolicy>,
    /// The record of an entity's kind, which adds up the counts of all its entities.
    pub(crate) parent: Option<Arc<ActorEntry>>,
}

impl ActorEntry {
    pub(crate) fn new(name: &str, kind: ActorKind, critical: bool, policy: RestartPolicy) -> Self {
        Self::with_shared(Arc::from(name), kind, critical, Arc::new(policy))
    }

    /// A record whose name and restart policy are shared with others (entities of one kind).
    pub(crate) fn with_shared(name: Arc<str>, kind: ActorKind, critical: bool, policy: Arc<RestartPolicy>) -> Self {
        Self {
            name,
            kind,
            critical,
            state: AtomicU8::new(ActorState::Starting as u8),
            started_once: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            depth: AtomicI64::new(0),
            last_failure: Mutex::new(None),
            history: Mutex::new(RestartHistory::default()),
            policy,
            parent: None,
        }
    }

    pub(crate) fn policy(&self) -> &Arc<RestartPolicy> {
        &self.policy
    }

    /// Current state.
    pub fn state(&self) -> ActorState {
        ActorState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: ActorState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn mark_running(&self) {
        self.set_state(ActorState::Running);
        self.started_once.store(true, Ordering::Release);
        self.history.lock().running_since(Instant::now());
    }

    /// Whether the actor has reached `running` at least once.
    pub fn started_once(&self) -> bool {
        self.started_once.load(Ordering::Acquire)
    }

    /// Restarts since the process started.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Messages handled since the process started.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub(crate) fn count_handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = &self.parent {
            kind.count_handled();
        }
    }

    /// Messages sent and not yet taken out of the mailbox.
    pub fn mailbox_depth(&self) -> i64 {
        self.depth.load(Ordering::Relaxed).max(0)
    }

    pub(crate) fn enqueued(&self) {
        self.depth.fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = &self.parent {
            kind.enqueued();
        }
    }

    pub(crate) fn dequeued(&self) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        if let Some(kind) = &self.parent {
            kind.dequeued();
        }
    }

    /// The last failure, if any.
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure.lock().as_deref().cloned()
    }

    /// An operator asked for a restart: count it and forget past failures.
    pub(crate) fn operator_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        *self.history.lock() = RestartHistory::default();
        self.set_state(ActorState::Restarting);
    }

    /// Record a failure and decide how the actor comes back.
    pub(crate) fn record_failure(&self, reason: FailureReason, detail: String) -> RestartDecision {
        tracing::error!(actor = %self.name, reason = reason.as_str(), detail = %detail, "actor failed");
        if let Some(kind) = &self.parent {
            // The kind keeps running: it counts the restart and remembers the failure.
            kind.restarts.fetch_add(1, Ordering::Relaxed);
            *kind.last_failure.lock() = Some(Box::new(Failure { reason, detail: detail.clone(), at: Utc::now() }));
        }
        *self.last_failure.lock() = Some(Box::new(Failure { reason, detail, at: Utc::now() }));
        self.restarts.fetch_add(1, Ordering::Relaxed);
        let decision = self.history.lock().next(&self.policy, Instant::now());
        self.set_state(if decision.failed { ActorState::Failed } else { ActorState::Restarting });
        if decision.failed {
            tracing::error!(actor = %self.name, retry_in_ms = decision.delay.as_millis() as u64, "actor marked failed after repeated restarts");
        } else {
            tracing::warn!(actor = %self.name, delay_ms = decision.delay.as_millis() as u64, "actor restarting");
        }
        decision
    }
}

/// State of a dependency as reported by the actor that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DependencyStatus {
    /// Answering.
    Up,
    /// Not answering.
    Down,
}

/// A dependency report.
#[derive(Debug, Clone, Serialize)]
pub struct Dependency {
    /// Name (postgres, redis, kafka, ...).
    pub name: String,
    /// Up or down.
    pub status: DependencyStatus,
    /// Whether readiness requires it.
    pub required: bool,
    /// Actor that owns and probes it.
    pub owner: String,
    /// Operator-facing detail (e.g. the probe error kind); never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Probe latency in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// When it was last probed.
    pub checked_at: DateTime<Utc>,
}

/// Every actor and dependency of one `Application`.
pub struct Registry {
    actors: RwLock<Vec<Arc<ActorEntry>>>,
    dependencies: RwLock<BTreeMap<String, Dependency>>,
    epoch: Instant,
    last_tick_ms: AtomicU64,
    shutting_down: AtomicBool,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            actors: RwLock::new(Vec::new()),
            dependencies: RwLock::new(BTreeMap::new()),
            epoch: Instant::now(),
            last_tick_ms: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl Registry {
    pub(crate) fn register(&self, entry: Arc<ActorEntry>) -> Result<(), String> {
        let mut actors = self.actors.write();
        if actors.iter().any(|a| a.name == entry.name) {
            return Err(format!("an actor named {} is already registered", entry.name));
        }
        actors.push(entry);
        Ok(())
    }

    /// Every registered actor.
    pub fn actors(&self) -> Vec<Arc<ActorEntry>> {
        self.actors.read().clone()
    }

    /// Record what an owning actor found when probing a dependency.
    pub fn report_dependency(&self, dependency: Dependency) {
        let mut deps = self.dependencies.write();
        let changed = deps.get(&dependency.name).is_none_or(|d| d.status != dependency.status);
        if changed {
            match dependency.status {
                DependencyStatus::Up => {
                    tracing::info!(dependency = %dependency.name, owner = %dependency.owner, "dependency up")
                }
                DependencyStatus::Down => {
                    tracing::warn!(dependency = %dependency.name, owner = %dependency.owner, detail = dependency.detail.as_deref().unwrap_or(""), "dependency down")
                }
            }
        }
        deps.insert(dependency.name.clone(), dependency);
    }

    /// Whether `name` was last reported down (no allocation: called on every request).
    pub fn dependency_down(&self, name: &str) -> bool {
        self.dependencies.read().get(name).is_some_and(|d| d.status == DependencyStatus::Down)
    }

    /// Every dependency reported so far.
    pub fn dependencies(&self) -> Vec<Dependency> {
        self.dependencies.read().values().cloned().collect()
    }

    pub(crate) fn tick(&self) {
        self.last_tick_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Time since the watchdog last completed a round.
    pub fn since_last_tick(&self) -> Duration {
        let last = Duration::from_millis(self.last_tick_ms.load(Ordering::Acquire));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Mark the process as shutting down: readiness fails from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Overall)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Everything runs.
    Ok,
    /// Ready, but something optional is down (a non-critical actor, an optional dependency).
    Degraded,
    /// Not ready.
    Down,
}

/// One actor as health reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ActorReport {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ActorKind,
    /// Whether readiness depends on it.
    pub critical: bool,
    /// Supervision state.
    pub state: ActorState,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Messages waiting.
    pub mailbox_depth: i64,
    /// Messages handled.
    pub messages_handled: u64,
    /// Last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
}

/// Health as derived from supervision state.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Every critical actor runs and every required dependency is up.
    pub ready: bool,
    /// The watchdog is ticking.
    pub live: bool,
    /// Every actor has run at least once.
    pub started: bool,
    /// Shutdown has begun.
    pub shutting_down: bool,
    /// Every actor.
    pub actors: Vec<ActorReport>,
    /// Every dependency.
    pub dependencies: Vec<Dependency>,
}

impl Registry {
    /// Derive health from the current supervision state; `live_stall` is how long the watchdog
    /// may go without a tick before the process counts as wedged.
    pub fn report(&self, live_stall: Duration) -> HealthReport {
        let actors: Vec<ActorReport> = self
            .actors()
            .iter()
            .map(|a| ActorReport {
                name: a.name.to_string(),
                kind: a.kind,
                critical: a.critical,
                state: a.state(),
                restarts: a.restarts(),
                mailbox_depth: a.mailbox_depth(),
                messages_handled: a.handled(),
                last_failure: a.last_failure(),
            })
            .collect();
        let dependencies = self.dependencies();
        let shutting_down = self.is_shutting_down();
        let critical_ok = actors.iter().filter(|a| a.critical).all(|a| a.state == ActorState::Running);
        let required_ok = dependencies.iter().filter(|d| d.required).all(|d| d.status == DependencyStatus::Up);
        let ready = critical_ok && required_ok && !shutting_down;
        let optional_ok = actors.iter().all(|a| a.state == ActorState::Running)
            && dependencies.iter().all(|d| d.status == DependencyStatus::Up);
        let status = match (ready, optional_ok) {
            (false, _) => HealthStatus::Down,
            (true, false) => HealthStatus::Degraded,
            (true, true) => HealthStatus::Ok,
        };
        let started = self.actors().iter().all(|a| a.started_once());
        HealthReport {
            status,
            ready,
            live: self.since_last_tick() <= live_stall,
            started,
            shutting_down,
            actors,
            dependencies,
        }
    }
}
