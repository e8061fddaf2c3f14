//! Building and running the application: start every long-lived actor once under supervision,
//! then the HTTP server whose workers share their handles.

use std::{
    future::Future,
    net::TcpListener,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use actix_cors::Cors;
use actix_web::{dev::Server, http::header, middleware::from_fn, web, App, HttpServer};
use anyhow::Context as _;

use crate::{
    actors::{
        adapters::{EmissionsClient, RoutingClient},
        esg::{self, EsgClient, EsgDomain, EsgWriter},
        events::{self, consumer::ConsumerDeps, relay::RelayDeps, EventConsumer, EventRoutes, OutboxRelay},
        fintech::{self, FintechClient, FintechDomain, HoldSweeper, KeyPurger, LedgerWriter},
        mobility::{self, MobilityClient, MobilityDomain},
        payments::{privacy::PaymentsHolder, Payments, PayoutReconciler, WebhookKeys},
        pools::{self, AdapterPool, Connections, PoolConfig},
        privacy::{retention, Holders, PrivacyClient},
        runtime::{ActorKind, ActorSpec, EntityPolicy, Registry, Supervision},
        social::{self, SocialClient, SocialDomain},
        Actors,
    },
    adapters::{
        self,
        bus::{MemoryBroker, Publisher},
        esg::{Boards, EsgStore},
        ledger::{sealing, LedgerStore, MemLedger, PgLedger},
        mobility::{GeoIndex, MobilityStore},
        outbox::{MemOutbox, OutboxSource},
        payments::PaymentsStore,
        postgres::PgPool,
        privacy::Vault,
        social::{SocialStore, Timelines},
    },
    auth::{self, rate_limit::Limiter, KeySet, Revocations},
    config::{CorsSettings, Secret, Settings},
    graphql,
    http::{self, guard::Guard, problem, request_context::request_context, AppState},
    telemetry::{self, Metrics},
};

/// A bound, running application.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

/// Transparent huge pages off for this process. The allocator gives each thread pages of its own;
/// under huge pages a thread's first allocations fault in a whole 2 MiB page, and what the
/// allocator later returns of it splits the page but leaves the rest resident: with the few dozen
/// threads of the service that was about 42 MiB of its 77 MiB idle. mimalloc is also built without
/// asking for them (`no_thp`); this covers hosts whose kernel gives them unasked.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "transparent huge pages stay allowed");
    }
}

impl Application {
    /// Start the actors, bind the listener and start serving. Must run inside an actix system.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        without_huge_pages();
        let settings = Arc::new(settings);
        let metrics = Metrics::new()?;
        metrics.with(|| {
            metrics::gauge!(
                telemetry::BUILD_INFO,
                "version" => env!("CARGO_PKG_VERSION"),
                "environment" => settings.environment.as_str(),
                "role" => settings.server.role.as_str()
            )
            .set(1.0)
        });
        let registry = Arc::new(Registry::default());
        let supervision = Arc::new(Supervision::new(registry.clone(), settings.supervision.clone(), metrics.clone()));

