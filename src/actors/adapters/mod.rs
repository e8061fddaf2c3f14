//! The adapter actors: one supervised actor per external API, owning its adapter (HTTP client
//! pool, circuit breaker, bulkhead, retry budget, cache). Calls run as tasks of the actor's own
//! thread, so a slow provider never holds the actor's mailbox; the actor reports its circuit to
//! the registry as an optional dependency (an open circuit makes the service `degraded`, never
//! not-ready; an adapter answered by its in-process simulator has no outside dependency to
//! report). Domains reach them through [`RoutingClient`], [`EmissionsClient`] and
//! [`PaymentsClient`].

pub mod client;
pub mod messages;

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    time::Duration,
};

use chrono::Utc;

pub use client::{EmissionsClient, PaymentsClient, RoutingClient};
pub use messages::{CreateIntent, CreatePayout, GetEmissionsEstimate, GetEmissionsEstimates, GetRoute, ReportCircuit};

use crate::{
    actors::runtime::{
        every, ActorKind, ActorSpec, Ctx, Dependency, DependencyStatus, Handle, Managed, Registry, Reply, Supervision,
    },
    adapters::{
        emissions::{self, EmissionsAdapter},
        external::{build_client, CircuitState, Guard, Parts},
        payments::{self, PaymentsAdapter, Simulator},
        redis::RedisConnection,
        routing::{self, RoutingAdapter},
    },
    config::{Secret, Settings},
    telemetry::Metrics,
};

/// What an adapter actor needs from the adapter it owns.
pub trait External: Send + Sync + 'static {
    /// Adapter name (`routing`, `emissions`): the dependency's name and the metrics' label.
    const NAME: &'static str;
    /// Registered name of its actor.
    const ACTOR: &'static str;
    /// Its protections.
    fn guard(&self) -> &Guard;
    /// Whether the in-process simulator answers.
    fn simulated(&self) -> bool;
}

impl External for RoutingAdapter {
    const NAME: &'static str = routing::NAME;
    const ACTOR: &'static str = "routing-adapter";
    fn guard(&self) -> &Guard {
        RoutingAdapter::guard(self)
    }
    fn simulated(&self) -> bool {
        RoutingAdapter::simulated(self)
    }
}

impl External for EmissionsAdapter {
    const NAME: &'static str = emissions::NAME;
    const ACTOR: &'static str = "emissions-adapter";
    fn guard(&self) -> &Guard {
        EmissionsAdapter::guard(self)
    }
    fn simulated(&self) -> bool {
        EmissionsAdapter::simulated(self)
    }
}

impl External for PaymentsAdapter {
    const NAME: &'static str = payments::NAME;
    const ACTOR: &'static str = "payments-adapter";
    fn guard(&self) -> &Guard {
        PaymentsAdapter::guard(self)
    }
    fn simulated(&self) -> bool {
        PaymentsAdapter::simulated(self)
    }
}

/// The actor owning one adapter. A restart keeps the adapter (its pooled connections and its
/// breaker's memory of the provider outlive the actor's state).
pub struct AdapterActor<S: External> {
    adapter: Arc<S>,
    registry: Arc<Registry>,
    report_every: Duration,
}

impl<S: External> Managed for AdapterActor<S> {
    /// Every call is traced as an `adapter.call` span, a child of the caller's.
    const HANDLE_SPAN: bool = false;

    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, self.report_every, || ReportCircuit);
    }
}

impl<S: External> Handle<ReportCircuit> for AdapterActor<S> {
    fn handle(&mut self, _: ReportCircuit, _: &mut Ctx<Self>) -> Reply<Self, Result<CircuitState, Infallible>> {
        let state = self.adapter.guard().circuit();
        // The simulator is part of the process: no outside dependency to report.
        if self.adapter.simulated() {
            return Reply::Now(Ok(state));
        }
        self.registry.report_dependency(Dependency {
            name: S::NAME.into(),
            status: if state == CircuitState::Closed { DependencyStatus::Up } else { DependencyStatus::Down },
            required: false,
            owner: S::ACTOR.into(),
            detail: (state != CircuitState::Closed).then(|| format!("circuit {}", state.as_str())),
            latency_ms: None,
            checked_at: Utc::now(),
        });
        Reply::Now(Ok(state))
    }
}

impl Handle<GetRoute> for AdapterActor<RoutingAdapter> {
    fn handle(&mut self, msg: GetRoute, _: &mut Ctx<Self>) -> Reply<Self, <GetRoute as actix::Message>::Result> {
        let adapter = self.adapter.clone();
        Reply::later(async move { adapter.route(&msg.0).await })
    }
}

