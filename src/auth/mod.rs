//! Authentication (JWT), authorization (scopes and ownership) and rate limiting: the platform
//! pieces every route under `/api` and `/graphql` passes through.

pub mod jwt;
pub mod policy;
pub mod rate_limit;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use jwt::{AuthError, KeySet};
pub use policy::{required_scope, Denied, Scope};

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// `sub` claim: the user or service acting.
    pub subject: String,
    /// Granted scopes (`fintech:read`, `admin`, ...).
    pub scopes: BTreeSet<String>,
    /// `jti` claim, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl Principal {
    /// Whether the principal holds `scope` (or `admin`).
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.contains(scope) || self.scopes.contains(policy::ADMIN)
    }

    /// Whether the principal is an administrator.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(policy::ADMIN)
    }
}
