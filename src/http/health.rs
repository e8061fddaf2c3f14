//! Health endpoints, read straight from the supervision registry on every call so that they
//! follow state changes immediately.

use actix_web::{http::StatusCode, web, HttpResponse};
use serde::Serialize;
use serde_json::json;

use super::state::AppState;
use crate::actors::runtime::{ActorState, DependencyStatus, HealthReport, HealthStatus};

#[derive(Serialize)]
struct Health<'a> {
    #[serde(flatten)]
    report: &'a HealthReport,
    version: &'static str,
    environment: &'static str,
    role: &'static str,
    mode: &'static str,
}

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

/// `GET /health`: overall status, every actor and every dependency; 503 only when down.
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    let body = Health {
        report: &report,
        version: env!("CARGO_PKG_VERSION"),
        environment: state.settings.environment.as_str(),
        role: state.settings.server.role.as_str(),
        mode: if state.settings.is_embedded() { "embedded" } else { "external" },
    };
    HttpResponse::build(status(report.status != HealthStatus::Down)).json(body)
}

/// `GET /health/live`: fails only when the watchdog stopped ticking (the actor system is wedged).
pub async fn live(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    HttpResponse::build(status(report.live)).json(json!({ "status": if report.live { "live" } else { "wedged" } }))
}

/// `GET /health/ready`: 503 while a critical actor is not running, a required dependency is down
/// or shutdown has begun; the body says why.
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
    HttpResponse::build(status(report.ready))
        .json(json!({ "status": if report.ready { "ready" } else { "not_ready" }, "reasons": reasons }))
}

/// `GET /health/startup`: 503 until every actor has run once.
pub async fn startup(state: web::Data<AppState>) -> HttpResponse {
    let report = report(&state);
    HttpResponse::build(status(report.started))
        .json(json!({ "status": if report.started { "started" } else { "starting" } }))
}
