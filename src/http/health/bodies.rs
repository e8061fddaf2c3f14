//! The health answers, typed so that the OpenAPI document's schemas are the ones they are
//! serialized from; each mirrors a supervision report and converts from it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    actors::runtime::{
        ActorKind, ActorReport, ActorState, Dependency, DependencyStatus, Failure, FailureReason, HealthStatus,
    },
    config::{Environment, Role},
};

/// The overall status, every actor and every dependency.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Health)]
#[serde(deny_unknown_fields)]
pub struct HealthBody {
    /// `down` only when not ready; `degraded` when something optional is down.
    pub status: Overall,
    /// Every critical actor runs and every required dependency is up.
    pub ready: bool,
    /// The supervision watchdog is ticking.
    pub live: bool,
    /// Every actor has run at least once.
    pub started: bool,
    /// Shutdown has begun.
    pub shutting_down: bool,
    /// Every supervised actor.
    pub actors: Vec<ActorView>,
    /// Every dependency, with the actor that owns and probes it.
    pub dependencies: Vec<DependencyView>,
    /// Version of the service.
    pub version: String,
    /// Environment the process runs in.
    pub environment: EnvironmentName,
    /// Which parts of the service this process runs.
    pub role: RoleName,
    /// `embedded` without PostgreSQL, Redis or Kafka (nothing durable), `external` otherwise.
    pub mode: Mode,
}

/// Overall health.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// Everything runs.
    Ok,
    /// Ready, but something optional is down.
    Degraded,
    /// Not ready.
    Down,
}

impl From<HealthStatus> for Overall {
    fn from(s: HealthStatus) -> Self {
        match s {
            HealthStatus::Ok => Self::Ok,
            HealthStatus::Degraded => Self::Degraded,
            HealthStatus::Down => Self::Down,
        }
    }
}

/// The environment, as settings name it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = Environment)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentName {
    /// A developer's machine.
    Development,
    /// Automated tests.
    Test,
    /// Pre-production.
    Staging,
    /// Production.
    Production,
}

impl From<Environment> for EnvironmentName {
    fn from(e: Environment) -> Self {
        match e {
            Environment::Development => Self::Development,
            Environment::Test => Self::Test,
            Environment::Staging => Self::Staging,
            Environment::Production => Self::Production,
        }
    }
}

/// The role of the process, as settings name it.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    /// Everything.
    All,
    /// REST and GraphQL.
    Api,
    /// GraphQL only.
    Graphql,
    /// Event workers: health and metrics only.
    Worker,
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::All => Self::All,
            Role::Api => Self::Api,
            Role::Graphql => Self::Graphql,
            Role::Worker => Self::Worker,
        }
    }
}

/// Where the state lives.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In memory: nothing is durable.
    Embedded,
    /// PostgreSQL, Redis and Kafka.
    External,
}

/// One supervised actor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Actor)]
#[serde(deny_unknown_fields)]
pub struct ActorView {
    /// Registered name (e.g. `fintech`, `adapter-pool`).
    pub name: String,
    /// What the actor is for.
    pub kind: ActorKindName,
    /// Whether readiness depends on it.
    pub critical: bool,
    /// Supervision state.
    pub state: ActorStateName,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: i64,
    /// Messages handled.
    pub messages_handled: u64,
    /// Its last failure, when it has failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureView>,
}

impl From<ActorReport> for ActorView {
    fn from(a: ActorReport) -> Self {
        Self {
            name: a.name,
            kind: a.kind.into(),
            critical: a.critical,
            state: a.state.into(),
            restarts: a.restarts,
            mailbox_depth: a.mailbox_depth,
            messages_handled: a.messages_handled,
            last_failure: a.last_failure.map(FailureView::from),
        }
    }
}

/// What an actor is for.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ActorKind)]
#[serde(rename_all = "lowercase")]
pub enum ActorKindName {
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
    /// The per-id actors of one kind, counted together.
    Entity,
}

impl From<ActorKind> for ActorKindName {
    fn from(k: ActorKind) -> Self {
        match k {
            ActorKind::Domain => Self::Domain,
            ActorKind::Adapter => Self::Adapter,
            ActorKind::Consumer => Self::Consumer,
            ActorKind::Audit => Self::Audit,
            ActorKind::System => Self::System,
            ActorKind::Entity => Self::Entity,
        }
    }
}

