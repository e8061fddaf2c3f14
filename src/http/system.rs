//! `/api/v1/system`: supervision state and operator actions (scopes `system:read` and
//! `system:write`, checked by the guard's scope table).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{health::ActorView, state::AppState};
use crate::error::{AppError, ErrorCode};

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = &[("restartActor", &[ErrorCode::ActorNotFound])];

/// Every supervised actor.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ActorList)]
#[serde(deny_unknown_fields)]
pub struct ActorList {
    /// Every supervised actor.
    pub actors: Vec<ActorView>,
}

/// Path of `POST /api/v1/system/actors/{name}/restart`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActorPath {
    /// Registered name of the actor, as `GET /api/v1/system/actors` lists them.
    #[param(min_length = 1, example = "adapter-pool")]
    pub name: String,
}

/// A restart requested.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RestartAnswer)]
#[serde(deny_unknown_fields)]
pub struct RestartAnswer {
    /// The actor.
    pub actor: String,
    /// Its restarts so far, when it is still registered.
    #[schema(required = true, minimum = 0)]
    pub restarts: Option<u64>,
}

/// Supervision state of every actor (scope system:read).
#[utoipa::path(
    get,
    path = "/api/v1/system/actors",
    operation_id = "listActors",
    tag = "system",
    responses((status = 200, description = "Every actor.", body = ActorList))
)]
pub async fn actors(state: web::Data<AppState>) -> HttpResponse {
    let actors = state.registry.report(state.live_stall).actors.into_iter().map(ActorView::from).collect();
    HttpResponse::Ok().json(ActorList { actors })
}

/// Operator restart of an actor: a running one is rebuilt, a restarting or failed one skips its
/// backoff (scope system:write).
#[utoipa::path(
    post,
    path = "/api/v1/system/actors/{name}/restart",
    operation_id = "restartActor",
    tag = "system",
    params(ActorPath),
    responses((status = 202, description = "Restart requested.", body = RestartAnswer))
)]
#[tracing::instrument(skip_all, fields(actor = %path.name))]
pub async fn restart(state: web::Data<AppState>, path: web::Path<ActorPath>) -> Result<HttpResponse, AppError> {
    let name = path.into_inner().name;
    match state.supervision.restart_actor(&name).await {
        None => Err(AppError::client(ErrorCode::ActorNotFound, format!("no actor named {name}"))),
        Some(result) => {
            result?;
            let actor = state.registry.actors().into_iter().find(|a| *a.name == *name.as_str());
            Ok(HttpResponse::Accepted().json(RestartAnswer { restarts: actor.map(|a| a.restarts()), actor: name }))
        }
    }
}
