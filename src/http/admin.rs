//! `/api/v1/admin`: operator actions on authentication (scope `admin`, the policy table's default
//! for routes it does not name; audited like every write).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    json::{self, Json},
    state::AppState,
};
use crate::{
    auth::Principal,
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = &[("revokeToken", &[ErrorCode::InvalidParameter])];

/// Longest `jti` accepted, in characters.
pub const JTI_MAX: usize = 255;

/// A token to refuse from now on, named by its `jti` and `exp` claims.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TokenRevocation)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// The token's `jti` claim.
    #[schema(min_length = 1, max_length = 255, example = "0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6e")]
    pub jti: String,
    /// The token's `exp` claim, seconds since the epoch: the revocation is kept until then (plus
    /// the clock leeway, and no longer than a token may live from now).
    #[schema(minimum = 1, example = 4102444800i64)]
    #[serde(deserialize_with = "json::integer")]
    pub exp: i64,
}

/// A revocation recorded.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokenRevoked)]
#[serde(deny_unknown_fields)]
pub struct RevocationAnswer {
    /// The revoked `jti`.
    pub jti: String,
    /// Until when every replica refuses it.
    pub refused_until: DateTime<Utc>,
}

/// Revoke one token: every replica answers it with 401 `token_revoked` within
/// `auth.refresh_interval_ms` (this one at once), until the token would have expired.
#[utoipa::path(
    post,
    path = "/api/v1/admin/tokens/revocations",
    operation_id = "revokeToken",
    tag = "admin",
    request_body(
        content = RevocationRequest,
        example = json!({"jti": "0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6e", "exp": 4102444800i64})
    ),
    responses((status = 201, description = "The token is refused from now on.", body = RevocationAnswer))
)]
#[tracing::instrument(skip_all)]
pub async fn revoke_token(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<RevocationRequest>,
) -> Result<HttpResponse, AppError> {
    let RevocationRequest { jti, exp } = body.into_inner();
    let length = jti.chars().count();
    if length == 0 || length > JTI_MAX {
        return Err(AppError::client(ErrorCode::InvalidParameter, format!("jti must be 1 to {JTI_MAX} characters"))
            .with("field", "jti"));
    }
    if exp < 1 {
        return Err(
            AppError::client(ErrorCode::InvalidParameter, "exp must be a time after the epoch").with("field", "exp")
        );
    }
    let keys = &state.guard.keys;
    let leeway = keys.leeway_secs() as i64;
    // No accepted token outlives the maximum lifetime from now: nothing to keep beyond it.
    let latest = Utc::now().timestamp().saturating_add(keys.max_lifetime_secs()).saturating_add(leeway);
    let until = exp.saturating_add(leeway).min(latest);
    let refused_until = DateTime::from_timestamp(until, 0).unwrap_or_default();
    state.guard.revocations.revoke(&jti, refused_until).await.map_err(|e| {
        AppError::server(ErrorCode::ServiceUnavailable, e.to_string()).with_retry_after(Duration::from_secs(5))
    })?;
    tracing::info!(jti = %jti, by = %principal.subject, until = %refused_until, "token revoked");
    Ok(HttpResponse::Created().json(RevocationAnswer { jti, refused_until }))
}
