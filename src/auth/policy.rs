//! Which scope each route needs, in one table, and the ownership rule domains apply.

use actix_web::http::Method;

use serde_json::{Map, Value};

use super::Principal;
use crate::error::code::{Coded, ErrorCode};

/// Grants every scope.
pub const ADMIN: &str = "admin";

/// Moves money across the ledger's boundary (deposits and withdrawals): held by the payment
/// provider's bridge and back-office service accounts, never by users; `fintech:write` does not
/// imply it.
pub const FINTECH_SETTLE: &str = "fintech:settle";

/// Routes (method POST) that move money in or out of the ledger and need [`FINTECH_SETTLE`].
pub const SETTLEMENT_ROUTES: &[&str] =
    &["/api/v1/fintech/wallets/{id}/deposits", "/api/v1/fintech/wallets/{id}/withdrawals"];

/// Domains whose routes live under `/api/v1/<domain>/`.
pub const DOMAINS: &[&str] = &["fintech", "mobility", "esg", "social", "system", "privacy"];

/// A required scope, `<domain>:read` or `<domain>:write`, `fintech:settle`, or `admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(pub String);

impl Scope {
    /// The scope's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The scope a request needs, from its method and matched route template. `None` means any
/// authenticated caller may proceed; routes no rule names need `admin` (deny by default).
pub fn required_scope(method: &Method, route: &str) -> Option<Scope> {
    if route == "/api/v1/me" || route == "/graphql" {
        // GraphQL resolvers check scopes per field.
        return None;
    }
    let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !read && SETTLEMENT_ROUTES.contains(&route) {
        return Some(Scope(FINTECH_SETTLE.into()));
    }
    let domain = route.strip_prefix("/api/v1/").and_then(|rest| rest.split('/').next());
    match domain {
        Some(d) if DOMAINS.contains(&d) => Some(Scope(format!("{d}:{}", if read { "read" } else { "write" }))),
        _ => Some(Scope(ADMIN.into())),
    }
}

/// Why an authenticated caller may not go on (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The principal lacks the scope named.
    #[error("this operation needs the `{0}` scope")]
    MissingScope(String),
    /// The resource belongs to someone else.
    #[error("this resource belongs to another user")]
    NotOwner,
}

impl Coded for Denied {
    fn code(&self) -> ErrorCode {
        match self {
            Self::MissingScope(_) => ErrorCode::ScopeMissing,
            Self::NotOwner => ErrorCode::NotOwner,
        }
    }

    /// The scope missing, when one is.
    fn extensions(&self) -> Map<String, Value> {
        match self {
            Self::MissingScope(scope) => Map::from_iter([("missing_scope".to_string(), Value::from(scope.as_str()))]),
            Self::NotOwner => Map::new(),
        }
    }
}

impl Principal {
    /// Refused unless the principal holds `scope`.
    pub fn require(&self, scope: &str) -> Result<(), Denied> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(Denied::MissingScope(scope.to_owned()))
        }
    }

    /// Refused unless the principal is `owner` or an administrator: the rule domains call before
    /// acting on a resource that belongs to someone.
    pub fn require_owner(&self, owner: &str) -> Result<(), Denied> {
        self.require_owner_of(Some(owner))
    }

    /// [`Principal::require_owner`] for an owner that may have been erased (`None`): only an
    /// administrator then passes.
    pub fn require_owner_of(&self, owner: Option<&str>) -> Result<(), Denied> {
        if owner == Some(self.subject.as_str()) || self.is_admin() {
            Ok(())
        } else {
            Err(Denied::NotOwner)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_domain_and_method() {
        let s = |m: Method, r: &str| required_scope(&m, r).map(|s| s.0);
        assert_eq!(s(Method::GET, "/api/v1/fintech/wallets/{id}").as_deref(), Some("fintech:read"));
        assert_eq!(s(Method::POST, "/api/v1/fintech/transfers").as_deref(), Some("fintech:write"));
        assert_eq!(s(Method::DELETE, "/api/v1/mobility/rides/{id}").as_deref(), Some("mobility:write"));
        assert_eq!(s(Method::GET, "/api/v1/unknown/thing").as_deref(), Some("admin"));
        assert_eq!(s(Method::POST, "/internal/faults/{actor}").as_deref(), Some("admin"));
        assert_eq!(s(Method::GET, "/api/v1/me"), None);
        assert_eq!(s(Method::POST, "/api/v1/fintech/wallets/{id}/deposits").as_deref(), Some("fintech:settle"));
        assert_eq!(s(Method::POST, "/api/v1/fintech/wallets/{id}/withdrawals").as_deref(), Some("fintech:settle"));
    }

    #[test]
    fn admin_passes_every_check_and_owners_their_own() {
        let p = |sub: &str, scopes: &[&str]| Principal {
            subject: sub.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            token_id: None,
            expires_at: chrono::Utc::now(),
        };
        assert!(p("root", &["admin"]).require("fintech:write").is_ok());
        assert!(p("a", &["fintech:read"]).require("fintech:write").is_err());
        assert!(p("a", &[]).require_owner("a").is_ok());
        assert!(p("a", &[]).require_owner("b").is_err());
        assert!(p("root", &["admin"]).require_owner("b").is_ok());
        assert!(p("a", &["fintech:write"]).require(FINTECH_SETTLE).is_err());
    }
}
