//! `POST /internal/faults/{actor}`: inject a fault into a named actor. Mounted only when
//! fault injection is enabled, which validation refuses in production, and even then behind the
//! guard with an `admin` token.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{json::Json, state::AppState};
use crate::{
    actors::runtime::{EntityFaultError, FaultKind},
    error::{AppError, ErrorCode},
};

/// Body of a fault request: `{"kind": "panic" | "panic_later" | "fatal" | "kill_thread" | "delay",
/// "millis": 100}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// Which fault.
    pub kind: FaultName,
    /// For `delay`: how long the actor is held, in milliseconds (at most 60000).
    pub millis: Option<u64>,
    /// For a kind of entity actor (e.g. `wallet`): the id of the entity to hit.
    pub entity: Option<String>,
}

/// Fault names accepted over HTTP.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultName {
    /// The handler panics.
    Panic,
    /// The handler's answer (a future) panics.
    PanicLater,
    /// The handler reports an unrecoverable error.
    Fatal,
    /// The actor's thread stops.
    KillThread,
    /// The handler holds the actor for `millis`.
    Delay,
}

impl FaultRequest {
    fn kind(&self) -> Result<FaultKind, AppError> {
        Ok(match (self.kind, self.millis) {
            (FaultName::Panic, None) => FaultKind::Panic,
            (FaultName::PanicLater, None) => FaultKind::PanicLater,
            (FaultName::Fatal, None) => FaultKind::Fatal,
            (FaultName::KillThread, None) => FaultKind::KillThread,
            (FaultName::Delay, Some(millis)) if millis <= 60_000 => FaultKind::Delay { millis },
            (FaultName::Delay, _) => {
                return Err(AppError::client(ErrorCode::InvalidParameter, "delay needs `millis` between 0 and 60000")
                    .with("field", "millis"))
            }
            (_, Some(_)) => {
                return Err(AppError::client(ErrorCode::InvalidParameter, "`millis` only applies to delay")
                    .with("field", "millis"))
            }
        })
    }
}

/// Inject the fault; the answer is what a client of that actor would see.
#[tracing::instrument(skip_all, fields(actor = %actor))]
pub async fn inject(
    state: web::Data<AppState>,
    actor: web::Path<String>,
    body: Json<FaultRequest>,
) -> Result<HttpResponse, AppError> {
    let kind = body.kind()?;
    tracing::warn!(fault = ?kind, "injecting fault");
    let injected = match &body.entity {
        None => state.supervision.inject_fault(&actor, kind).await.map(|r| r.map_err(AppError::from)),
        Some(entity) => state.supervision.inject_entity_fault(&actor, entity, kind).await.map(|r| {
            r.map_err(|e| match e {
                EntityFaultError::NotAnId(_) => {
                    AppError::client(ErrorCode::InvalidParameter, e.to_string()).with("field", "entity")
                }
                EntityFaultError::Ask(e) => e.into(),
            })
        }),
    };
    match injected {
        None => Err(AppError::client(ErrorCode::ActorNotFound, format!("no actor named {actor}"))),
        Some(result) => {
            result?;
            Ok(HttpResponse::Ok().json(json!({ "actor": actor.as_str(), "injected": format!("{kind:?}") })))
        }
    }
}
