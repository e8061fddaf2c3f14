//! The supervision runtime: managed actors wrapped in a [`Host`] that instruments every message
//! and turns failures into restarts with backoff, a [`Registry`] of their state that health and
//! metrics read, and a [`Supervision`] that starts them and replaces those whose thread died.

mod entities;
mod fault;
mod host;
mod policy;
mod registry;
mod supervisor;

pub use entities::{Entities, EntityFaultError, EntityKind, EntityPolicy, EntityRef, InjectEntityFault};
pub use fault::{FaultKind, InjectFault};
pub use host::{every, short_type_name, Ctx, Envelope, Handle, Host, Managed, Reply, Succeeded};
pub use policy::{RestartDecision, RestartPolicy};
pub use registry::{
    ActorEntry, ActorKind, ActorReport, ActorState, Dependency, DependencyStatus, Failure, FailureReason, HealthReport,
    HealthStatus, Registry,
};
pub use supervisor::{ActorRef, ActorSpec, AskError, Supervision};
