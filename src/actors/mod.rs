//! The actor runtime and the actors that hold the service's state. HTTP and GraphQL handlers
//! reach them only through [`runtime::ActorRef`] messages.

pub mod adapters;
pub mod audit;
pub mod esg;
pub mod events;
pub mod fintech;
pub mod mobility;
pub mod payments;
pub mod pools;
pub mod privacy;
pub mod runtime;
pub mod social;

use runtime::ActorRef;

/// Handles of every long-lived actor, started once by `startup` and shared by all HTTP workers.
#[derive(Clone)]
pub struct Actors {
    /// Owns the PostgreSQL and Redis pools.
    pub pools: ActorRef<pools::AdapterPool>,
    /// Routes fintech commands and reads to the wallet actors.
    pub fintech: fintech::FintechClient,
    /// Appends the audit trail; `None` when auditing is disabled.
    pub audit: Option<audit::AuditSink>,
    /// The in-process event broker (used when EVENT_BUS=memory).
    pub broker: crate::adapters::bus::MemoryBroker,
    /// Routes (distance, duration) from the routing adapter.
    pub routing: adapters::RoutingClient,
    /// Emissions estimates from the emissions adapter.
    pub emissions: adapters::EmissionsClient,
    /// Top-ups, payouts and the provider's webhook.
    pub payments: payments::Payments,
    /// Export and erasure of personal data, across every domain.
    pub privacy: privacy::PrivacyClient,
    /// Drivers, quotes and rides.
    pub mobility: mobility::MobilityClient,
    /// Activities, footprints and scores.
    pub esg: esg::EsgClient,
    /// Profiles and the graph between them.
    pub social: social::SocialClient,
}