        // One PostgreSQL pool and one Redis connection serve the ledger and the rate limiter, and
        // are the ones the adapter pool probes for readiness. No connection is opened yet.
        let connections = Connections {
            postgres: adapters::postgres::build_pool(&settings.database).context("PostgreSQL pool")?,
            redis: adapters::redis::RedisConnection::from_settings(&settings.redis).context("Redis connection")?,
        };
        let pool_config = Arc::new(PoolConfig::from(settings.as_ref()));
        let (pool_connections, pool_registry) = (connections.clone(), registry.clone());
        let pools = supervision.spawn(ActorSpec::new(pools::NAME, ActorKind::Adapter, true), move || {
            AdapterPool::new(pool_connections.clone(), pool_config.clone(), pool_registry.clone())
        })?;
        let audit = crate::actors::audit::spawn(
            &supervision,
            &settings,
            registry.clone(),
            metrics.clone(),
            connections.postgres.clone(),
        )?;
        let webhook_keys = webhook_keys(&settings);
        let webhook_url = Arc::new(OnceLock::new());
        let adapters = crate::actors::adapters::spawn(
            &supervision,
            &settings,
            connections.redis.clone(),
            &metrics,
            webhook_keys.secrets[0].clone(),
            webhook_url.clone(),
        )
        .context("external API adapters")?;
        let vault = Vault::for_pool(connections.postgres.clone(), &settings.privacy);
        let (fintech, outbox, ledger) =
            spawn_fintech(&supervision, &settings, &metrics, connections.postgres.clone(), &vault).await?;
        let payments_store = match &connections.postgres {
            Some(pool) => PaymentsStore::Postgres(pool.clone()),
            None => PaymentsStore::memory(),
        };
        let mobility = spawn_mobility(
            &supervision,
            &settings,
            &metrics,
            &connections,
            &outbox,
            (&vault, &fintech),
            (adapters.routing.clone(), adapters.emissions.clone()),
        )?;
        let esg =
            spawn_esg(&supervision, &settings, &metrics, &connections, &outbox, &vault, adapters.emissions.clone())?;
        let links = (mobility.client.clone(), esg.client.clone());
        let social = spawn_social(&supervision, &settings, &metrics, &connections, &outbox, (&vault, links))?;
        let holders =
            register_holders(&settings, &vault, &fintech, &ledger, &payments_store, (&mobility, &esg, &social));
        spawn_retention(&supervision, &settings, &metrics, &vault, &holders)?;
        let privacy = PrivacyClient::new(vault.clone(), holders, metrics.clone());
        let payments = Payments::new(
            adapters.payments,
            payments_store,
            fintech.clone(),
            webhook_keys,
            metrics.clone(),
            vault.clone(),
        );
        if settings.server.role.runs_worker() {
            let (reconciled, every) =
                (payments.clone(), Duration::from_secs(settings.adapters.payments.pending_retry_secs));
            supervision.spawn(
                ActorSpec::new(crate::actors::payments::reconciler::NAME, ActorKind::Adapter, false),
                move || PayoutReconciler::new(reconciled.clone(), every),
            )?;
        }
        let broker = MemoryBroker::new();
        if settings.server.role.runs_worker() {
            let routes = register_events(&fintech, &esg.client, &social);
            spawn_event_bus(&supervision, &settings, &metrics, &outbox, &broker, Arc::new(routes))?;
        }
        supervision.start_watchdog();

        let keys = Arc::new(KeySet::from_settings(&settings.auth)?);
        if keys.is_empty() {
            tracing::warn!("no JWT key configured: every /api and POST /graphql request will be refused with 401");
        }
        let limiter = match &connections.redis {
            Some(connection) => Limiter::redis(
                connection.clone(),
                &settings.redis.key_prefix,
                Duration::from_millis(settings.rate_limit.redis_timeout_ms),
            ),
            None => Limiter::memory(),
        };
        // A round trip to the deny list is bounded by the interval it is read at.
        let refresh = Duration::from_millis(settings.auth.refresh_interval_ms);
        let revocations = Arc::new(match &connections.redis {
            Some(connection) => Revocations::redis(connection.clone(), &settings.redis.key_prefix, refresh),
            None => Revocations::memory(),
        });
        actix_rt::spawn(auth::keep_fresh(keys.clone(), revocations.clone(), refresh, metrics.clone()));
        let guard = web::Data::new(Guard {
            keys,
            revocations,
            limiter,
            limits: settings.rate_limit.clone(),
            audit: audit.clone(),
            audit_policy: settings.audit_failure_policy(),
            registry: registry.clone(),
            metrics: metrics.clone(),
            vault: vault.clone(),
            period_key: Default::default(),
        });
        // The current audit period's key, found before the first request needs it.
        let _ = guard.audit_sealing(None).await;

