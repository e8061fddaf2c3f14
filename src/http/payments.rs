//! `POST /webhooks/payments`: the payment provider's events. No token: a delivery is
//! authenticated by its `Stripe-Signature` (HMAC-SHA256 of the timestamp and the raw body with
//! the webhook secret). Unsigned, badly signed, stale and replayed deliveries are answered 400
//! with their own code and audited as denials.
//!
//! A verified event this service does not act on is answered 200 and counted
//! (`beryl_payments_webhooks_total{outcome="ignored"}`): the provider retries every non-2xx
//! answer for days, and no retry would make such an event useful. A redelivery of an event
//! already applied is answered 200 and changes nothing.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    guard::{client_ip, AlreadyAudited},
    state::AppState,
};
use crate::{
    actors::payments::PaymentsError,
    domain::{
        audit::{AuditEvent, OUTCOME_DENIED},
        payments::SIGNATURE_HEADER,
    },
    error::{code::Coded, AppError, ErrorCode},
    telemetry,
};

/// Route of the webhook.
pub const WEBHOOK_ROUTE: &str = "/webhooks/payments";

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[(
        "paymentsWebhook",
        &[
            WebhookUnsigned,
            WebhookSignatureInvalid,
            WebhookTimestampStale,
            WebhookReplayed,
            WebhookMalformed,
            WebhookMismatch,
            WalletNotFound,
            WalletFrozen,
            WalletClosed,
            CurrencyMismatch,
            LedgerUnavailable,
            Overloaded,
        ],
    )]
};

/// The answer to a delivery taken.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookAck {
    /// Always true.
    pub received: bool,
    /// `applied`, `duplicate` (applied before) or `ignored` (an event not acted on).
    pub outcome: String,
}

/// Take one delivery of the payment provider.
#[utoipa::path(
    post,
    path = "/webhooks/payments",
    operation_id = "paymentsWebhook",
    tag = "payments",
    params(("Stripe-Signature" = Option<String>, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`, several `v1` during a secret rotation.")),
    request_body(content = Object, content_type = "application/json", description = "The provider's event, signed as sent."),
    responses((status = 200, description = "The delivery was taken.", body = WebhookAck))
)]
pub async fn webhook(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let signature = req.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    match state.actors.payments.webhook(signature, &body).await {
        Ok(delivered) => Ok(HttpResponse::Ok().json(WebhookAck { received: true, outcome: delivered.as_str().into() })),
        Err(error) => {
            if let PaymentsError::Signature(e) = &error {
                tracing::warn!(reason = e.outcome(), "payments webhook refused");
                req.extensions_mut().insert(AlreadyAudited);
                // No subject: the client's address is sealed under the period's key.
                let ip = client_ip(&req, &state.guard.limits.trusted_proxies);
                let (_, _, client_ip) = match state.guard.audit_sealing(None).await {
                    Some(sealing) => sealing.seal(None, ip),
                    None => (None, None, ip.map(|ip| ip.to_string())),
                };
                state.guard.audit_denial(AuditEvent {
                    time: Utc::now(),
                    subject: None,
                    action: format!("POST {WEBHOOK_ROUTE}"),
                    resource: WEBHOOK_ROUTE.into(),
                    outcome: OUTCOME_DENIED.into(),
                    status: error.code().status(),
                    request_id: telemetry::current_request_id().map(|r| r.as_str().to_owned()),
                    client_ip,
                    count: None,
                    money: None,
                    reason: None,
                    subject_index: None,
                });
            }
            Err(error.into())
        }
    }
}
