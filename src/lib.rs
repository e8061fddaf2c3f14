//! beryl-core-api: an actor-based reactive backend. Supervised actix actors own the state;
//! REST and GraphQL handlers reach them only by messages; health and metrics are read from the
//! supervision state.

pub mod actors;
pub mod adapters;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod startup;
pub mod telemetry;