        let state = web::Data::new(AppState {
            settings: settings.clone(),
            registry,
            supervision,
            metrics,
            actors: Actors {
                pools,
                fintech,
                audit,
                broker,
                routing: adapters.routing,
                emissions: adapters.emissions,
                payments,
                privacy,
                mobility: mobility.client,
                esg: esg.client,
                social,
            },
            live_stall: Duration::from_secs(settings.health.live_stall_secs),
            guard,
            cursors: http::paging::Cursors::new(settings.privacy.blind_index_secret())
                .context("key the paging cursors")?,
        });
        let schema = graphql::schema(state.clone());

        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).with_context(|| format!("bind {}:{}", address.0, address.1))?;
        let local = listener.local_addr()?;
        // Where the payments simulator delivers its webhooks: this very listener.
        let own = if local.ip().is_unspecified() {
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let _ = webhook_url.set(format!("http://{own}{}", http::payments::WEBHOOK_ROUTE));
        let max_body = settings.server.max_body_bytes;
        let grace = settings.server.shutdown_grace_period();
        let app_state = state.clone();
        let app_guard = state.guard.clone();
        let app_metrics = state.metrics.clone();
        let app_settings = settings.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(app_guard.clone())
                .app_data(app_metrics.clone())
                .app_data(web::PayloadConfig::new(max_body))
                .wrap(problem::fallback())
                .wrap(from_fn(http::audit::audit_layer))
                .wrap(cors(&app_settings.cors))
                .wrap(from_fn(request_context))
                .configure(http::routes(&app_settings))
                .configure(graphql::routes(&app_settings, schema.clone()))
                .default_service(web::to(http::not_found))
        })
        .disable_signals()
        .client_request_timeout(Duration::from_secs(settings.server.request_timeout_secs))
        // In-flight requests get most of the grace period; actor mailboxes drain in the rest.
        .shutdown_timeout((grace.as_secs() * 4 / 5).max(1))
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.run();
        tracing::info!(
            address = %local,
            role = settings.server.role.as_str(),
            environment = settings.environment.as_str(),
            version = env!("CARGO_PKG_VERSION"),
            "listening"
        );
        Ok(Self { port: local.port(), server, state })
    }

    /// The bound port (useful when the configured port was 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (registry, actors, metrics).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serve until `shutdown` resolves; then answer readiness with 503 while still accepting for
    /// the drain delay, stop accepting, let in-flight requests finish, let every actor drain its
    /// mailbox and return, within the configured grace period after the delay.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + 'static) -> anyhow::Result<()> {
        let Self { server, state, .. } = self;
        let handle = server.handle();
        let registry = state.registry.clone();
        let drain = state.settings.server.shutdown_drain_delay();
        let (tx, rx) = tokio::sync::oneshot::channel();
        actix_rt::spawn(async move {
            shutdown.await;
            registry.begin_shutdown();
            tracing::info!(
                drain_delay_secs = drain.as_secs(),
                "shutdown requested: readiness answers 503, still accepting during the drain delay"
            );
            actix_rt::time::sleep(drain).await;
            let at = Instant::now();
            tracing::info!("drain delay over: no new connections, finishing in-flight requests");
            let _ = tx.send(at);
            handle.stop(true).await;
        });
        server.await.context("HTTP server")?;
        let asked_at = rx.await.unwrap_or_else(|_| Instant::now());
        let grace = state.settings.server.shutdown_grace_period();
        let remaining = grace.saturating_sub(asked_at.elapsed()).max(Duration::from_millis(500));
        let undrained = state.supervision.shutdown(remaining).await;
        if undrained.is_empty() {
            tracing::info!(elapsed_ms = asked_at.elapsed().as_millis() as u64, "shutdown complete");
        } else {
            tracing::warn!(actors = ?undrained, "shutdown complete; some mailboxes did not drain in time");
        }
        Ok(())
    }
}

