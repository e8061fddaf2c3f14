//! One error type for every HTTP and GraphQL answer, rendered as `application/problem+json`
//! (RFC 9457) with a stable `code` taken from one table.

use std::{fmt, time::Duration};

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{actors::runtime::AskError, telemetry};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($code:literal, $status:literal, $title:literal), )*) => {
        /// Stable error codes: the `code` of a problem body and `extensions.code` in GraphQL.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum ErrorCode { $( $(#[$doc])* $variant, )* }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable string clients match on.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that goes with it.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::from_u16($status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),)* }
            }

            /// Short human title.
            pub const fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }
        }
    };
}

error_codes! {
    /// The request is malformed in a way no more specific code covers.
    BadRequest => ("bad_request", 400, "Bad request"),
    /// The body is not valid JSON or does not match the expected shape.
    MalformedJson => ("malformed_json", 400, "Malformed JSON body"),
    /// A path or query parameter is malformed.
    InvalidParameter => ("invalid_parameter", 400, "Invalid parameter"),
    /// No bearer token was sent.
    TokenMissing => ("token_missing", 401, "Authentication required"),
    /// The Authorization header or the token is not a well-formed JWT.
    TokenMalformed => ("token_malformed", 401, "Malformed token"),
    /// The token is unsigned (`alg: none`).
    TokenUnsigned => ("token_unsigned", 401, "Unsigned token"),
    /// The token's algorithm is not accepted (e.g. HS256 where only RS256 keys are configured).
    TokenAlgorithmNotAllowed => ("token_algorithm_not_allowed", 401, "Token algorithm not accepted"),
    /// The token's `kid` names no configured key.
    TokenUnknownKey => ("token_unknown_key", 401, "Unknown token key"),
    /// No configured key verifies the token's signature.
    TokenInvalidSignature => ("token_invalid_signature", 401, "Invalid token signature"),
    /// The token has expired.
    TokenExpired => ("token_expired", 401, "Token expired"),
    /// The token is not valid yet (`nbf`).
    TokenNotYetValid => ("token_not_yet_valid", 401, "Token not yet valid"),
    /// The token was issued by someone else.
    TokenWrongIssuer => ("token_wrong_issuer", 401, "Wrong token issuer"),
    /// The token is meant for another audience.
    TokenWrongAudience => ("token_wrong_audience", 401, "Wrong token audience"),
    /// A required claim is missing or malformed.
    TokenInvalidClaims => ("token_invalid_claims", 401, "Invalid token claims"),
    /// The token lacks a scope the operation needs; `missing_scope` names it.
    ScopeMissing => ("scope_missing", 403, "Missing scope"),
    /// The resource belongs to another user.
    NotOwner => ("not_owner", 403, "Forbidden"),
    /// Not an ISO 4217 currency code.
    UnknownCurrency => ("unknown_currency", 400, "Unknown currency"),
    /// Zero, negative or non-integer amount.
    InvalidAmount => ("invalid_amount", 400, "Invalid amount"),
    /// Amount above the largest accepted, or a balance would overflow.
    AmountTooLarge => ("amount_too_large", 400, "Amount too large"),
    /// Source and destination are the same wallet.
    SameWallet => ("same_wallet", 400, "Same wallet"),
    /// A wallet id is not a UUID.
    InvalidWalletId => ("invalid_wallet_id", 400, "Invalid wallet id"),
    /// External reference or owner missing or malformed.
    InvalidReference => ("invalid_reference", 400, "Invalid reference"),
    /// POST without an `Idempotency-Key` header, or a malformed one.
    IdempotencyKeyMissing => ("idempotency_key_missing", 400, "Idempotency key required"),
    /// A page larger than allowed was asked for.
    PageTooLarge => ("page_too_large", 400, "Page too large"),
    /// The pagination cursor is not one this service issued.
    InvalidCursor => ("invalid_cursor", 400, "Invalid cursor"),
    /// No such wallet.
    WalletNotFound => ("wallet_not_found", 404, "Wallet not found"),
    /// No route matches the path.
    NotFound => ("not_found", 404, "Not found"),
    /// No actor has that name.
    ActorNotFound => ("actor_not_found", 404, "Actor not found"),
    /// The route exists but not for this method.
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
    /// The wallet is frozen.
    WalletFrozen => ("wallet_frozen", 409, "Wallet frozen"),
    /// The wallet is closed.
    WalletClosed => ("wallet_closed", 409, "Wallet closed"),
    /// Only an empty wallet closes.
    BalanceNotZero => ("balance_not_zero", 409, "Balance not zero"),
    /// The status change makes no sense from the current status.
    InvalidTransition => ("invalid_transition", 409, "Invalid status change"),
    /// The idempotency key was used for a different request; `fields` names what differs.
    IdempotencyKeyReused => ("idempotency_key_reused", 409, "Idempotency key reused"),
    /// The body is larger than the configured limit.
    PayloadTooLarge => ("payload_too_large", 413, "Payload too large"),
    /// The body's media type is not accepted.
    UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type"),
    /// The debit would make the balance negative.
    InsufficientFunds => ("insufficient_funds", 422, "Insufficient funds"),
    /// The wallets hold different currencies.
    CurrencyMismatch => ("currency_mismatch", 422, "Currency mismatch"),
    /// Too many requests; `Retry-After` says when to try again.
    RateLimited => ("rate_limited", 429, "Too many requests"),
    /// An unexpected failure; details are in the logs under the request id.
    Internal => ("internal_error", 500, "Internal server error"),
    /// The actor that owns the resource is restarting or failed.
    ActorUnavailable => ("actor_unavailable", 503, "Service unavailable"),
    /// The service is shutting down or not ready.
    ServiceUnavailable => ("service_unavailable", 503, "Service unavailable"),
    /// The ledger store cannot be reached; retry with the same idempotency key.
    LedgerUnavailable => ("ledger_unavailable", 503, "Service unavailable"),
    /// A state-changing request could not be audited and the policy is fail-closed.
    AuditUnavailable => ("audit_unavailable", 503, "Service unavailable"),
    /// The actor that owns the resource did not answer in time.
    ActorTimeout => ("actor_timeout", 504, "Gateway timeout"),
}

