//! `/api/v1/system`: supervision state and operator actions (scopes `system:read` and
//! `system:write`, checked by the guard's scope table).

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::state::AppState;
use crate::error::{AppError, ErrorCode};

/// `GET /api/v1/system/actors`: every supervised actor.
pub async fn actors(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "actors": state.registry.report(state.live_stall).actors }))
}

/// `POST /api/v1/system/actors/{name}/restart`: rebuild a running actor from scratch, or end the
/// backoff of a restarting or failed one now.
#[tracing::instrument(skip_all, fields(actor = %name))]
pub async fn restart(state: web::Data<AppState>, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    match state.supervision.restart_actor(&name).await {
        None => Err(AppError::client(ErrorCode::ActorNotFound, format!("no actor named {name}"))),
        Some(result) => {
            result?;
            let actor = state.registry.actors().into_iter().find(|a| *a.name == *name.as_str());
            Ok(HttpResponse::Accepted().json(json!({
                "actor": name.as_str(),
                "restarts": actor.map(|a| a.restarts()),
            })))
        }
    }
}