/// The payments webhook's secrets: the configured one then those of a rotation; outside
/// production without one, a secret generated for this process (the simulator signs with it).
fn webhook_keys(settings: &Settings) -> WebhookKeys {
    let payments = &settings.adapters.payments;
    let current = payments.webhook_secret.clone().unwrap_or_else(|| {
        tracing::info!("no payments webhook secret configured: one is generated for the in-process simulator");
        let tail: String =
            rand::Rng::sample_iter(rand::rng(), &rand::distr::Alphanumeric).take(32).map(char::from).collect();
        Secret::from(format!("whsec_{tail}").as_str())
    });
    let secrets = std::iter::once(current).chain(payments.webhook_secrets_previous.iter().cloned()).collect();
    WebhookKeys {
        secrets: Arc::new(secrets),
        tolerance_secs: i64::try_from(payments.webhook_tolerance_secs).unwrap_or(300),
    }
}

/// The ledger store (PostgreSQL, reading through `pool` and migrated when configured to, or
/// memory without one), its writer and the fintech domain actor.
async fn spawn_fintech(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    pool: Option<PgPool>,
    vault: &Vault,
) -> anyhow::Result<(FintechClient, OutboxSource, LedgerStore)> {
    let (store, outbox) = match pool {
        Some(pool) => {
            let config = adapters::postgres::connect_config(&settings.database)?.context("PostgreSQL settings")?;
            if settings.database.migrate_on_start {
                let mut client =
                    adapters::postgres::connect(&config).await.context("connect to PostgreSQL to migrate")?;
                let report = adapters::migrate::run(&mut client).await.context("apply migrations")?;
                tracing::info!(applied = ?report.applied, present = report.present.len(), "database migrated");
                let sealed = sealing::seal_existing(&client, vault, SEAL_BATCH).await.context("seal personal data")?;
                tracing::info!(?sealed, "personal data written before the privacy module sealed");
            }
            let outbox = OutboxSource::Postgres(Arc::new(config.clone()));
            let commit_timeout = Duration::from_millis(settings.database.statement_timeout_ms) + Duration::from_secs(1);
            let ledger = PgLedger::new(pool, config).with_timeout(commit_timeout).with_vault(vault.clone());
            (LedgerStore::Postgres(ledger), outbox)
        }
        None => {
            let outbox = MemOutbox::new();
            (
                LedgerStore::Memory(MemLedger::new(outbox.clone()).with_vault(vault.clone())),
                OutboxSource::Memory(outbox),
            )
        }
    };
    let writer_store = store.clone();
    let returned_store = store.clone();
    let writer_metrics = metrics.clone();
    let queue_max = settings.fintech.writer_queue_max;
    let writer = supervision.spawn(ActorSpec::new(fintech::writer::NAME, ActorKind::Adapter, true), move || {
        LedgerWriter::new(writer_store.clone(), queue_max, &writer_metrics)
    })?;
    let (purge_store, purge_metrics) = (store.clone(), metrics.clone());
    let purge_every = Duration::from_secs(settings.fintech.idempotency_purge_interval_secs);
    let purge_batch = settings.fintech.idempotency_purge_batch;
    supervision.spawn(ActorSpec::new(fintech::purge::NAME, ActorKind::Adapter, false), move || {
        KeyPurger::new(purge_store.clone(), purge_every, purge_batch, &purge_metrics)
    })?;
    let sweep_store = store.clone();
    let me: fintech::SelfRef = Arc::default();
    let policy = EntityPolicy {
        idle: Duration::from_secs(settings.fintech.wallet_idle_secs),
        max_live: settings.fintech.max_live_wallets,
        threads: settings.fintech.wallet_threads,
    };
    let kind = supervision.entity_kind(fintech::wallet::KIND)?;
    let kind_ref = kind.clone();
    let (domain_me, domain_metrics) = (me.clone(), metrics.clone());
    let domain = supervision.spawn(ActorSpec::new(fintech::NAME, ActorKind::Domain, true), move || {
        FintechDomain::new(
            store.clone(),
            writer.clone(),
            domain_me.clone(),
            domain_metrics.clone(),
            kind.clone(),
            policy.clone(),
        )
    })?;
    let _ = me.set(domain.clone());
    supervision.own_entities(&kind_ref, &domain);
    let ttl = Duration::from_secs(settings.fintech.idempotency_ttl_secs);
    let client = FintechClient::new(domain, ttl, metrics.clone());
    let (sweep_client, sweep_metrics) = (client.clone(), metrics.clone());
    let sweep_every = Duration::from_secs(settings.fintech.hold_sweep_interval_secs);
    supervision.spawn(ActorSpec::new(fintech::sweep::NAME, ActorKind::Adapter, false), move || {
        HoldSweeper::new(sweep_store.clone(), sweep_client.clone(), sweep_every, &sweep_metrics)
    })?;
    Ok((client, outbox, returned_store))
}

