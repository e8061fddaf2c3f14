//! Mobility actors. The supervised domain actor `mobility` owns the drivers' entity actors (one
//! [`DriverActor`] per driver in use, keyed by the driver's subject) and answers quotes: a route
//! from the routing adapter, a fare from the tariff of the mode and currency, a CO2e estimate
//! from the emissions adapter, kept with the rider's sealed coordinates for the ride that uses it.

pub mod client;
pub mod dispatcher;
pub mod driver;
pub mod events;
pub mod messages;
pub mod privacy;
pub mod requests;
pub mod rides;
pub mod saga;

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use uuid::Uuid;

pub use client::MobilityClient;
pub use dispatcher::Dispatcher;
pub use driver::DriverActor;
pub use messages::{
    Answer, CountDrivers, FindDriver, ForgetDriver, GetDriver, LocationAccepted, MobilityFailure, PutDriver,
    QuoteAnswer, ReportLocation, RequestQuote, SetAvailability,
};
pub use requests::{GetRide, ListRides, RequestRide, Role};
pub use rides::{ActOnRide, RideActor, RideAnswer, RideCommand, SystemAct, SystemCommand};

use crate::{
    actors::{
        adapters::{EmissionsClient, RoutingClient},
        runtime::{
            Ctx, Entities, EntityFaultError, EntityKind, EntityPolicy, Handle, InjectEntityFault, Managed, Reply,
        },
    },
    adapters::{
        emissions::EstimateRequest,
        external::{AdapterError, Source},
        mobility::{GeoIndex, MobilityStore},
        routing::{self, Profile, RouteRequest},
    },
    config::MobilitySettings,
    domain::{
        fintech::Currency,
        mobility::{check_trip, Availability, DispatchPolicy, DriverId, MobilityError, Mode, Quote, Tariff},
    },
    telemetry::{self, Metrics},
};

/// Registered name of the mobility domain actor.
pub const NAME: &str = "mobility";

/// The rules of the domain as configured: tariffs, emission factors, quote validity.
#[derive(Debug, Clone)]
pub struct Rules {
    tariffs: HashMap<(Currency, Mode), Tariff>,
    activities: HashMap<Mode, String>,
    quote_ttl: Duration,
    /// How far above its quote a final fare may go, percent.
    pub tolerance_pct: u32,
    /// The platform's commission, basis points.
    pub commission_bps: u32,
    /// A rider cancels for free within this long of the request.
    pub cancellation_grace: Duration,
    /// Hours a fare is held at most.
    pub hold_hours: u64,
    /// How drivers are found.
    pub dispatch: DispatchPolicy,
}

impl Rules {
    /// The rules `settings` set; a tariff or activity naming an unknown currency or mode fails.
    pub fn from_settings(settings: &MobilitySettings) -> anyhow::Result<Self> {
        let mut tariffs = HashMap::new();
        for (code, modes) in &settings.tariffs {
            let currency = Currency::parse(code).map_err(|e| anyhow::anyhow!("mobility.tariffs: {e}"))?;
            for (mode, t) in modes {
                let mode = Mode::parse(mode).map_err(|e| anyhow::anyhow!("mobility.tariffs: {e}"))?;
                let tariff = Tariff {
                    base: t.base,
                    per_km: t.per_km,
                    per_minute: t.per_minute,
                    minimum: t.minimum,
                    cancellation_fee: t.cancellation_fee,
                };
                tariff.check().map_err(|e| anyhow::anyhow!("mobility.tariffs {code} {mode}: {e}"))?;
                tariffs.insert((currency, mode), tariff);
            }
        }
        let mut activities = HashMap::new();
        for (mode, activity) in &settings.emissions_activities {
            let mode = Mode::parse(mode).map_err(|e| anyhow::anyhow!("mobility.emissions_activities: {e}"))?;
            activities.insert(mode, activity.clone());
        }
        let dispatch = DispatchPolicy {
            radii_m: settings.dispatch_radii_m.clone(),
            offer_timeout: settings.offer_timeout(),
            window: settings.dispatch_window(),
            candidates: settings.dispatch_candidates,
        };
        dispatch.check().map_err(|e| anyhow::anyhow!("mobility dispatch: {e}"))?;
        Ok(Self {
            tariffs,
            activities,
            quote_ttl: settings.quote_ttl(),
            tolerance_pct: settings.fare_tolerance_percent,
            commission_bps: settings.commission_bps,
            cancellation_grace: settings.cancellation_grace(),
            hold_hours: settings.hold_hours,
            dispatch,
        })
    }

