//! Every state-changing request is audited: before the handler runs, a fail-closed policy
//! refuses it when the audit writer cannot take its record; after, the record (who, what, on
//! which resource, with what outcome) goes to the audit writer without waiting. Denials are
//! recorded by the guard, which knows why. GraphQL mutations pass the same precondition and leave
//! the same records, one per mutation, from their resolvers (`graphql::caller`).

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web, Error, HttpMessage,
};

use super::{
    guard::{is_read, outcome, AlreadyAudited, RequestFacts},
    state::AppState,
};
use crate::auth::Principal;

/// The middleware function.
pub async fn audit_layer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().filter(|s| s.guard.audit.is_some()).cloned();
    let route = match &state {
        Some(_) if !is_read(req.method()) && req.path() != "/graphql" => req.match_pattern(),
        _ => None,
    };
    let (Some(state), Some(route)) = (state, route) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let facts = RequestFacts::with_route(&req, route, state.guard.limits.trust_forwarded_for);
    if let Err(err) = state.guard.admit_write() {
        return Ok(req.into_response(actix_web::ResponseError::error_response(&err)));
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let extensions = res.request().extensions();
    if extensions.get::<AlreadyAudited>().is_none() {
        let status = res.status().as_u16();
        let subject = extensions.get::<Principal>().map(|p| p.subject.clone());
        state.guard.audit(facts.event(subject.as_deref(), status, outcome(status)));
    }
    drop(extensions);
    Ok(res)
}
