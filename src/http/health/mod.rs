//! Health endpoints, read straight from the supervision registry on every call so that they
//! follow state changes immediately.

mod bodies;

use actix_web::{http::StatusCode, web, HttpResponse};

pub use self::bodies::*;
use super::state::AppState;
use crate::actors::runtime::{ActorState, DependencyStatus, HealthReport, HealthStatus};

fn report(state: &AppState) -> HealthReport {
    state.registry.report(state.live_stall)
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Overall status (`ok`, `degraded`, `down`), every actor and every dependency; 503 only when
/// down.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Up, possibly degraded.", body = HealthBody),
        (status = 503, description = "Down: not ready.", body = HealthBody),
    )
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    let code = status(report.status != HealthStatus::Down);
    let body = HealthBody {
        status: report.status,
        ready: report.ready,
        live: report.live,
        started: report.started,
        shutting_down: report.shutting_down,
        actors: report.actors.into_iter().map(ActorView::from).collect(),
        dependencies: report.dependencies.into_iter().map(DependencyView::from).collect(),
        version: env!("CARGO_PKG_VERSION").into(),
        environment: state.settings.environment,
        role: state.settings.server.role,
        mode: if state.settings.is_embedded() { Mode::Embedded } else { Mode::External },
    };
    HttpResponse::build(code).json(body)
}

/// Liveness: 503 only when the supervision watchdog stopped ticking (the actor system is wedged).
#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "live",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The actor system runs.", body = LiveBody),
        (status = 503, description = "The actor system is wedged.", body = LiveBody),
    )
)]
pub async fn live(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    let body = LiveBody { status: if report.live { LiveStatus::Live } else { LiveStatus::Wedged } };
    HttpResponse::build(status(report.live)).json(body)
}

/// Readiness: 503 while a critical actor is not running, a required dependency is down or
/// shutdown has begun; the body says why.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "ready",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Takes traffic.", body = ReadyBody),
        (status = 503, description = "Does not take traffic; `reasons` says why.", body = ReadyBody),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    let mut reasons = Vec::new();
    if report.shutting_down {
        reasons.push("shutting down".to_string());
    }
    for a in report.actors.iter().filter(|a| a.critical && a.state != ActorState::Running) {
        reasons.push(format!("actor {} is {}", a.name, a.state.as_str()));
    }
    for d in report.dependencies.iter().filter(|d| d.required && d.status == DependencyStatus::Down) {
        reasons.push(format!("dependency {} is down", d.name));
    }
    let body = ReadyBody { status: if report.ready { ReadyStatus::Ready } else { ReadyStatus::NotReady }, reasons };
    HttpResponse::build(status(report.ready)).json(body)
}

/// Startup: 503 until every actor has run once.
#[utoipa::path(
    get,
    path = "/health/startup",
    operation_id = "startup",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Every actor has run once.", body = StartupBody),
        (status = 503, description = "Still starting.", body = StartupBody),
    )
)]
pub async fn startup(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    let body = StartupBody { status: if report.started { StartupStatus::Started } else { StartupStatus::Starting } };
    HttpResponse::build(status(report.started)).json(body)
}
