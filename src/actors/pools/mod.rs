//! The adapter pool actor: owns the PostgreSQL and Redis connection pools, probes them on a
//! schedule and reports each dependency's state to the registry, which readiness reads.

pub mod messages;

use std::{convert::Infallible, sync::Arc, time::Duration};

use chrono::Utc;

pub use messages::ProbeDependencies;

use crate::{
    actors::runtime::{every, Ctx, Dependency, DependencyStatus, Handle, Managed, Registry, Reply},
    adapters::{
        postgres::{self, PgPool},
        redis::{self, RedisPool},
    },
    config::Settings,
};

/// Registered name of the adapter pool actor.
pub const NAME: &str = "adapter-pool";

/// What the adapter pool needs from the settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// PostgreSQL settings.
    pub database: crate::config::DatabaseSettings,
    /// Redis settings.
    pub redis: crate::config::RedisSettings,
    /// Probe period.
    pub probe_interval: Duration,
    /// Probe timeout.
    pub probe_timeout: Duration,
}

impl From<&Settings> for PoolConfig {
    fn from(s: &Settings) -> Self {
        Self {
            database: s.database.clone(),
            redis: s.redis.clone(),
            probe_interval: Duration::from_millis(s.health.probe_interval_ms),
            probe_timeout: Duration::from_millis(s.health.probe_timeout_ms),
        }
    }
}

/// Owns the connection pools.
pub struct AdapterPool {
    config: Arc<PoolConfig>,
    registry: Arc<Registry>,
    postgres: Option<PgPool>,
    redis: Option<RedisPool>,
}

impl AdapterPool {
    /// Fresh pools (no connection opened yet); rebuilt on every restart.
    pub fn new(config: Arc<PoolConfig>, registry: Arc<Registry>) -> Self {
        let postgres = postgres::build_pool(&config.database).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot build the PostgreSQL pool");
            None
        });
        let connect_timeout = Duration::from_secs(config.database.connect_timeout_secs);
        let redis = redis::build_pool(&config.redis, connect_timeout).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot build the Redis pool");
            None
        });
        Self { config, registry, postgres, redis }
    }
}

impl Managed for AdapterPool {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.config.probe_interval, || ProbeDependencies);
    }
}

impl Handle<ProbeDependencies> for AdapterPool {
    fn handle(&mut self, _: ProbeDependencies, _: &mut Ctx<Self>) -> Reply<Self, Result<Vec<Dependency>, Infallible>> {
        let (pg, rd, registry, config) =
            (self.postgres.clone(), self.redis.clone(), self.registry.clone(), self.config.clone());
        Reply::later(async move {
            let timeout = config.probe_timeout;
            let mut found = Vec::new();
            if let Some(pool) = pg {
                let result = postgres::ping(&pool, timeout).await.map_err(|e| e.kind());
                found.push(dependency("postgres", config.database.required, result));
            }
            if let Some(pool) = rd {
                let result = redis::ping(&pool, timeout).await.map_err(|e| e.kind());
                found.push(dependency("redis", config.redis.required, result));
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
