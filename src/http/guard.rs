//! The protection every route under `/api` and `POST /graphql` passes through, in this order:
//! rate limit per client IP, authentication (JWT), rate limit per subject, authorization (the
//! scope table in `auth::policy`), the audit precondition for writes, the handler, and the audit
//! record. Denials are audited too.
//!
//! GraphQL fields go through the same pieces one by one ([`Guard::charge`], [`Guard::admit_write`],
//! [`RequestFacts`], [`outcome`]), so that a mutation is limited, refused and recorded exactly as
//! the REST request doing the same would be.

use std::{net::IpAddr, sync::Arc, time::Duration};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method},
    middleware::Next,
    web, Error, HttpMessage,
};
use chrono::Utc;

use crate::{
    actors::{
        audit::{self, AuditSink},
        runtime::{ActorState, Registry},
    },
    adapters::privacy::Vault,
    auth::{
        rate_limit::{Decision, Limiter, Quota},
        required_scope, AuthError, KeySet, Principal, Revocations,
    },
    config::{AuditFailurePolicy, IpNetwork, RateLimitGroup, RateLimitSettings},
    domain::audit::{AuditEvent, OUTCOME_DENIED, OUTCOME_FAILURE, OUTCOME_SUCCESS},
    domain::privacy::{BlindIndex, Place, Sealed, SubjectKey},
    error::{AppError, ErrorCode},
    http::request_context::route_of,
    telemetry::{self, Metrics},
};

/// What the guard needs, built once at start-up. The middleware finds it as `web::Data<Guard>`
/// among the app data.
pub struct Guard {
    /// Token verification keys.
    pub keys: Arc<KeySet>,
    /// Token ids revoked before their expiry.
    pub revocations: Arc<Revocations>,
    /// Rate limit state.
    pub limiter: Limiter,
    /// Rate limit settings.
    pub limits: RateLimitSettings,
    /// The audit writer, when auditing is enabled.
    pub audit: Option<AuditSink>,
    /// What a write does when it cannot be audited.
    pub audit_policy: AuditFailurePolicy,
    /// Supervision state: whether Redis and the audit writer are up.
    pub registry: Arc<Registry>,
    /// This instance's metrics.
    pub metrics: Metrics,
    /// Seals the subject and client address of audit records.
    pub vault: Vault,
    /// The key of the current audit period, once found.
    pub period_key: PeriodKey,
}

/// The key of the current audit period, kept for the period: it is deleted only once its period
/// is past retention, and every request without a known subject needs it.
#[derive(Default)]
pub struct PeriodKey(parking_lot::Mutex<Option<(String, SubjectKey)>>);

impl PeriodKey {
    fn get(&self, period: &str) -> Option<SubjectKey> {
        self.0.lock().as_ref().filter(|(p, _)| p == period).map(|(_, key)| key.clone())
    }

    fn set(&self, period: String, key: SubjectKey) {
        *self.0.lock() = Some((period, key));
    }
}

/// Longest wait for a key that seals an audit record's personal data: past it, the record
/// carries no subject or address rather than waiting or holding them in the clear.
pub const AUDIT_KEY_WITHIN: Duration = Duration::from_millis(250);

/// The keys that seal the personal data of a request's audit records: the subject's (their id
/// and, once they are known, their address: erased with them), and the key of the current
/// period (the address of a request without a known subject: erased by retention).
#[derive(Clone)]
pub struct AuditSealing {
    subject: Option<(String, Option<SubjectKey>, BlindIndex)>,
    period: Option<SubjectKey>,
}

impl std::fmt::Debug for AuditSealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSealing")
            .field("subject_key", &self.subject.as_ref().map(|(_, key, _)| key.is_some()))
            .field("period_key", &self.period.is_some())
            .finish()
    }
}

