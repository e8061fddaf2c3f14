//! Every state-changing request is audited (a driver's position reports aside, see
//! [`layer_audits`]): before the handler runs, a fail-closed policy refuses it when the audit writer
//! cannot take its record; after, the record (who, what, on which resource, with what outcome, and for a money movement what moved, which the handler
//! leaves in the response's extensions as a [`MoneyMovement`]) goes to the audit writer through
//! [`Guard::settle`](super::guard::Guard::settle): under fail_closed a successful change is
//! answered only once its record is durable, so that no change is reported done whose record a
//! crash could still lose; when it is not durable within
//! [`AUDIT_CONFIRM_WITHIN`](super::guard::AUDIT_CONFIRM_WITHIN) the answer is 503
//! `audit_unavailable` (a retry with the same `Idempotency-Key` replays the change and is
//! audited again). Under fail_open the record goes without waiting. Denials are recorded by the
//! guard, which knows why. GraphQL mutations pass the same precondition and leave the same
//! records, one per mutation, from their resolvers (`graphql::caller`).

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, Error, HttpMessage,
};

use super::{
    guard::{layer_audits, outcome, AlreadyAudited, RequestFacts},
    request_context::route_of,
    state::AppState,
};
use crate::{auth::Principal, domain::audit::MoneyMovement};

/// The middleware function.
pub async fn audit_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().filter(|s| s.guard.audit.is_some()).cloned();
    let route = state.as_ref().and_then(|_| route_of(&req)).filter(|route| layer_audits(&req, route));
    let (Some(state), Some(route)) = (state, route) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let facts = RequestFacts::with_route(&req, route, &state.guard.limits.trusted_proxies);
    if let Err(err) = state.guard.admit_write() {
        return Ok(req.into_response(actix_web::ResponseError::error_response(&err)));
    }
    let res = next.call(req).await?.map_into_boxed_body();
    // The subject, unless the guard already wrote the record (a denial).
    let (audited, sealing) = {
        let extensions = res.request().extensions();
        let audited = extensions
            .get::<AlreadyAudited>()
            .is_none()
            .then(|| extensions.get::<Principal>().map(|p| p.subject.clone()));
        (audited, extensions.get::<RequestFacts>().and_then(|f| f.sealing.clone()))
    };
    let Some(subject) = audited else { return Ok(res) };
    let mut facts = facts;
    // The guard found the keys that seal this request's records; without it, they are found now.
    facts.sealing = match sealing {
        Some(sealing) => Some(sealing),
        None => state.guard.audit_sealing(subject.as_deref()).await,
    };
    let status = res.status().as_u16();
    let mut event = facts.event(subject.as_deref(), status, outcome(status));
    event.money = res.response().extensions().get::<MoneyMovement>().cloned();
    if let Err(err) = state.guard.settle(event).await {
        return Ok(res.into_response(actix_web::ResponseError::error_response(&err)));
    }
    Ok(res)
}
