//! Connections to infrastructure: pool builders, probes and typed errors. Actors own the pools;
//! nothing here knows about actors.

pub mod audit_heads;
pub mod bus;
pub mod ledger;
pub mod migrate;
pub mod outbox;
pub mod postgres;
pub mod redis;