/// Supervision state of an actor.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ActorState)]
#[serde(rename_all = "lowercase")]
pub enum ActorStateName {
    /// Created, not yet run.
    Starting,
    /// Handling messages.
    Running,
    /// Waiting for its backoff delay before running again.
    Restarting,
    /// Restarted too often within the window; refuses messages until the window passes.
    Failed,
    /// Stopped on purpose (shutdown).
    Stopped,
}

impl From<ActorState> for ActorStateName {
    fn from(s: ActorState) -> Self {
        match s {
            ActorState::Starting => Self::Starting,
            ActorState::Running => Self::Running,
            ActorState::Restarting => Self::Restarting,
            ActorState::Failed => Self::Failed,
            ActorState::Stopped => Self::Stopped,
        }
    }
}

/// The last failure of an actor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Failure)]
#[serde(deny_unknown_fields)]
pub struct FailureView {
    /// Kind of failure.
    pub reason: FailureReasonName,
    /// Short description, for operators.
    pub detail: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl From<Failure> for FailureView {
    fn from(f: Failure) -> Self {
        Self { reason: f.reason.into(), detail: f.detail, at: f.at }
    }
}

/// Why an actor failed.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = FailureReason)]
#[serde(rename_all = "snake_case")]
pub enum FailureReasonName {
    /// A handler panicked.
    Panic,
    /// A handler reported an unrecoverable error.
    Fatal,
    /// The mailbox closed without a stop: the actor's thread or task died.
    MailboxClosed,
}

impl From<FailureReason> for FailureReasonName {
    fn from(r: FailureReason) -> Self {
        match r {
            FailureReason::Panic => Self::Panic,
            FailureReason::Fatal => Self::Fatal,
            FailureReason::MailboxClosed => Self::MailboxClosed,
        }
    }
}

/// A dependency (PostgreSQL, Redis, Kafka, ...) and its last probe.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Dependency)]
#[serde(deny_unknown_fields)]
pub struct DependencyView {
    /// Name.
    pub name: String,
    /// Whether the last probe got an answer.
    pub status: DependencyState,
    /// Whether readiness requires it.
    pub required: bool,
    /// Actor that owns and probes it.
    pub owner: String,
    /// Operator-facing detail (e.g. the probe error kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
    /// Probe latency in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0)]
    pub latency_ms: Option<f64>,
    /// When it was last probed.
    pub checked_at: DateTime<Utc>,
}

impl From<Dependency> for DependencyView {
    fn from(d: Dependency) -> Self {
        Self {
            name: d.name,
            status: d.status.into(),
            required: d.required,
            owner: d.owner,
            detail: d.detail,
            latency_ms: d.latency_ms,
            checked_at: d.checked_at,
        }
    }
}

/// Whether a dependency answers.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = DependencyStatus)]
#[serde(rename_all = "lowercase")]
pub enum DependencyState {
    /// Answering.
    Up,
    /// Not answering.
    Down,
}

impl From<DependencyStatus> for DependencyState {
    fn from(s: DependencyStatus) -> Self {
        match s {
            DependencyStatus::Up => Self::Up,
            DependencyStatus::Down => Self::Down,
        }
    }
}

/// Whether the actor system runs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Liveness)]
#[serde(deny_unknown_fields)]
pub struct LiveBody {
    /// `wedged` when the supervision watchdog stopped ticking.
    pub status: LiveStatus,
}

/// Liveness.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LiveStatus {
    /// The actor system runs.
    Live,
    /// The actor system is wedged.
    Wedged,
}

/// Whether the process takes traffic, and why not.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Readiness)]
#[serde(deny_unknown_fields)]
pub struct ReadyBody {
    /// Whether the process takes traffic.
    pub status: ReadyStatus,
    /// Why not, one sentence each (empty when ready).
    pub reasons: Vec<String>,
}

/// Readiness.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Takes traffic.
    Ready,
    /// Does not: see `reasons`.
    NotReady,
}

/// Whether every actor has run once.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Startup)]
#[serde(deny_unknown_fields)]
pub struct StartupBody {
    /// `started` once every actor has run once.
    pub status: StartupStatus,
}

/// Startup.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartupStatus {
    /// Every actor has run once.
    Started,
    /// Not yet.
    Starting,
}