/// The retention of personal data, under supervision.
fn spawn_retention(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    vault: &Vault,
    holders: &Holders,
) -> anyhow::Result<()> {
    let day = |days: u64| Duration::from_secs(days.saturating_mul(86_400));
    let periods = retention::Periods {
        audit_ip: day(settings.privacy.audit_ip_retention_days),
        ride_coordinates: day(settings.privacy.ride_coordinates_retention_days),
        idempotency_responses: Duration::from_secs(settings.fintech.idempotency_ttl_secs),
    };
    let rules = retention::Rules::new(vault.clone(), holders.clone(), periods, settings.privacy.retention_batch);
    let interval = Duration::from_secs(settings.privacy.retention_interval_secs);
    let metrics = metrics.clone();
    supervision.spawn(ActorSpec::new(retention::NAME, ActorKind::Adapter, false), move || {
        retention::Retention::new(rules.clone(), interval, metrics.clone())
    })?;
    Ok(())
}

/// Rows sealed per statement by the start-up sealing of personal data written before.
const SEAL_BATCH: i64 = 500;

/// Every domain's holder of personal data: the one place a new domain adds a line.
fn register_holders(
    settings: &Settings,
    vault: &Vault,
    fintech: &FintechClient,
    ledger: &LedgerStore,
    payments: &PaymentsStore,
    (mobility, esg, social): (&SpawnedMobility, &SpawnedEsg, &SocialClient),
) -> Holders {
    let mut holders = Holders::default();
    if settings.audit.enabled {
        let live = settings.audit.log_file.clone();
        holders.register(Arc::new(crate::actors::audit::privacy::AuditHolder::new(live, vault.clone())));
    }
    holders.register(Arc::new(fintech::privacy::FintechHolder::new(ledger.clone(), fintech.clone())));
    holders.register(Arc::new(PaymentsHolder::new(ledger.clone(), payments.clone())));
    holders.register(Arc::new(mobility::privacy::MobilityHolder::new(
        mobility.store.clone(),
        mobility.geo.clone(),
        mobility.client.clone(),
    )));
    holders.register(Arc::new(esg::privacy::EsgHolder::new(esg.store.clone(), esg.client.clone())));
    holders.register(Arc::new(social::privacy::SocialHolder::new(social.clone())));
    holders
}

/// Social's store (PostgreSQL or memory) and domain actor.
fn spawn_social(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    connections: &Connections,
    outbox: &OutboxSource,
    (vault, links): (&Vault, (MobilityClient, EsgClient)),
) -> anyhow::Result<SocialClient> {
    let store = match (&connections.postgres, outbox) {
        (Some(pool), _) => SocialStore::Postgres(pool.clone()),
        (None, OutboxSource::Memory(m)) => SocialStore::memory(m.clone()),
        (None, OutboxSource::Postgres(_)) => SocialStore::memory(MemOutbox::new()),
    };
    let domain_metrics = metrics.clone();
    let domain = supervision.spawn(ActorSpec::new(social::NAME, ActorKind::Domain, true), move || {
        SocialDomain::new(store.clone(), domain_metrics.clone())
    })?;
    let timelines = match &connections.redis {
        Some(connection) => Timelines::Redis {
            connection: connection.clone(),
            prefix: format!("{}social:tl:", settings.redis.key_prefix).into(),
            timeout: settings.social.timeline_timeout(),
            length: settings.social.timeline_length,
            ttl: Duration::from_secs(settings.social.timeline_ttl_secs),
        },
        None => Timelines::memory(settings.social.timeline_length),
    };
    let feeds = social::client::Feeds { timelines, fanout_max_followers: settings.social.fanout_max_followers };
    Ok(SocialClient::new((domain, vault.clone(), metrics.clone()), links, feeds))
}

