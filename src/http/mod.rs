//! actix-web routes. Handlers hold no state of their own: they read the supervision registry or
//! ask actors through [`ask::ask`].

pub mod ask;
pub mod faults;
pub mod health;
pub mod json;
pub mod metrics;
pub mod problem;
pub mod request_context;

use std::{sync::Arc, time::Duration};

use actix_web::web;

use crate::{
    actors::{
        runtime::{Registry, Supervision},
        Actors,
    },
    config::Settings,
    error::{AppError, ErrorCode},
    graphql,
    telemetry::Metrics,
};

/// What every handler can reach; built once, shared by all workers.
pub struct AppState {
    /// Effective settings.
    pub settings: Arc<Settings>,
    /// Supervision state.
    pub registry: Arc<Registry>,
    /// The supervisor.
    pub supervision: Arc<Supervision>,
    /// This instance's metrics.
    pub metrics: Metrics,
    /// Handles of the long-lived actors.
    pub actors: Actors,
    /// Watchdog silence after which the process counts as wedged.
    pub live_stall: Duration,
}

/// Mount the routes this process's role serves.
pub fn routes(settings: &Settings, schema: graphql::BerylSchema) -> impl FnOnce(&mut web::ServiceConfig) {
    let metrics_enabled = settings.metrics.enabled;
    let faults = settings.fault_injection.enabled;
    let role = settings.server.role;
    let graphiql = settings.environment != crate::config::Environment::Production;
    move |cfg| {
        cfg.service(web::resource("/health").route(web::get().to(health::health)))
            .service(web::resource("/health/live").route(web::get().to(health::live)))
            .service(web::resource("/health/ready").route(web::get().to(health::ready)))
            .service(web::resource("/health/startup").route(web::get().to(health::startup)));
        if metrics_enabled {
            cfg.service(web::resource("/metrics").route(web::get().to(metrics::metrics)));
        }
        if faults {
            cfg.service(web::resource("/internal/faults/{actor}").route(web::post().to(faults::inject)));
        }
        if role.serves_graphql() {
            graphql::configure(cfg, schema, graphiql);
        }
    }
}

/// Answer for paths no route matches.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::client(ErrorCode::NotFound, format!("no resource at {}", req.path())))
}