impl AuditSealing {
    /// The subject field (sealed, or left out without a key), the subject's index and the client
    /// address field (sealed, or left out without a key) of a record about `subject` from `ip`.
    pub fn seal(&self, subject: Option<&str>, ip: Option<IpAddr>) -> (Option<String>, Option<String>, Option<String>) {
        let ip = ip.map(|ip| ip.to_string());
        let known = self.subject.as_ref().filter(|(s, ..)| Some(s.as_str()) == subject);
        let text = |sealed: Result<Sealed, _>| sealed.ok().map(|s: Sealed| s.to_text());
        match known {
            Some((id, key, index)) => {
                let subject = key.as_ref().and_then(|k| text(Sealed::seal(k, Place::new(AUDIT_SUBJECT, ""), id)));
                let ip = key.as_ref().zip(ip).and_then(|(k, ip)| text(Sealed::seal(k, Place::new(AUDIT_IP, ""), &ip)));
                (subject, Some(index.hex()), ip)
            }
            None => {
                let ip = self
                    .period
                    .as_ref()
                    .zip(ip)
                    .and_then(|(k, ip)| text(Sealed::seal_deterministic(k, Place::new(AUDIT_IP, ""), &ip)));
                (None, None, ip)
            }
        }
    }
}

pub use crate::domain::audit::{SEALED_CLIENT_IP as AUDIT_IP, SEALED_SUBJECT as AUDIT_SUBJECT};

/// The period whose key seals the addresses recorded at `at`: its month, `2026-12`.
pub fn audit_period(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// Longest wait for the record of a committed change to be durable under fail_closed.
pub const AUDIT_CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// Route groups that carry their own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Reads under `/api`, and GraphQL query fields that reach a dependency.
    ApiRead,
    /// Writes under `/api`, and GraphQL mutations.
    ApiWrite,
    /// `POST /graphql` requests.
    Graphql,
    /// Follows and follow requests (charged by the operations that make them).
    SocialFollow,
    /// Posts and comments (charged by the operations that write them).
    SocialPost,
}

impl Group {
    fn of(method: &Method, path: &str) -> Self {
        if path.starts_with("/graphql") {
            Self::Graphql
        } else if is_read(method) {
            Self::ApiRead
        } else {
            Self::ApiWrite
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::ApiRead => "api_read",
            Self::ApiWrite => "api_write",
            Self::Graphql => "graphql",
            Self::SocialFollow => "social_follow",
            Self::SocialPost => "social_post",
        }
    }

    fn limits(self, settings: &RateLimitSettings) -> RateLimitGroup {
        match self {
            Self::ApiRead => settings.api_read,
            Self::ApiWrite => settings.api_write,
            Self::Graphql => settings.graphql,
            Self::SocialFollow => settings.social_follow,
            Self::SocialPost => settings.social_post,
        }
    }
}

/// Whether a method leaves state unchanged.
pub fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The client address. `X-Forwarded-For` counts only when the peer is one of the trusted
/// proxies; then the client is the right-most address of the header that is not a trusted proxy
/// (every hop left of it could have been written by the client itself).
pub fn client_ip(req: &actix_web::HttpRequest, trusted_proxies: &[IpNetwork]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that is no address ends the walk: nothing left of it can be trusted.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    Some(client)
}

fn bearer(req: &ServiceRequest) -> Result<&str, AuthError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(AuthError::Malformed),
    }
}

fn rate_headers(decision: &Decision, period: u64) -> Vec<(&'static str, String)> {
    vec![
        ("ratelimit-limit", decision.limit.to_string()),
        ("ratelimit-remaining", decision.remaining.to_string()),
        ("ratelimit-reset", decision.reset.as_secs().to_string()),
        ("ratelimit-policy", format!("{};w={period}", decision.limit)),
    ]
}

fn too_many(decision: &Decision, period: u64, by: &str) -> AppError {
    let retry = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut err = AppError::client(ErrorCode::RateLimited, format!("rate limit per {by} exceeded; retry in {retry} s"))
        .with_header("retry-after", retry.to_string());
    for (name, value) in rate_headers(decision, period) {
        err = err.with_header(name, value);
    }
    err
}

impl Guard {
    /// Count one request against a quota; `None` when unlimited or failing open.
    async fn limit(&self, checks: Vec<(String, Quota)>) -> Option<Vec<Decision>> {
        if !self.limits.enabled || checks.is_empty() {
            return None;
        }
        let store_down = matches!(self.limiter, Limiter::Redis(_)) && self.registry.dependency_down("redis");
        let reason = if store_down {
            "store_down"
        } else {
            match self.limiter.check(&checks).await {
                Ok(decisions) => return Some(decisions),
                Err(_) => "store_error",
            }
        };
        self.metrics.with(|| metrics::counter!(telemetry::RATELIMIT_FAIL_OPEN_TOTAL, "reason" => reason).increment(1));
        None
    }

