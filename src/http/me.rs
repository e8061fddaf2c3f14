//! `GET /api/v1/me`: who the bearer token speaks for.

use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;

/// The caller as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Principal)]
#[serde(deny_unknown_fields)]
pub struct PrincipalBody {
    /// `sub` claim: the user or service acting.
    pub subject: String,
    /// Granted scopes (`fintech:read`, `admin`, ...), sorted, each once.
    pub scopes: Vec<String>,
    /// `jti` claim, when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub token_id: Option<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

impl From<Principal> for PrincipalBody {
    fn from(p: Principal) -> Self {
        Self {
            subject: p.subject,
            scopes: p.scopes.into_iter().collect(),
            token_id: p.token_id,
            expires_at: p.expires_at,
        }
    }
}

/// The caller: subject, scopes, token id and expiry.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "me",
    tag = "identity",
    responses((status = 200, description = "The principal.", body = PrincipalBody))
)]
pub async fn me(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(PrincipalBody::from(principal))
}
