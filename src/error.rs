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
    /// No route matches the path.
    NotFound => ("not_found", 404, "Not found"),
    /// No actor has that name.
    ActorNotFound => ("actor_not_found", 404, "Actor not found"),
    /// The route exists but not for this method.
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
    /// The body is larger than the configured limit.
    PayloadTooLarge => ("payload_too_large", 413, "Payload too large"),
    /// The body's media type is not accepted.
    UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type"),
    /// An unexpected failure; details are in the logs under the request id.
    Internal => ("internal_error", 500, "Internal server error"),
    /// The actor that owns the resource is restarting or failed.
    ActorUnavailable => ("actor_unavailable", 503, "Service unavailable"),
    /// The service is shutting down or not ready.
    ServiceUnavailable => ("service_unavailable", 503, "Service unavailable"),
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
        Self::Client { code, detail: detail.into(), extensions: Map::new() }
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

impl From<AskError> for AppError {
    fn from(e: AskError) -> Self {
        match e {
            AskError::Unavailable { actor, retry_after } => Self::Unavailable { actor: actor.to_string(), retry_after },
            AskError::Timeout { actor, .. } => Self::Timeout { actor: actor.to_string() },
        }
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
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = HttpResponse::build(status);
        builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Some(after) = retry_after {
            builder.insert_header((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
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
        self.problem(None).response(retry_after)
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
