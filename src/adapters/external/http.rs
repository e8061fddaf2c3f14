//! The HTTP side of an adapter: one reqwest client per adapter (rustls, keep-alive connections
//! reused across calls), and how one attempt's answer is classified.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// How one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptError {
    /// No answer within the attempt's time.
    Timeout,
    /// The connection could not be opened, or broke (reset, closed early).
    Connection,
    /// A 5xx, or a 429 from the provider's own rate limit.
    Status(u16),
    /// A 2xx whose body is not the JSON expected.
    Malformed(String),
    /// A 4xx: the provider refused the request on its merits.
    Refused(String),
}

impl AttemptError {
    /// Whether the provider is at fault (counts against the circuit breaker).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }

    /// Whether another attempt may get another answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout | Self::Connection | Self::Status(_))
    }

    /// A short, bounded description.
    pub fn reason(&self) -> String {
        match self {
            Self::Timeout => "timeout".into(),
            Self::Connection => "connection failed".into(),
            Self::Status(s) => format!("status {s}"),
            Self::Malformed(_) => "malformed answer".into(),
            Self::Refused(r) => r.clone(),
        }
    }
}

/// One attempt's result.
pub type Attempt<T> = Result<T, AttemptError>;

/// The client of one adapter: `connect_timeout` for opening connections, keep-alive connections
/// kept per host up to `max_idle`.
pub fn build_client(connect_timeout: Duration, max_idle: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(max_idle)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("beryl-core-api/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Send `request` and decode a 2xx JSON body as `T`; anything else becomes an [`AttemptError`].
/// The attempt's time limit is the caller's (the guard bounds every attempt).
pub async fn send_json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Attempt<T> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| AttemptError::Malformed(truncate(&e.to_string())));
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(AttemptError::Status(status.as_u16()));
    }
    Err(AttemptError::Refused(refusal(status.as_u16(), &body)))
}

fn transport(error: reqwest::Error) -> AttemptError {
    if error.is_timeout() {
        AttemptError::Timeout
    } else {
        AttemptError::Connection
    }
}

/// The provider's own code or message when its error body says one, else the status.
fn refusal(status: u16, body: &[u8]) -> String {
    let said = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| {
        ["code", "error_code", "error", "message"].iter().find_map(|k| v.get(k).and_then(|s| s.as_str()).map(truncate))
    });
    match said {
        Some(s) => format!("status {status}: {s}"),
        None => format!("status {status}"),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(120).collect()
}
