//! `GET /metrics`: Prometheus text, with the per-actor series refreshed from supervision state.

use actix_web::{web, HttpResponse};

use super::state::AppState;

/// Prometheus exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Render every metric of this instance.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.supervision.export_metrics(state.live_stall);
    HttpResponse::Ok().content_type(CONTENT_TYPE).body(state.metrics.render())
}