/// What the ESG domain is reached through.
struct SpawnedEsg {
    client: EsgClient,
    store: EsgStore,
}

/// ESG's store (PostgreSQL or memory) and domain actor.
fn spawn_esg(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    connections: &Connections,
    outbox: &OutboxSource,
    vault: &Vault,
    emissions: EmissionsClient,
) -> anyhow::Result<SpawnedEsg> {
    let store = match (&connections.postgres, outbox) {
        (Some(pool), _) => EsgStore::Postgres(pool.clone()),
        (None, OutboxSource::Memory(m)) => EsgStore::memory(m.clone()),
        (None, OutboxSource::Postgres(_)) => EsgStore::memory(MemOutbox::new()),
    };
    let policy =
        EntityPolicy { idle: settings.esg.entity_idle(), max_live: settings.esg.max_live_entities, threads: 0 };
    let kind = supervision.entity_kind(esg::subject::KIND)?;
    let owned = kind.clone();
    let domain_store = store.clone();
    let domain = supervision.spawn(ActorSpec::new(esg::NAME, ActorKind::Domain, true), move || {
        EsgDomain::new(domain_store.clone(), policy.clone(), kind.clone())
    })?;
    supervision.own_entities(&owned, &domain);
    let (writer_store, writer_metrics) = (store.clone(), metrics.clone());
    let writer = supervision.spawn(ActorSpec::new(esg::writer::NAME, ActorKind::Adapter, true), move || {
        EsgWriter::new(writer_store.clone(), &writer_metrics)
    })?;
    let pricing = esg::Pricing::from_settings(&settings.esg);
    let boards = match &connections.redis {
        Some(connection) => Boards::Redis {
            connection: connection.clone(),
            prefix: format!("{}esg:lb:", settings.redis.key_prefix).into(),
            timeout: Duration::from_millis(settings.esg.leaderboard_timeout_ms),
        },
        None => Boards::memory(),
    };
    let parts = (store.clone(), boards);
    let client = EsgClient::new((domain, writer), emissions, vault.clone(), pricing, metrics.clone(), parts);
    Ok(SpawnedEsg { client, store })
}

/// What the mobility domain is reached through.
struct SpawnedMobility {
    client: MobilityClient,
    store: MobilityStore,
    geo: GeoIndex,
}

