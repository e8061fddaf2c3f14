//! The caller of a GraphQL operation, and the protection each field passes on its behalf, made of
//! the REST guard's own pieces: a field is rate limited, refused under `fail_closed` and audited
//! exactly as the REST request doing the same work would be.

use std::future::Future;

use actix_web::web;
use async_graphql::Context;

use crate::{
    auth::Principal,
    domain::audit::{AuditEvent, MoneyMovement},
    error::AppError,
    http::{
        guard::{outcome, Group, Guard, RequestFacts},
        privacy::required_reason,
    },
};

/// Resource named by the audit records of fields that act on nothing more specific.
const ENDPOINT: &str = "/graphql";

/// Who runs the operation, from where, and the guard that protects its fields; in the request
/// data of every operation.
pub struct Caller {
    /// The verified caller.
    pub principal: Principal,
    facts: RequestFacts,
    guard: web::Data<Guard>,
    /// The request's `X-Access-Reason` header.
    access_reason: Option<String>,
}

impl Caller {
    /// The caller `principal`, whose HTTP request the guard described in `facts` and gave
    /// `access_reason` in its `X-Access-Reason` header.
    pub fn new(
        principal: Principal,
        facts: RequestFacts,
        guard: web::Data<Guard>,
        access_reason: Option<String>,
    ) -> Self {
        Self { principal, facts, guard, access_reason }
    }

    /// The caller of the operation a resolver runs in.
    pub fn of<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Caller> {
        ctx.data::<Caller>()
    }

    /// Refused unless the caller holds `scope`; the denial is audited, as the guard audits a REST
    /// request without its route's scope.
    pub fn require(&self, field: &str, scope: &str) -> Result<(), AppError> {
        self.principal.require(scope).map_err(|denied| {
            self.record(field, ENDPOINT.into(), 403);
            AppError::from(denied)
        })
    }

    /// A query field that costs a round trip to a dependency: one request charged to `api_read`,
    /// then its scope, as for a REST read.
    pub async fn read(&self, field: &str, scope: &str) -> Result<(), AppError> {
        self.charge(Group::ApiRead).await?;
        self.require(field, scope)
    }

    /// A mutation that changes no one's account (a driver's position report): one request charged
    /// to `api_write`, then its scope, and no audit record, as REST does for the same report.
    pub async fn report(&self, field: &str, scope: &str) -> Result<(), AppError> {
        self.charge(Group::ApiWrite).await?;
        self.require(field, scope)
    }

    /// A mutation, run as REST runs a write: the audit precondition, one request charged to
    /// `api_write`, its scope (a denial is recorded); then `run`, whose outcome is recorded
    /// against `resource`, with `status` when it succeeds and what moved (`money`) for a money
    /// movement. Under fail_closed a success is answered only once its record is durable.
    pub async fn write<T>(
        &self,
        field: &str,
        resource: String,
        scope: &str,
        status: u16,
        money: impl FnOnce(&T) -> Option<MoneyMovement>,
        run: impl Future<Output = Result<T, AppError>>,
    ) -> Result<T, AppError> {
        self.guard.admit_write()?;
        self.charge(Group::ApiWrite).await?;
        if let Err(denied) = self.principal.require(scope) {
            self.record(field, resource, 403);
            return Err(denied.into());
        }
        let answer = run.await;
        let status = match &answer {
            Ok(_) => status,
            Err(e) => e.code().status(),
        };
        let mut event = self.event(field, resource, status);
        event.money = answer.as_ref().ok().and_then(money);
        self.guard.settle(event).await?;
        answer
    }

    /// An administrator reading someone else's personal data through `field`: refused without a
    /// reason (`given` as the field's argument, or the request's `X-Access-Reason` header), and
    /// recorded and counted with it, as REST does, before anything is answered.
    pub async fn read_of_another(&self, field: &str, resource: String, given: Option<String>) -> Result<(), AppError> {
        let reason = required_reason(given.or_else(|| self.access_reason.clone()))?;
        self.guard.settle_read_of_another(self.event(field, resource, 200), reason).await
    }

    /// One request charged to `group`, for the caller and their address.
    pub async fn charge(&self, group: Group) -> Result<(), AppError> {
        self.guard.charge(group, self.facts.ip, Some(&self.principal.subject)).await.map(|_| ())
    }

    fn event(&self, field: &str, resource: String, status: u16) -> AuditEvent {
        let action = format!("graphql {field}");
        let subject = Some(self.principal.subject.as_str());
        self.facts.event_for(action, resource, subject, status, outcome(status))
    }

    fn record(&self, field: &str, resource: String, status: u16) {
        self.guard.audit(self.event(field, resource, status));
    }
}