    /// Count one request of `group` against the client IP's quota, always, and the subject's once
    /// the caller is known, in one decision (one round trip to Redis). `Err` is the 429 to answer;
    /// `Ok` carries the tightest remaining budget, for the RateLimit headers.
    pub async fn charge(
        &self,
        group: Group,
        ip: Option<IpAddr>,
        subject: Option<&str>,
    ) -> Result<Option<Decision>, AppError> {
        let limits = group.limits(&self.limits);
        let period = Duration::from_secs(limits.period_secs);
        let mut checks = Vec::with_capacity(2);
        let ip_limited = match ip {
            Some(ip) if limits.per_ip > 0 => {
                checks.push((format!("{}:ip:{ip}", group.name()), Quota { limit: limits.per_ip, period }));
                true
            }
            _ => false,
        };
        if let Some(subject) = subject.filter(|_| limits.per_subject > 0) {
            checks.push((format!("{}:sub:{subject}", group.name()), Quota { limit: limits.per_subject, period }));
        }
        let decisions = self.limit(checks).await.unwrap_or_default();
        if let Some((i, d)) = decisions.iter().enumerate().find(|(_, d)| !d.allowed) {
            let by = if i == 0 && ip_limited { "ip" } else { "subject" };
            count_limited(&self.metrics, group, by);
            let who = if by == "ip" { "client IP" } else { "subject" };
            return Err(too_many(d, limits.period_secs, who));
        }
        Ok(decisions.into_iter().min_by_key(|d| d.remaining))
    }

    /// The audit precondition of every state-changing operation, whichever transport carries it:
    /// under `fail_closed`, refused with 503 `audit_unavailable` when the writer cannot take its
    /// record.
    pub fn admit_write(&self) -> Result<(), AppError> {
        if self.audit_ready() {
            return Ok(());
        }
        self.metrics.with(|| metrics::counter!(telemetry::AUDIT_REFUSED_TOTAL).increment(1));
        Err(AppError::server(ErrorCode::AuditUnavailable, "the audit writer cannot take a record")
            .with_retry_after(Duration::from_secs(5)))
    }

    /// Whether a write may proceed under the audit policy: the writer must be running, healthy
    /// and have room in its mailbox.
    pub fn audit_ready(&self) -> bool {
        let Some(sink) = &self.audit else { return true };
        if self.audit_policy == AuditFailurePolicy::FailOpen {
            return true;
        }
        sink.writer.entry().state() == ActorState::Running
            && !self.registry.dependency_down(audit::DEPENDENCY)
            && sink.has_room()
    }

    /// The keys that seal the audit records of a request by `subject` (`None` before the caller
    /// is known); `None` when auditing is off. Each key is waited for at most
    /// [`AUDIT_KEY_WITHIN`].
    pub async fn audit_sealing(&self, subject: Option<&str>) -> Option<AuditSealing> {
        self.audit.as_ref()?;
        let name = audit_period(Utc::now());
        let period = match self.period_key.get(&name) {
            Some(key) => Some(key),
            None => match tokio::time::timeout(AUDIT_KEY_WITHIN, self.vault.period_key(&name)).await {
                Ok(Ok(key)) => {
                    self.period_key.set(name, key.clone());
                    Some(key)
                }
                _ => {
                    tracing::warn!("no key for the audit period: client addresses are left out of its records");
                    None
                }
            },
        };
        let subject = match subject {
            Some(s) => {
                let key = match tokio::time::timeout(AUDIT_KEY_WITHIN, self.vault.key_of(s)).await {
                    Ok(Ok(key)) => Some(key),
                    _ => {
                        tracing::warn!("no key for the subject: their id and address are left out of the audit record");
                        None
                    }
                };
                Some((s.to_owned(), key, self.vault.subject_index(s)))
            }
            None => None,
        };
        Some(AuditSealing { subject, period })
    }

    /// Hand an audit record to the writer without waiting; count it if it cannot be taken.
    /// Returns its ticket for [`Self::audit_confirmed`].
    pub fn audit(&self, event: AuditEvent) -> Option<u64> {
        let ticket = self.audit.as_ref()?.record(event);
        if ticket.is_none() {
            tracing::error!("audit record dropped: the audit writer cannot take it");
        }
        ticket
    }

