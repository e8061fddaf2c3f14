//! Why a payments call did not do what was asked.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::{
    actors::fintech::CallError,
    adapters::external::AdapterError,
    domain::{
        fintech::FintechError,
        idempotency::IdempotencyError,
        payments::{EventError, SignatureError},
    },
    error::code::{Coded, ErrorCode},
};

/// Every way a payments call can fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PaymentsError {
    /// A webhook delivery is not accepted as the provider's.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A verified webhook's event cannot be applied.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A ledger rule refused the change.
    #[error(transparent)]
    Fintech(FintechError),
    /// The idempotency key was used for another request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The provider could not be asked or did not answer: no fallback.
    #[error(transparent)]
    Provider(AdapterError),
    /// The provider refused the request on its merits.
    #[error("the payment provider refused the request ({0})")]
    Refused(String),
    /// The ledger could not be reached.
    #[error(transparent)]
    Ledger(#[from] CallError),
    /// The payments store could not be reached.
    #[error("{0}")]
    Store(String),
    /// Something that should not happen did.
    #[error("{0}")]
    Unexpected(String),
}

impl From<AdapterError> for PaymentsError {
    fn from(e: AdapterError) -> Self {
        match e {
            AdapterError::Refused { reason, .. } => Self::Refused(reason),
            other => Self::Provider(other),
        }
    }
}

impl PaymentsError {
    fn inner(&self) -> Option<&dyn Coded> {
        match self {
            Self::Signature(e) => Some(e),
            Self::Event(e) => Some(e),
            Self::Fintech(e) => Some(e),
            Self::Idempotency(e) => Some(e),
            Self::Provider(e) => Some(e),
            Self::Ledger(e) => Some(e),
            Self::Refused(_) | Self::Store(_) | Self::Unexpected(_) => None,
        }
    }
}

impl Coded for PaymentsError {
    fn code(&self) -> ErrorCode {
        match (self.inner(), self) {
            (Some(e), _) => e.code(),
            (None, Self::Refused(_)) => ErrorCode::PaymentRefused,
            (None, Self::Store(_)) => ErrorCode::LedgerUnavailable,
            (None, _) => ErrorCode::Internal,
        }
    }

    fn detail(&self) -> String {
        self.inner().map_or_else(|| self.to_string(), |e| e.detail())
    }

    fn extensions(&self) -> Map<String, Value> {
        match (self.inner(), self) {
            (Some(e), _) => e.extensions(),
            (None, Self::Refused(reason)) => Map::from_iter([("reason".to_string(), Value::from(reason.as_str()))]),
            _ => Map::new(),
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        self.inner().map(|e| e.headers()).unwrap_or_default()
    }

    fn retry_after(&self) -> Option<Duration> {
        match (self.inner(), self) {
            (Some(e), _) => e.retry_after(),
            (None, Self::Store(_)) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}
