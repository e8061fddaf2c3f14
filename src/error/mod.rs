//! One error type for every HTTP and GraphQL answer, rendered as `application/problem+json`
//! (RFC 9457) with a stable `code` taken from one table ([`code`]). Errors name their code beside
//! their type by implementing [`Coded`]; this module only turns them into answers.

pub mod code;

use std::time::Duration;

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use serde::Serialize;
use serde_json::{Map, Value};

pub use code::{Coded, ErrorCode};

use crate::telemetry;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

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
    /// The service cannot answer now (5xx, e.g. an actor restarting or the ledger unreachable):
    /// the body says only what the code means, the cause is logged once, never shown.
    #[error("{code}: {cause}")]
    Server {
        /// Code from the table (a 5xx).
        code: ErrorCode,
        /// What failed (logged, not shown).
        cause: String,
        /// When the client may try again (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Anything else (500); the cause is logged once, never shown.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    /// A client error (4xx) with a code and an explanation.
    pub fn client(code: ErrorCode, detail: impl Into<String>) -> Self {
        debug_assert!(!code.is_server_error(), "{code} is a server error: use AppError::server");
        Self::Client { code, detail: detail.into(), extensions: Map::new(), headers: Vec::new() }
    }

    /// A server error (5xx) with a code and its cause, which is logged and never shown.
    pub fn server(code: ErrorCode, cause: impl Into<String>) -> Self {
        Self::Server { code, cause: cause.into(), retry_after: None }
    }

    /// Tell the client of a server error when to try again.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        if let Self::Server { retry_after, .. } = &mut self {
            *retry_after = Some(after);
        }
        self
    }

    /// Add a response header to a client error.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if let Self::Client { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    /// Add a member to the problem body of a client error.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Self::Client { extensions, .. } = &mut self {
            extensions.insert(key.into(), value.into());
        }
        self
    }

    /// The code from the table.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } | Self::Server { code, .. } => *code,
            Self::Unexpected(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status of its code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// What the client may read: the client detail for 4xx, what the code means otherwise.
    pub fn public_detail(&self) -> String {
        match self {
            Self::Client { detail, .. } => detail.clone(),
            Self::Server { code, .. } => server_detail(*code).into(),
            Self::Unexpected(_) => server_detail(ErrorCode::Internal).into(),
        }
    }

    /// The problem body.
    pub fn problem(&self, instance: Option<&str>) -> Problem {
        let code = self.code();
        Problem {
            kind: format!("https://beryl-ecosystem.com/problems/{}", code.as_str()),
            title: code.title(),
            status: code.status(),
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
            Self::Server { code, cause, .. } => tracing::warn!(code = code.as_str(), error = %cause, "server error"),
            Self::Client { .. } => {}
        }
    }
}

/// The only text a server error shows: what its code means.
fn server_detail(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::ActorUnavailable => "the component that owns this resource is restarting; retry shortly",
        ErrorCode::ActorTimeout => "the component that owns this resource did not answer in time",
        ErrorCode::LedgerUnavailable => "the ledger cannot be reached; retry with the same Idempotency-Key",
        ErrorCode::AuditUnavailable => "the audit trail cannot record this change now; retry shortly",
        ErrorCode::ServiceUnavailable => "the service cannot take this request now",
        _ => "an unexpected error occurred; quote the request id when reporting it",
    }
}

/// Any error with a code: a client error shows what it says of itself, a server error only what
/// its code means.
impl<E: Coded> From<E> for AppError {
    fn from(e: E) -> Self {
        let code = e.code();
        if code.is_server_error() {
            Self::Server { code, cause: cause_chain(&e), retry_after: e.retry_after() }
        } else {
            Self::Client { code, detail: e.detail(), extensions: e.extensions(), headers: e.headers() }
        }
    }
}

/// An error and its sources, one line, for the log.
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<std::convert::Infallible> for AppError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
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
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let retry_after = match self {
            Self::Server { retry_after, .. } => *retry_after,
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
            e.set("status", code.status());
            if let Some(id) = telemetry::current_request_id() {
                e.set("request_id", id.as_str());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_errors_do_not_leak() {
        let err = AppError::Unexpected(anyhow::anyhow!("password authentication failed for user app"));
        let body = serde_json::to_string(&err.problem(None)).unwrap();
        assert!(!body.contains("password"));
        assert!(body.contains("internal_error"));
    }

    #[derive(Debug, thiserror::Error)]
    enum Probe {
        #[error("field `x` is wrong")]
        Refused,
        #[error("pool exhausted at 10.0.0.7")]
        Down(#[source] std::io::Error),
    }

    impl Coded for Probe {
        fn code(&self) -> ErrorCode {
            match self {
                Self::Refused => ErrorCode::InvalidParameter,
                Self::Down(_) => ErrorCode::LedgerUnavailable,
            }
        }

        fn extensions(&self) -> Map<String, Value> {
            Map::from_iter([("field".to_string(), Value::from("x"))])
        }

        fn headers(&self) -> Vec<(&'static str, String)> {
            vec![("x-probe", "1".into())]
        }

        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(3))
        }
    }

    #[test]
    fn a_client_error_shows_what_it_says_of_itself() {
        let err = AppError::from(Probe::Refused);
        assert!(matches!(err, AppError::Client { .. }));
        let res = err.error_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers().get("x-probe").and_then(|v| v.to_str().ok()), Some("1"));
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
        let body = serde_json::to_value(err.problem(None)).unwrap();
        assert_eq!(body["detail"], "field `x` is wrong");
        assert_eq!(body["field"], "x");
    }

    #[test]
    fn a_server_error_shows_only_its_code_and_when_to_retry() {
        let err = AppError::from(Probe::Down(std::io::Error::other("connection refused")));
        let AppError::Server { cause, .. } = &err else { panic!("not a server error: {err:?}") };
        assert_eq!(cause, "pool exhausted at 10.0.0.7: connection refused");
        let res = err.error_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("3"));
        assert!(res.headers().get("x-probe").is_none());
        let body = serde_json::to_string(&err.problem(None)).unwrap();
        assert!(!body.contains("10.0.0.7") && !body.contains("refused") && !body.contains("field"), "{body}");
        assert!(body.contains("ledger_unavailable"));
    }
}