    /// Put an administrator's read of someone else's personal data on record with the reason
    /// given, then count it in `beryl_privacy_admin_reads_total`: the read is answered only once
    /// it is on record, and a refused read is not counted.
    pub async fn settle_read_of_another(&self, mut event: AuditEvent, reason: String) -> Result<(), AppError> {
        event.reason = Some(reason);
        self.settle(event).await?;
        self.metrics.with(|| metrics::counter!(telemetry::PRIVACY_ADMIN_READS_TOTAL).increment(1));
        Ok(())
    }

    /// Record the outcome of a write (REST request or GraphQL mutation). Under fail_closed a
    /// success is settled only once its record is durable: `Err(audit_unavailable)` when it is not
    /// within [`AUDIT_CONFIRM_WITHIN`], and the change must not be answered as done.
    pub async fn settle(&self, event: AuditEvent) -> Result<(), AppError> {
        let success = event.outcome == OUTCOME_SUCCESS;
        let ticket = self.audit(event);
        if success && !self.audit_confirmed(ticket).await {
            return Err(AppError::server(
                ErrorCode::AuditUnavailable,
                "the change was made but its audit record is not durable",
            )
            .with_retry_after(Duration::from_secs(5)));
        }
        Ok(())
    }

    /// Record a denial of a request without a valid token: aggregated with the same client's
    /// denials of the same action into one record per window.
    pub fn audit_denial(&self, event: AuditEvent) {
        if let Some(sink) = &self.audit {
            sink.deny(event);
        }
    }

    /// Under fail_closed, wait (at most [`AUDIT_CONFIRM_WITHIN`]) until the record of a
    /// committed change, handed over as `ticket`, is durable; false (and counted) when it is
    /// not, and the change must not be answered as done. Always true under fail_open.
    pub async fn audit_confirmed(&self, ticket: Option<u64>) -> bool {
        let Some(sink) = &self.audit else { return true };
        if self.audit_policy == AuditFailurePolicy::FailOpen {
            return true;
        }
        let confirmed = match ticket {
            Some(ticket) => sink.durable(ticket, AUDIT_CONFIRM_WITHIN).await,
            None => false,
        };
        if !confirmed {
            tracing::error!("a committed change is answered 503: its audit record is not durable");
            self.metrics.with(|| metrics::counter!(telemetry::AUDIT_UNCONFIRMED_TOTAL).increment(1));
        }
        confirmed
    }
}

fn count_limited(metrics: &Metrics, group: Group, by: &'static str) {
    metrics.with(|| {
        metrics::counter!(telemetry::RATELIMIT_LIMITED_TOTAL, "group" => group.name(), "by" => by).increment(1)
    });
}

/// How an answer's status reads in an audit record.
pub fn outcome(status: u16) -> &'static str {
    match status {
        200..=399 => OUTCOME_SUCCESS,
        401 | 403 => OUTCOME_DENIED,
        _ => OUTCOME_FAILURE,
    }
}

/// What an audit record says about a request. The guard leaves a copy in the request's
/// extensions, where GraphQL finds it for the records of its fields.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// Method.
    pub method: Method,
    /// Route template.
    pub route: String,
    /// Path as requested.
    pub path: String,
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Correlation id.
    pub request_id: Option<String>,
    /// The keys that seal the personal data of its records; without them (auditing off) records
    /// carry the subject and the address as they are.
    pub sealing: Option<AuditSealing>,
}

impl RequestFacts {
    /// The facts of `req`.
    pub fn of(req: &ServiceRequest, trusted_proxies: &[IpNetwork]) -> Self {
        Self::with_route(req, route_of(req).unwrap_or_else(|| "unmatched".into()), trusted_proxies)
    }

    /// The facts of `req`, whose route template is already known.
    pub fn with_route(req: &ServiceRequest, route: String, trusted_proxies: &[IpNetwork]) -> Self {
        RequestFacts {
            method: req.method().clone(),
            route,
            path: req.path().to_string(),
            ip: client_ip(req.request(), trusted_proxies),
            request_id: telemetry::current_request_id().map(|r| r.as_str().to_string()),
            sealing: None,
        }
    }

    /// The audit record for this request.
    pub fn event(&self, subject: Option<&str>, status: u16, outcome: &str) -> AuditEvent {
        self.event_for(format!("{} {}", self.method, self.route), self.path.clone(), subject, status, outcome)
    }

