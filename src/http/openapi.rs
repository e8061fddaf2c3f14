//! `GET /api/openapi.json`: the OpenAPI 3.1 description of the REST API (open, like the other
//! docs). `tests/api/openapi.rs` calls every operation it documents and validates the answers
//! against its schemas, so that the document stays true.

use actix_web::HttpResponse;

/// The document.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Serve it.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(DOCUMENT)
}
