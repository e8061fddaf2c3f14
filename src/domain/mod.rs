//! Domain types and rules, one folder per aggregate: no actix and no I/O (reading audit files for
//! verification aside, kept in `audit::verify`), so that they are tested without an actor.

pub mod audit;
pub mod esg;
pub mod events;
pub mod fintech;
pub mod idempotency;
pub mod mobility;
pub mod payments;
pub mod privacy;
pub mod social;
