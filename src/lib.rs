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

#[cfg(test)]
mod layering;

/// Every request allocates on several threads (HTTP workers, actors, database connections), and
/// what one thread allocates another often frees: mimalloc handles that pattern with far less
/// contention than the system allocator. Set here so that the service, its tests and its
/// benchmarks all run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
