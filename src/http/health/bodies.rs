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
    pub status: HealthStatus,
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
    pub environment: Environment,
    /// Which parts of the service this process runs.
    pub role: Role,
    /// `embedded` without PostgreSQL, Redis or Kafka (nothing durable), `external` otherwise.
    pub mode: Mode,
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
    pub kind: ActorKind,
    /// Whether readiness depends on it.
    pub critical: bool,
    /// Supervision state.
    pub state: ActorState,
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
            kind: a.kind,
            critical: a.critical,
            state: a.state,
            restarts: a.restarts,
            mailbox_depth: a.mailbox_depth,
            messages_handled: a.messages_handled,
            last_failure: a.last_failure.map(FailureView::from),
        }
    }
}

/// The last failure of an actor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Failure)]
#[serde(deny_unknown_fields)]
pub struct FailureView {
    /// Kind of failure.
    pub reason: FailureReason,
    /// Short description, for operators.
    pub detail: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl From<Failure> for FailureView {
    fn from(f: Failure) -> Self {
        Self { reason: f.reason, detail: f.detail, at: f.at }
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
    pub status: DependencyStatus,
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
            status: d.status,
            required: d.required,
            owner: d.owner,
            detail: d.detail,
            latency_ms: d.latency_ms,
            checked_at: d.checked_at,
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