impl Handle<GetEmissionsEstimate> for AdapterActor<EmissionsAdapter> {
    fn handle(
        &mut self,
        msg: GetEmissionsEstimate,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, <GetEmissionsEstimate as actix::Message>::Result> {
        let adapter = self.adapter.clone();
        Reply::later(async move { adapter.estimate(&msg.0).await })
    }
}

impl Handle<GetEmissionsEstimates> for AdapterActor<EmissionsAdapter> {
    fn handle(
        &mut self,
        msg: GetEmissionsEstimates,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, <GetEmissionsEstimates as actix::Message>::Result> {
        let adapter = self.adapter.clone();
        Reply::later(async move { futures::future::try_join_all(msg.0.iter().map(|r| adapter.estimate(r))).await })
    }
}

impl Handle<CreateIntent> for AdapterActor<PaymentsAdapter> {
    fn handle(
        &mut self,
        msg: CreateIntent,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, <CreateIntent as actix::Message>::Result> {
        let adapter = self.adapter.clone();
        Reply::later(async move { adapter.create_intent(&msg.0).await })
    }
}

impl Handle<CreatePayout> for AdapterActor<PaymentsAdapter> {
    fn handle(
        &mut self,
        msg: CreatePayout,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, <CreatePayout as actix::Message>::Result> {
        let adapter = self.adapter.clone();
        Reply::later(async move { adapter.create_payout(&msg.0).await })
    }
}

/// The adapters' clients.
pub struct Clients {
    /// Routing.
    pub routing: RoutingClient,
    /// Emissions estimates.
    pub emissions: EmissionsClient,
    /// Payments.
    pub payments: PaymentsClient,
}

/// Build the adapters from the settings and start their actors (not critical: readiness never
/// waits for an outside API). The payments simulator, when it answers, signs its webhooks with
/// `webhook_secret` and delivers them to the URL `webhook` holds once the service listens.
pub fn spawn(
    supervision: &Supervision,
    settings: &Settings,
    redis: Option<RedisConnection>,
    metrics: &Metrics,
    webhook_secret: Secret,
    webhook: Arc<OnceLock<String>>,
) -> anyhow::Result<Clients> {
    let prefix = &settings.redis.key_prefix;
    let parts =
        Parts::build(routing::NAME, &[routing::OPERATION], &settings.adapters.routing, redis.clone(), prefix, metrics)?;
    let backend = match parts.http {
        Some((client, base, api_key)) => routing::Backend::Osrm { client, base, api_key },
        None => routing::Backend::Simulator,
    };
    let routing = Arc::new(RoutingAdapter::new(parts.guard, backend, parts.cache));
    let planner = routing.planner();
    let parts =
        Parts::build(emissions::NAME, &[emissions::OPERATION], &settings.adapters.emissions, redis, prefix, metrics)?;
    let backend = match parts.http {
        Some((client, base, api_key)) => emissions::Backend::Climatiq { client, base, api_key },
        None => emissions::Backend::Simulator,
    };
    let emissions = Arc::new(EmissionsAdapter::new(parts.guard, backend, parts.cache));
    let report_every = Duration::from_millis(settings.health.probe_interval_ms);
    let pay = &settings.adapters.payments;
    let parts = Parts::build(
        payments::NAME,
        &[payments::CREATE_INTENT, payments::CREATE_PAYOUT],
        &pay.provider,
        None,
        prefix,
        metrics,
    )?;
    let backend = match parts.http {
        Some((client, base, api_key)) => payments::Backend::Provider { client, base, api_key },
        None => {
            let client = build_client(Duration::from_millis(pay.provider.connect_timeout_ms), 4)?;
            let settle = Duration::from_millis(pay.simulator_settle_ms);
            payments::Backend::Simulator(Simulator::new(webhook_secret, webhook, settle, client))
        }
    };
    let payments = Arc::new(PaymentsAdapter::new(parts.guard, backend));
    let routing = start(supervision, routing, report_every)?;
    let emissions = start(supervision, emissions, report_every)?;
    let payments = start(supervision, payments, report_every)?;
    Ok(Clients {
        routing: RoutingClient::new(routing, planner),
        emissions: EmissionsClient::new(emissions),
        payments: PaymentsClient::new(payments),
    })
}

fn start<S: External>(
    supervision: &Supervision,
    adapter: Arc<S>,
    report_every: Duration,
) -> anyhow::Result<crate::actors::runtime::ActorRef<AdapterActor<S>>> {
    if adapter.simulated() {
        tracing::info!(adapter = S::NAME, "no provider URL configured: the in-process simulator answers");
    }
    let registry = supervision.registry().clone();
    supervision.spawn(ActorSpec::new(S::ACTOR, ActorKind::Adapter, false), move || AdapterActor {
        adapter: adapter.clone(),
        registry: registry.clone(),
        report_every,
    })
}