/// Mobility's store (PostgreSQL or memory), geo index (Redis or memory) and domain actor.
fn spawn_mobility(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    connections: &Connections,
    outbox: &OutboxSource,
    (vault, fintech): (&Vault, &FintechClient),
    (routing, emissions): (RoutingClient, EmissionsClient),
) -> anyhow::Result<SpawnedMobility> {
    let events = match outbox {
        OutboxSource::Memory(m) => m.clone(),
        OutboxSource::Postgres(_) => MemOutbox::new(),
    };
    let store = MobilityStore::new(connections.postgres.clone(), events, vault.clone());
    let geo = match &connections.redis {
        Some(connection) => GeoIndex::Redis {
            connection: connection.clone(),
            prefix: format!("{}mobility:", settings.redis.key_prefix).into(),
            timeout: Duration::from_millis(settings.mobility.geo_timeout_ms),
        },
        None => GeoIndex::memory(),
    };
    let parts = mobility::Parts {
        store: store.clone(),
        geo: geo.clone(),
        rules: Arc::new(mobility::Rules::from_settings(&settings.mobility)?),
        routing,
        emissions,
        metrics: metrics.clone(),
        policy: EntityPolicy {
            idle: settings.mobility.entity_idle(),
            max_live: settings.mobility.max_live_entities,
            threads: 0,
        },
        drivers: supervision.entity_kind(mobility::driver::KIND)?,
        rides: supervision.entity_kind(mobility::rides::KIND)?,
        payments: mobility::saga::RidePayments::new(
            fintech.clone(),
            &settings.mobility.platform_owner,
            settings.mobility.commission_bps,
        ),
        dispatcher: Arc::default(),
    };
    let (kind, ride_kind) = (parts.drivers.clone(), parts.rides.clone());
    let (ride_deps, dispatch, me) = (parts.ride_deps(), parts.rules.dispatch.clone(), parts.dispatcher.clone());
    let domain = supervision
        .spawn(ActorSpec::new(mobility::NAME, ActorKind::Domain, true), move || MobilityDomain::new(parts.clone()))?;
    supervision.own_entities(&kind, &domain);
    supervision.own_entities(&ride_kind, &domain);
    let (owner, dispatcher_me) = (domain.clone(), me.clone());
    let dispatcher = supervision
        .spawn(ActorSpec::new(mobility::dispatcher::NAME, ActorKind::Domain, false), move || {
            mobility::Dispatcher::new(ride_deps.clone(), dispatch.clone(), owner.clone(), dispatcher_me.clone())
        })?;
    let _ = me.set(dispatcher);
    Ok(SpawnedMobility { client: MobilityClient::new(domain, fintech.clone(), metrics.clone()), store, geo })
}

/// Every domain's event registrations: the one place a new domain adds a line.
fn register_events(fintech: &FintechClient, esg: &EsgClient, social: &SocialClient) -> EventRoutes {
    let mut routes = EventRoutes::default();
    fintech::events::register(&mut routes, fintech);
    mobility::events::register(&mut routes);
    esg::events::register(&mut routes, esg);
    social::events::register(&mut routes, social);
    routes
}

/// The outbox relay and the event consumer (worker and all roles).
fn spawn_event_bus(
    supervision: &Supervision,
    settings: &Settings,
    metrics: &Metrics,
    outbox: &OutboxSource,
    broker: &MemoryBroker,
    routes: Arc<EventRoutes>,
) -> anyhow::Result<()> {
    let bus = Arc::new(settings.event_bus.clone());
    let publisher = Publisher::from_settings(&bus, broker).context("event bus producer")?;
    let (relay_outbox, relay_publisher, relay_bus, relay_metrics) =
        (outbox.clone(), publisher.clone(), bus.clone(), metrics.clone());
    let domains = routes.publishers().to_vec();
    let registry = supervision.registry().clone();
    let (probe_every, probe_timeout) = (
        Duration::from_millis(settings.health.probe_interval_ms),
        Duration::from_millis(settings.health.probe_timeout_ms),
    );
    if settings.event_bus.relay {
        supervision.spawn(ActorSpec::new(events::relay::NAME, ActorKind::Adapter, false), move || {
            OutboxRelay::new(
                relay_outbox.open(),
                relay_outbox.open(),
                RelayDeps {
                    publisher: relay_publisher.clone(),
                    settings: relay_bus.clone(),
                    metrics: relay_metrics.clone(),
                    registry: registry.clone(),
                    probe_every,
                    probe_timeout,
                    domains: domains.clone(),
                },
            )
        })?;
    } else {
        tracing::info!("event_bus.relay is off: this process publishes no outbox events");
    }
    let deps = ConsumerDeps { settings: bus, publisher, broker: broker.clone(), routes, metrics: metrics.clone() };
    supervision.spawn(ActorSpec::new(events::consumer::NAME, ActorKind::Adapter, false), move || {
        EventConsumer::new(deps.clone())
    })?;
    Ok(())
}

/// Strict CORS: only the configured origins, only the methods and headers the API uses.
fn cors(settings: &CorsSettings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(3600);
    for origin in &settings.allowed_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!(signal = "SIGTERM", "signal received"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "signal received"),
    }
}