    /// The audit record of one operation of this request (a GraphQL field): `action` and
    /// `resource` name it, the rest comes from the request.
    pub fn event_for(
        &self,
        action: String,
        resource: String,
        subject: Option<&str>,
        status: u16,
        outcome: &str,
    ) -> AuditEvent {
        let (subject, subject_index, client_ip) = match &self.sealing {
            Some(sealing) => sealing.seal(subject, self.ip),
            None => (subject.map(str::to_string), None, self.ip.map(|ip| ip.to_string())),
        };
        AuditEvent {
            time: Utc::now(),
            subject,
            action,
            resource,
            outcome: outcome.into(),
            status,
            request_id: self.request_id.clone(),
            client_ip,
            count: None,
            money: None,
            reason: None,
            subject_index,
        }
    }
}

/// Writes that change no one's account and are not audited, by route template: a driver's
/// position reports (one a second per driver, kept in the geo index for as long as they are
/// current, 30 s).
const UNAUDITED: &[&str] = &["/api/v1/mobility/drivers/me/location"];

/// Whether the audit layer records `req`, of route template `route`: a write, but a GraphQL
/// request (audited by field, from its resolvers) and a position report.
pub fn layer_audits(req: &ServiceRequest, route: &str) -> bool {
    !is_read(req.method()) && req.path() != "/graphql" && !UNAUDITED.contains(&route)
}

/// Whether a request that passes the guard may leave audit records: one the audit layer records,
/// and every GraphQL request (its mutations, and its reads of another's data).
fn may_be_audited(req: &ServiceRequest, route: &str) -> bool {
    req.path() == "/graphql" || layer_audits(req, route)
}

/// Marks a request whose audit record the guard already wrote (a denial).
pub struct AlreadyAudited;

fn refuse(req: ServiceRequest, err: AppError) -> ServiceResponse<BoxBody> {
    req.extensions_mut().insert(AlreadyAudited);
    let response = actix_web::ResponseError::error_response(&err);
    req.into_response(response)
}

/// The middleware function.
pub async fn protect(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(guard) = req.app_data::<web::Data<Guard>>().cloned() else {
        return Err(AppError::Unexpected(anyhow::anyhow!("guard missing from the app data")).into());
    };
    let mut facts = RequestFacts::of(&req, &guard.limits.trusted_proxies);
    let group = Group::of(&facts.method, &facts.path);
    let limits = group.limits(&guard.limits);

    let verified = bearer(&req).and_then(|token| guard.keys.verify(token)).and_then(|p| match &p.token_id {
        Some(jti) if guard.revocations.is_revoked(jti) => Err(AuthError::Revoked),
        _ => Ok(p),
    });

    let subject = verified.as_ref().ok().map(|p| p.subject.as_str());
    let decision = match guard.charge(group, facts.ip, subject).await {
        Ok(decision) => decision,
        Err(err) => return Ok(refuse(req, err)),
    };
    // The keys that seal the records of a request that may leave one; a read or a position
    // report leaves none unless it is refused (found then) or reads another's data with a reason
    // (found by `privacy::audited_reason`).
    if may_be_audited(&req, &facts.route) {
        facts.sealing = guard.audit_sealing(subject).await;
    }

    let principal: Principal = match verified {
        Ok(p) => p,
        Err(e) => {
            let err = AppError::from(e);
            let code = err.code().as_str();
            guard.metrics.with(|| metrics::counter!(telemetry::AUTH_FAILURES_TOTAL, "code" => code).increment(1));
            if facts.sealing.is_none() {
                facts.sealing = guard.audit_sealing(None).await;
            }
            guard.audit_denial(facts.event(None, 401, "denied"));
            return Ok(refuse(req, err));
        }
    };

    if let Some(scope) = required_scope(&facts.method, &facts.route) {
        if let Err(err) = principal.require(scope.as_str()) {
            if facts.sealing.is_none() {
                facts.sealing = guard.audit_sealing(Some(&principal.subject)).await;
            }
            let _ = guard.audit(facts.event(Some(&principal.subject), 403, "denied"));
            return Ok(refuse(req, err.into()));
        }
    }

    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(facts);
    let mut res = next.call(req).await?.map_into_boxed_body();
    if let Some(d) = decision {
        for (name, value) in rate_headers(&d, limits.period_secs) {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                res.headers_mut().insert(header::HeaderName::from_static(name), value);
            }
        }
    }
    Ok(res)
}

impl actix_web::FromRequest for Principal {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Principal>().cloned().ok_or_else(|| AuthError::Missing.into()))
    }
}
