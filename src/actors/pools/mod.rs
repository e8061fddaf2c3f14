//! The adapter pool actor: owns the connections that serve traffic (the PostgreSQL pool the
//! ledger reads through, the Redis connection the rate limiter uses), probes them on a schedule
//! and reports each dependency's state to the registry, which readiness reads.

pub mod messages;

use std::{convert::Infallible, sync::Arc, time::Duration};

use chrono::Utc;

pub use messages::ProbeDependencies;

use crate::{
    actors::runtime::{every, Ctx, Dependency, DependencyStatus, Handle, Managed, Registry, Reply},
    adapters::{
        postgres::{self, PgPool},
        redis::{self, RedisConnection},
    },
    config::Settings,
};

/// Registered name of the adapter pool actor.
pub const NAME: &str = "adapter-pool";

/// The connections built once at start-up and handed to those that use them: the ledger, the
/// rate limiter and the adapter pool, which probes them. Cloning shares them.
#[derive(Clone, Default)]
pub struct Connections {
    /// The PostgreSQL pool; `None` in embedded mode.
    pub postgres: Option<PgPool>,
    /// The Redis connection; `None` in embedded mode.
    pub redis: Option<RedisConnection>,
}

/// What the adapter pool needs from the settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Whether readiness requires PostgreSQL.
    pub postgres_required: bool,
    /// Whether readiness requires Redis.
    pub redis_required: bool,
    /// Probe period.
    pub probe_interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
}

impl From<&Settings> for PoolConfig {
    fn from(s: &Settings) -> Self {
        Self {
            postgres_required: s.database.required,
            redis_required: s.redis.required,
            probe_interval: Duration::from_millis(s.health.probe_interval_ms),
            probe_timeout: Duration::from_millis(s.health.probe_timeout_ms),
        }
    }
}

/// Owns the connections and probes them.
pub struct AdapterPool {
    config: Arc<PoolConfig>,
    registry: Arc<Registry>,
    connections: Connections,
}

impl AdapterPool {
    /// The pool of `connections`; a restart keeps them (they reconnect by themselves).
    pub fn new(connections: Connections, config: Arc<PoolConfig>, registry: Arc<Registry>) -> Self {
        Self { config, registry, connections }
    }
}

impl Managed for AdapterPool {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.config.probe_interval, || ProbeDependencies);
    }
}

impl Handle<ProbeDependencies> for AdapterPool {
    fn handle(&mut self, _: ProbeDependencies, _: &mut Ctx<Self>) -> Reply<Self, Result<Vec<Dependency>, Infallible>> {
        let (connections, registry, config) = (self.connections.clone(), self.registry.clone(), self.config.clone());
        Reply::later(async move {
            let timeout = config.probe_timeout;
            let mut found = Vec::new();
            if let Some(pool) = &connections.postgres {
                let result = postgres::ping(pool, timeout).await.map_err(|e| e.kind());
                found.push(dependency("postgres", config.postgres_required, result));
            }
            if let Some(connection) = &connections.redis {
                let result = redis::ping(connection, timeout).await.map_err(|e| e.kind());
                found.push(dependency("redis", config.redis_required, result));
            }
            for dep in &found {
                registry.report_dependency(dep.clone());
            }
            Ok(found)
        })
    }
}

fn dependency(name: &str, required: bool, result: Result<Duration, &'static str>) -> Dependency {
    Dependency {
        name: name.into(),
        status: if result.is_ok() { DependencyStatus::Up } else { DependencyStatus::Down },
        required,
        owner: NAME.into(),
        detail: result.as_ref().err().map(|e| e.to_string()),
        latency_ms: result.ok().map(|d| d.as_secs_f64() * 1000.0),
        checked_at: Utc::now(),
    }
}
