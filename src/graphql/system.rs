//! Supervision state over GraphQL, for operators and dashboards that prefer it to `/health`.

use std::time::{Duration, Instant};

use actix_web::web;
use async_graphql::{Context, ErrorExtensions, Object, Result, SimpleObject};

use super::caller::Caller;
use crate::{
    actors::{
        pools::{AdapterPool, ProbeDependencies},
        runtime::{self, ActorRef},
    },
    error::AppError,
    http::{ask::ask, state::AppState},
};

/// The application state, once the caller is known to hold `scope`.
fn authorized<'a>(ctx: &'a Context<'_>, field: &str, scope: &str) -> Result<&'a web::Data<AppState>> {
    Caller::of(ctx)?.require(field, scope).map_err(|e| e.extend())?;
    ctx.data::<web::Data<AppState>>()
}

/// Fresh probes of the dependencies, at most one per interval, whoever asks and however often an
/// operation repeats the field: callers within the interval, or waiting for a probe in flight,
/// get that probe's result.
pub struct FreshProbes {
    interval: Duration,
    last: tokio::sync::Mutex<Option<(Instant, Vec<runtime::Dependency>)>>,
}

impl FreshProbes {
    /// At most one probe per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: tokio::sync::Mutex::new(None) }
    }

    async fn probe(&self, pools: &ActorRef<AdapterPool>) -> Result<Vec<runtime::Dependency>, AppError> {
        let mut last = self.last.lock().await;
        if let Some((at, found)) = last.as_ref() {
            if at.elapsed() < self.interval {
                return Ok(found.clone());
            }
        }
        let found = ask(pools, ProbeDependencies).await?;
        *last = Some((Instant::now(), found.clone()));
        Ok(found)
    }
}

/// One actor's supervision state.
#[derive(SimpleObject)]
pub struct Actor {
    /// Registered name.
    pub name: String,
    /// domain, adapter, consumer, audit or system.
    pub kind: String,
    /// Whether readiness depends on it.
    pub critical: bool,
    /// starting, running, restarting, failed or stopped.
    pub state: String,
    /// Restarts since the process started.
    pub restarts: u64,
    /// Messages waiting in its mailbox.
    pub mailbox_depth: i64,
    /// Messages handled.
    pub messages_handled: u64,
    /// Reason of the last failure, if any.
    pub last_failure: Option<String>,
}

/// A dependency as its owning actor reports it.
#[derive(SimpleObject)]
pub struct Dependency {
    /// postgres, redis, ...
    pub name: String,
    /// up or down.
    pub status: String,
    /// Whether readiness requires it.
    pub required: bool,
    /// Owning actor.
    pub owner: String,
    /// Probe latency in milliseconds.
    pub latency_ms: Option<f64>,
}

impl From<runtime::Dependency> for Dependency {
    fn from(d: runtime::Dependency) -> Self {
        Self {
            name: d.name,
            status: format!("{:?}", d.status).to_lowercase(),
            required: d.required,
            owner: d.owner,
            latency_ms: d.latency_ms,
        }
    }
}

/// System queries.
#[derive(Default)]
pub struct SystemQuery;

#[Object]
impl SystemQuery {
    /// Service version.
    async fn version(&self) -> &'static str {
        env!("CARGO_PKG_VERSION")
    }

    /// Every supervised actor.
    async fn actors(&self, ctx: &Context<'_>) -> Result<Vec<Actor>> {
        let state = authorized(ctx, "actors", "system:read")?;
        Ok(state
            .registry
            .report(state.live_stall)
            .actors
            .into_iter()
            .map(|a| Actor {
                name: a.name,
                kind: a.kind.as_str().into(),
                critical: a.critical,
                state: a.state.as_str().into(),
                restarts: a.restarts,
                mailbox_depth: a.mailbox_depth,
                messages_handled: a.messages_handled,
                last_failure: a.last_failure.map(|f| f.reason.as_str().to_string()),
            })
            .collect())
    }

    /// Every dependency; `refresh` asks the adapter pool to probe them now, at most once per
    /// `graphql.refresh_interval_ms` (callers in between share that probe).
    async fn dependencies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] refresh: bool,
    ) -> Result<Vec<Dependency>> {
        let found = if refresh {
            // A probe is a round trip to every dependency: charged as a read, and shared.
            Caller::of(ctx)?.read("dependencies", "system:read").await.map_err(|e| e.extend())?;
            let state = ctx.data::<web::Data<AppState>>()?;
            ctx.data::<FreshProbes>()?.probe(&state.actors.pools).await.map_err(|e| e.extend())?
        } else {
            let state = authorized(ctx, "dependencies", "system:read")?;
            state.registry.dependencies()
        };
        Ok(found.into_iter().map(Dependency::from).collect())
    }
}
