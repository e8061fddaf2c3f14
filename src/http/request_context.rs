//! Per-request context: the request id (taken or generated, echoed, in scope for every log line
//! and actor message), the request span, the HTTP RED metrics labelled by route template, and
//! that template, found once and kept in the request's extensions ([`route_of`]) for the guard
//! and the audit layer.

use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{self, HeaderName, HeaderValue},
        Method,
    },
    middleware::Next,
    Error,
};
use tracing::Instrument;

use crate::telemetry::{Metrics, RequestId, REQUEST_ID};

/// Header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Accepted alternative incoming header.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";

fn incoming_id(req: &ServiceRequest) -> RequestId {
    [REQUEST_ID_HEADER, CORRELATION_ID_HEADER]
        .iter()
        .find_map(|name| req.headers().get(*name).and_then(|v| v.to_str().ok()).and_then(RequestId::parse))
        .unwrap_or_else(RequestId::generate)
}

/// The route template a request matched, as found by [`request_context`].
#[derive(Debug, Clone)]
pub struct RoutePattern(pub Option<String>);

/// The route template of `req` (`None`: no route matched): the one [`request_context`] kept, or
/// found now. Finding it walks the application's routes and matches their patterns again.
pub fn route_of(req: &ServiceRequest) -> Option<String> {
    match req.extensions().get::<RoutePattern>() {
        Some(RoutePattern(route)) => route.clone(),
        None => req.match_pattern(),
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The middleware function; wrap it outermost so every response, errors included, passes here.
/// HTTP metrics go to the [`Metrics`] found in the app data.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = incoming_id(&req);
    let metrics = req.app_data::<Metrics>().map(|m| m.http());
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "http.request",
        request_id = id.as_str(),
        method,
        path = req.path(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let started = Instant::now();
    if let Some(m) = &metrics {
        m.started();
    }
    // The routes are the application's from the start: the template is the same before and after
    // routing, found once here.
    let pattern = req.match_pattern();
    req.extensions_mut().insert(RoutePattern(pattern.clone()));
    let result = REQUEST_ID.scope(id.clone(), next.call(req).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    // Handler errors arrive here as responses; an `Err` only comes from a failing middleware and
    // is rendered by actix after this point, so it is counted without a route.
    let (route, status) = match &result {
        Ok(res) => (pattern.as_deref(), res.status().as_u16()),
        Err(err) => (None, err.as_response_error().status_code().as_u16()),
    };
    let route = route.unwrap_or("unmatched");
    if let Some(m) = &metrics {
        m.finished(method, route, status, elapsed.as_secs_f64());
    }
    span.record("route", route);
    span.record("status", status);
    span.in_scope(|| {
        tracing::info!(
            request_id = id.as_str(),
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request completed"
        )
    });
    let mut res = result?.map_into_boxed_body();
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
