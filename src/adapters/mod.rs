//! Connections to infrastructure and external APIs: pool builders, probes, HTTP clients with
//! their protections, and typed errors. Actors own the pools; nothing here knows about actors.

pub mod audit_heads;
pub mod bus;
pub mod emissions;
pub mod esg;
pub mod external;
pub mod ledger;
pub mod migrate;
pub mod mobility;
pub mod outbox;
pub mod payments;
pub mod postgres;
pub mod privacy;
pub mod redis;
pub mod routing;
pub mod social;