/// Every error an HTTP or GraphQL handler returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The client's request is at fault (4xx); `detail` is shown to the client.
    #[error("{detail}")]
    Client {
        /// Code from the table.
        code: ErrorCode,
        /// Human explanation, safe to show.
        detail: String,
        /// Extra members of the problem body (e.g. the offending field).
        extensions: Map<String, Value>,
        /// Extra response headers (WWW-Authenticate, Retry-After, RateLimit-*).
        headers: Vec<(&'static str, String)>,
    },
    /// The owning actor cannot answer now (503 with Retry-After).
    #[error("actor {actor} unavailable")]
    Unavailable {
        /// Actor name (logged, not shown).
        actor: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The owning actor did not answer in time (504).
    #[error("actor {actor} timed out")]
    Timeout {
        /// Actor name (logged, not shown).
        actor: String,
    },
    /// Anything else (500); the cause is logged once, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    /// A client error with a code and an explanation.
    pub fn client(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Client { code, detail: detail.into(), extensions: Map::new(), headers: Vec::new() }
    }

    /// Add a response header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Self::Client { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    /// Add a member to the problem body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Self::Client { extensions, .. } = &mut self {
            extensions.insert(key.into(), value.into());
        }
        self
    }

    /// The code from the table.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } => *code,
            Self::Unavailable { .. } => ErrorCode::ActorUnavailable,
            Self::Timeout { .. } => ErrorCode::ActorTimeout,
            Self::Unexpected(_) => ErrorCode::Internal,
        }
    }

    /// What the client may read: the client detail for 4xx, a generic sentence otherwise.
    pub fn public_detail(&self) -> String {
        match self {
            Self::Client { detail, .. } => detail.clone(),
            Self::Unavailable { .. } => "the component that owns this resource is restarting; retry shortly".into(),
            Self::Timeout { .. } => "the component that owns this resource did not answer in time".into(),
            Self::Unexpected(_) => "an unexpected error occurred; quote the request id when reporting it".into(),
        }
    }

    /// The problem body.
    pub fn problem(&self, instance: Option<&str>) -> Problem {
        let code = self.code();
        Problem {
            kind: format!("https://beryl-ecosystem.com/problems/{}", code.as_str()),
            title: code.title(),
            status: code.status().as_u16(),
            detail: self.public_detail(),
            code: code.as_str(),
            instance: instance.map(str::to_string),
            request_id: telemetry::current_request_id().map(|r| r.as_str().to_string()),
            extensions: match self {
                Self::Client { extensions, .. } => extensions.clone(),
                _ => Map::new(),
            },
        }
    }

    fn log(&self) {
        match self {
            Self::Unexpected(e) => tracing::error!(error = format!("{e:#}"), "unexpected error"),
            Self::Unavailable { actor, .. } => tracing::warn!(actor = %actor, "actor unavailable"),
            Self::Timeout { actor } => tracing::warn!(actor = %actor, "actor timed out"),
            Self::Client { .. } => {}
        }
    }
}

impl From<std::convert::Infallible> for AppError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<crate::domain::fintech::FintechError> for AppError {
    fn from(e: crate::domain::fintech::FintechError) -> Self {
        use crate::domain::fintech::FintechError as F;
        let code = match &e {
            F::UnknownCurrency(_) => ErrorCode::UnknownCurrency,
            F::InvalidAmount => ErrorCode::InvalidAmount,
            F::AmountTooLarge => ErrorCode::AmountTooLarge,
            F::SameWallet => ErrorCode::SameWallet,
            F::InvalidWalletId(_) => ErrorCode::InvalidWalletId,
            F::WalletNotFound(_) => ErrorCode::WalletNotFound,
            F::InsufficientFunds(_) => ErrorCode::InsufficientFunds,
            F::WalletFrozen(_) => ErrorCode::WalletFrozen,
            F::WalletClosed(_) => ErrorCode::WalletClosed,
            F::CurrencyMismatch(..) => ErrorCode::CurrencyMismatch,
            F::BalanceNotZero(_) => ErrorCode::BalanceNotZero,
            F::InvalidTransition(..) => ErrorCode::InvalidTransition,
            F::InvalidReference | F::InvalidOwner => ErrorCode::InvalidReference,
        };
        AppError::client(code, e.to_string())
    }
}

