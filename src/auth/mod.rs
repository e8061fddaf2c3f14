//! Authentication (JWT), authorization (scopes and ownership) and rate limiting: the platform
//! pieces every route under `/api` and `/graphql` passes through.

pub mod jwt;
pub mod policy;
pub mod rate_limit;
pub mod revocation;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use jwt::{AuthError, KeySet};
pub use policy::{required_scope, Denied, Scope};
pub use revocation::{RevocationError, Revocations};

use crate::telemetry::{self, Metrics};

/// Keep this replica's view of what verifies a token current, every `every`: the PEM and JWKS
/// files (read again when they change) and the shared list of revoked tokens (kept as it was
/// while Redis cannot be read). Runs until the process stops.
pub async fn keep_fresh(keys: Arc<KeySet>, revocations: Arc<Revocations>, every: Duration, metrics: Metrics) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        keys.reload_files();
        match revocations.refresh().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("revoked tokens readable again");
            }
            Ok(_) => {}
            Err(e) => {
                metrics.with(|| metrics::counter!(telemetry::AUTH_REVOCATION_SYNC_FAILURES_TOTAL).increment(1));
                if !failing {
                    tracing::warn!(error = %e, "cannot read the revoked tokens: keeping the last list known");
                }
                failing = true;
            }
        }
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// `sub` claim: the user or service acting.
    pub subject: String,
    /// Granted scopes (`fintech:read`, `admin`, ...).
    pub scopes: BTreeSet<String>,
    /// `jti` claim, when present; the id a revocation names.
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