    /// The currencies rides are offered in.
    pub fn currencies(&self) -> Vec<Currency> {
        let mut found: Vec<Currency> = self.tariffs.keys().map(|(c, _)| *c).collect();
        found.sort_by_key(|c| c.code().to_owned());
        found.dedup();
        found
    }

    /// The tariff of `mode` in `currency`.
    pub fn tariff(&self, currency: Currency, mode: Mode) -> Result<Tariff, MobilityError> {
        self.tariffs
            .get(&(currency, mode))
            .copied()
            .ok_or_else(|| MobilityError::UnsupportedCurrency(currency.code().to_owned()))
    }
}

/// How a mode travels on the road network.
fn profile(mode: Mode) -> Profile {
    match mode {
        Mode::Bike | Mode::Scooter => Profile::Cycling,
        Mode::Car | Mode::EvCar | Mode::Motorbike | Mode::Van => Profile::Driving,
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Provider => "provider",
        Source::Cache => "cache",
        Source::Simulator => "simulator",
        Source::Fallback => "fallback",
    }
}

/// The mobility domain actor.
pub struct MobilityDomain {
    store: MobilityStore,
    geo: GeoIndex,
    rules: std::sync::Arc<Rules>,
    routing: RoutingClient,
    emissions: EmissionsClient,
    metrics: Metrics,
    policy: EntityPolicy,
    kind: EntityKind,
    drivers: Option<Entities<String, DriverActor>>,
    ride_deps: std::sync::Arc<rides::RideDeps>,
    ride_kind: EntityKind,
    rides: Option<Entities<Uuid, RideActor>>,
    dispatcher: dispatcher::DispatcherRef,
}

/// What the domain actor is built from.
#[derive(Clone)]
pub struct Parts {
    /// Drivers and quotes.
    pub store: MobilityStore,
    /// Available drivers' positions.
    pub geo: GeoIndex,
    /// The configured rules.
    pub rules: std::sync::Arc<Rules>,
    /// Routes.
    pub routing: RoutingClient,
    /// CO2e estimates.
    pub emissions: EmissionsClient,
    /// Metrics of this instance.
    pub metrics: Metrics,
    /// How entity actors are kept.
    pub policy: EntityPolicy,
    /// The drivers' entity kind.
    pub drivers: EntityKind,
    /// The rides' entity kind.
    pub rides: EntityKind,
    /// The ledger side of rides.
    pub payments: saga::RidePayments,
    /// The dispatcher, once spawned.
    pub dispatcher: dispatcher::DispatcherRef,
}