impl From<crate::actors::fintech::LedgerFailure> for AppError {
    fn from(e: crate::actors::fintech::LedgerFailure) -> Self {
        use crate::actors::fintech::LedgerFailure as L;
        match e {
            L::Store => AppError::client(
                ErrorCode::LedgerUnavailable,
                "the ledger cannot be reached; retry with the same Idempotency-Key",
            )
            .with_header("retry-after", "1"),
            L::Unavailable => {
                AppError::Unavailable { actor: "wallet".into(), retry_after: std::time::Duration::from_secs(1) }
            }
        }
    }
}

impl From<crate::domain::idempotency::IdempotencyError> for AppError {
    fn from(e: crate::domain::idempotency::IdempotencyError) -> Self {
        use crate::domain::idempotency::IdempotencyError as I;
        match e {
            I::Missing => AppError::client(ErrorCode::IdempotencyKeyMissing, e.to_string()),
            I::Reused(ref fields) => {
                let fields = fields.clone();
                AppError::client(ErrorCode::IdempotencyKeyReused, e.to_string()).with("fields", fields)
            }
            I::InUse | I::Outdated => AppError::client(ErrorCode::IdempotencyKeyReused, e.to_string()),
        }
    }
}

impl From<crate::actors::fintech::CallError> for AppError {
    fn from(e: crate::actors::fintech::CallError) -> Self {
        use crate::actors::fintech::CallError as C;
        match e {
            C::Idempotency(e) => e.into(),
            C::Ledger(e) => e.into(),
            C::Ask(e) => e.into(),
        }
    }
}

impl From<AskError> for AppError {
    fn from(e: AskError) -> Self {
        match e {
            AskError::Unavailable { actor, retry_after } => Self::Unavailable { actor: actor.to_string(), retry_after },
            AskError::Timeout { actor, .. } => Self::Timeout { actor: actor.to_string() },
        }
    }
}

impl From<crate::auth::AuthError> for AppError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError as A;
        let code = match e {
            A::Missing => ErrorCode::TokenMissing,
            A::Malformed => ErrorCode::TokenMalformed,
            A::AlgorithmNone => ErrorCode::TokenUnsigned,
            A::AlgorithmNotAllowed => ErrorCode::TokenAlgorithmNotAllowed,
            A::UnknownKey => ErrorCode::TokenUnknownKey,
            A::InvalidSignature => ErrorCode::TokenInvalidSignature,
            A::Expired => ErrorCode::TokenExpired,
            A::NotYetValid => ErrorCode::TokenNotYetValid,
            A::WrongIssuer => ErrorCode::TokenWrongIssuer,
            A::WrongAudience => ErrorCode::TokenWrongAudience,
            A::InvalidClaims => ErrorCode::TokenInvalidClaims,
        };
        // RFC 6750: no error attribute when no credentials were sent.
        let challenge = match e {
            A::Missing => r#"Bearer realm="beryl-core-api""#.to_string(),
            other => format!(r#"Bearer realm="beryl-core-api", error="invalid_token", error_description="{other}""#),
        };
        AppError::client(code, format!("{e}: send a valid bearer token")).with_header("www-authenticate", challenge)
    }
}

/// An RFC 9457 problem body.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Explanation for this occurrence.
    pub detail: String,
    /// Stable code.
    pub code: &'static str,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Correlation id of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra members.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// The HTTP response carrying this body.
    pub fn response(&self, retry_after: Option<Duration>) -> HttpResponse {
        self.response_with(retry_after, &[])
    }

    /// The HTTP response carrying this body, with extra headers.
    pub fn response_with(&self, retry_after: Option<Duration>, headers: &[(&'static str, String)]) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = HttpResponse::build(status);
        builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Some(after) = retry_after {
            builder.insert_header((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
        }
        for (name, value) in headers {
            builder.insert_header((*name, value.as_str()));
        }
        builder.body(serde_json::to_vec(self).unwrap_or_default())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let retry_after = match self {
            Self::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let headers = match self {
            Self::Client { headers, .. } => headers.as_slice(),
            _ => &[],
        };
        self.problem(None).response_with(retry_after, headers)
    }
}

impl async_graphql::ErrorExtensions for AppError {
    fn extend(&self) -> async_graphql::Error {
        self.log();
        let code = self.code();
        async_graphql::Error::new(self.public_detail()).extend_with(|_, e| {
            e.set("code", code.as_str());
            e.set("status", code.status().as_u16());
            if let Some(id) = telemetry::current_request_id() {
                e.set("request_id", id.as_str());
            }
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_valid() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn unexpected_errors_do_not_leak() {
        let err = AppError::Unexpected(anyhow::anyhow!("password authentication failed for user app"));
        let body = serde_json::to_string(&err.problem(None)).unwrap();
        assert!(!body.contains("password"));
        assert!(body.contains("internal_error"));
    }
}
