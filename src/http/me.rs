//! `GET /api/v1/me`: who the bearer token speaks for.

use actix_web::HttpResponse;

use crate::auth::Principal;

/// The authenticated principal: subject, scopes, token id and expiry.
pub async fn me(principal: Principal) -> HttpResponse {
    HttpResponse::Ok().json(principal)
}