impl Parts {
    /// What ride actors and the dispatcher work with.
    pub fn ride_deps(&self) -> rides::RideDeps {
        rides::RideDeps {
            store: self.store.clone(),
            geo: self.geo.clone(),
            rules: self.rules.clone(),
            payments: self.payments.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl MobilityDomain {
    /// A domain actor from `parts`.
    pub fn new(parts: Parts) -> Self {
        let ride_deps = std::sync::Arc::new(parts.ride_deps());
        Self {
            ride_deps,
            ride_kind: parts.rides,
            rides: None,
            dispatcher: parts.dispatcher,
            store: parts.store,
            geo: parts.geo,
            rules: parts.rules,
            routing: parts.routing,
            emissions: parts.emissions,
            metrics: parts.metrics,
            policy: parts.policy,
            kind: parts.drivers,
            drivers: None,
        }
    }

    fn drivers(&mut self) -> &mut Entities<String, DriverActor> {
        let (store, geo) = (self.store.clone(), self.geo.clone());
        let (kind, policy) = (self.kind.clone(), self.policy.clone());
        self.drivers.get_or_insert_with(|| {
            Entities::new(kind, policy, move |subject: &String| {
                DriverActor::new(subject.clone(), store.clone(), geo.clone())
            })
        })
    }
}

impl Managed for MobilityDomain {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        // Every series starts at 0, so that a rate over it is defined before the first event.
        self.metrics.with(|| {
            for mode in Mode::ALL {
                for route in ["provider", "cache", "simulator", "fallback"] {
                    metrics::counter!(telemetry::MOBILITY_QUOTES_TOTAL, "mode" => mode.as_str(), "route" => route)
                        .absolute(0);
                }
            }
            for outcome in ["indexed", "on_ride", "offline", "too_frequent", "failed"] {
                metrics::counter!(telemetry::MOBILITY_LOCATION_REPORTS_TOTAL, "outcome" => outcome).absolute(0);
            }
            for mode in Mode::ALL {
                metrics::counter!(telemetry::MOBILITY_RIDES_EXPIRED_TOTAL, "mode" => mode.as_str()).absolute(0);
            }
            for outcome in dispatcher::Step::OUTCOMES {
                metrics::counter!(telemetry::MOBILITY_DISPATCH_STEPS_TOTAL, "outcome" => outcome).absolute(0);
            }
            for currency in self.rules.currencies() {
                metrics::counter!(telemetry::MOBILITY_FARES_TOTAL, "currency" => currency.code().to_owned())
                    .absolute(0);
            }
        });
        crate::actors::runtime::every(ctx, COUNT_EVERY, || CountDrivers);
        let every = (self.policy.idle / 4).max(Duration::from_secs(1));
        actix::AsyncContext::run_interval(ctx, every, |host, _| {
            if let Some(drivers) = host.actor().drivers.as_mut() {
                drivers.passivate();
            }
            if let Some(rides) = host.actor().rides.as_mut() {
                rides.passivate();
            }
        });
    }

    fn drained(&mut self, _: &mut Ctx<Self>) {
        if let Some(drivers) = self.drivers.as_mut() {
            drivers.clear();
        }
        if let Some(rides) = self.rides.as_mut() {
            rides.clear();
        }
    }
}

macro_rules! to_driver {
    ($msg:ty, $answer:ty) => {
        impl Handle<$msg> for MobilityDomain {
            fn handle(&mut self, msg: $msg, _: &mut Ctx<Self>) -> Reply<Self, $answer> {
                let answer = self.drivers().get(&msg.subject).ask_queued(msg);
                Reply::later(async move { answer.await? })
            }
        }
    };
}

to_driver!(PutDriver, Answer<(crate::domain::mobility::Driver, bool)>);
to_driver!(GetDriver, Answer<crate::domain::mobility::Driver>);
to_driver!(SetAvailability, Answer<crate::domain::mobility::Driver>);
to_driver!(ReportLocation, Answer<LocationAccepted>);

impl Handle<RequestQuote> for MobilityDomain {
    fn handle(&mut self, msg: RequestQuote, _: &mut Ctx<Self>) -> Reply<Self, Answer<QuoteAnswer>> {
        let (rules, routing, emissions) = (self.rules.clone(), self.routing.clone(), self.emissions.clone());
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        Reply::later(async move {
            check_trip(msg.pickup, msg.dropoff)?;
            let tariff = rules.tariff(msg.currency, msg.mode)?;
            let request = RouteRequest {
                profile: profile(msg.mode),
                points: vec![
                    routing::Point { lat: msg.pickup.lat, lon: msg.pickup.lon },
                    routing::Point { lat: msg.dropoff.lat, lon: msg.dropoff.lon },
                ],
            };
            let route = routing.route(request).await.map_err(|e| match e {
                AdapterError::Refused { .. } => MobilityFailure::Rule(MobilityError::NoRoute),
                other => other.into(),
            })?;
            let distance_m = route.distance_m.max(0.0).round() as u64;
            let duration_s = route.duration_s.max(0.0).round() as u64;
            let (co2e_g, co2e_source) = if msg.mode.human_powered() {
                (Some(0), Some("no emissions in use".to_owned()))
            } else if let Some(activity) = rules.activities.get(&msg.mode) {
                let asked = EstimateRequest { activity_id: activity.clone(), distance_km: distance_m as f64 / 1000.0 };
                match emissions.estimate(asked).await {
                    Ok(e) => (Some((e.co2e_kg * 1000.0).round().max(0.0) as u64), Some(e.factor_source)),
                    Err(e) => {
                        tracing::info!(error = %e, mode = msg.mode.as_str(), "no CO2e estimate for the quote");
                        (None, None)
                    }
                }
            } else {
                (None, None)
            };
            let now = Utc::now();
            let ttl = chrono::Duration::from_std(rules.quote_ttl).unwrap_or(chrono::Duration::MAX);
            let quote = Quote {
                id: Uuid::now_v7(),
                pickup: msg.pickup,
                dropoff: msg.dropoff,
                mode: msg.mode,
                distance_m,
                duration_s,
                fare: tariff.fare(distance_m, duration_s),
                currency: msg.currency,
                co2e_g,
                expires_at: now + ttl,
                created_at: now,
            };
            let route_source = source_name(route.provenance.source);
            store.put_quote(&msg.subject, &quote, route_source).await?;
            metrics.with(|| {
                metrics::counter!(telemetry::MOBILITY_QUOTES_TOTAL, "mode" => msg.mode.as_str(), "route" => route_source)
                    .increment(1)
            });
            Ok(QuoteAnswer {
                quote,
                route_estimated: route.estimated,
                route_source: route_source.to_owned(),
                co2e_source,
            })
        })
    }
}

/// How often the drivers gauge is recomputed.
pub const COUNT_EVERY: Duration = Duration::from_secs(15);

impl Handle<CountDrivers> for MobilityDomain {
    fn handle(&mut self, _: CountDrivers, _: &mut Ctx<Self>) -> Reply<Self, Answer<()>> {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        Reply::later(async move {
            let counts = store.rows().driver_counts().await?;
            let rides = store.rows().ride_counts().await?;
            let (due, oldest) = store.rows().payments_due().await?;
            let age = oldest.map_or(0.0, |at| (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0);
            metrics.with(|| {
                metrics::gauge!(telemetry::MOBILITY_PAYMENTS_DUE).set(due as f64);
                metrics::gauge!(telemetry::MOBILITY_PAYMENTS_DUE_AGE).set(age);
            });
            metrics.with(|| {
                for mode in Mode::ALL {
                    for state in crate::domain::mobility::RideState::ALL {
                        let n = rides
                            .iter()
                            .find(|(s, m, _)| s == state.as_str() && m == mode.as_str())
                            .map_or(0, |(_, _, n)| *n);
                        metrics::gauge!(telemetry::MOBILITY_RIDES, "state" => state.as_str(), "mode" => mode.as_str())
                            .set(n as f64);
                    }
                }
            });
            metrics.with(|| {
                for mode in Mode::ALL {
                    for availability in [Availability::Offline, Availability::Available, Availability::OnRide] {
                        let n = counts
                            .iter()
                            .find(|(m, a, _)| m == mode.as_str() && a == availability.as_str())
                            .map_or(0, |(_, _, n)| *n);
                        metrics::gauge!(telemetry::MOBILITY_DRIVERS, "mode" => mode.as_str(), "availability" => availability.as_str())
                            .set(n as f64);
                    }
                }
            });
            Ok(())
        })
    }
}

impl Handle<FindDriver> for MobilityDomain {
    fn handle(&mut self, msg: FindDriver, _: &mut Ctx<Self>) -> Reply<Self, Answer<Option<DriverId>>> {
        let store = self.store.clone();
        Reply::later(async move {
            let row = store.rows().driver_by_owner(&store.index(&msg.subject)).await?;
            Ok(row.map(|r| DriverId(r.id)))
        })
    }
}

impl Handle<ForgetDriver> for MobilityDomain {
    fn handle(&mut self, msg: ForgetDriver, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        if let Some(drivers) = self.drivers.as_ref() {
            let subject = msg.subject.clone();
            drivers.tell_live(&subject, msg);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<InjectEntityFault> for MobilityDomain {
    fn handle(&mut self, msg: InjectEntityFault, _: &mut Ctx<Self>) -> Reply<Self, Result<(), EntityFaultError>> {
        if msg.kind == rides::KIND {
            Reply::Later(self.rides().inject(msg))
        } else {
            Reply::Later(self.drivers().inject(msg))
        }
    }
}
