//! Domain events: the envelope every domain publishes its events in (one event per change,
//! keyed by the aggregate it belongs to), and why an inbound message cannot be applied.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Version of the published event schema; consumers refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// One published event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// Unique id (UUID v7): consumers deduplicate on it.
    pub id: Uuid,
    /// `<domain>.<aggregate>.<what happened>`, e.g. `fintech.wallet.transfer_out`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// Domain (the topic is `beryl.<domain>.events` by default).
    pub domain: String,
    /// Aggregate id: the message key, so one aggregate's events share a partition.
    pub aggregate_id: String,
    /// The aggregate's version this event produced (1, 2, ...): consecutive per aggregate.
    pub seq: i64,
    /// Request that caused it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Commit time.
    pub occurred_at: DateTime<Utc>,
    /// Event body.
    pub data: Value,
}

/// Why an inbound message cannot be applied. Every variant is permanent: the message goes to the
/// dead-letter topic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InboundError {
    /// Not JSON, or not the expected shape.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A schema version this service does not know.
    #[error("unsupported schema version {got} (this service reads version {reads})")]
    SchemaVersion {
        /// The version the message says.
        got: u64,
        /// The version this service reads.
        reads: u64,
    },
    /// An event type no domain consumes.
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    /// Its id was applied before, with different content: the same id names another change.
    #[error("event `{0}` was applied before with different content")]
    ConflictingDuplicate(String),
    /// A rule of the domain that consumes it refused it.
    #[error("{detail}")]
    Refused {
        /// The rule broken (its error code).
        reason: &'static str,
        /// What the rule says.
        detail: String,
    },
}

impl InboundError {
    /// Short reason for metrics and the dead-letter header.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::SchemaVersion { .. } => "schema_version",
            Self::UnknownType(_) => "unknown_type",
            Self::ConflictingDuplicate(_) => "conflicting_duplicate",
            Self::Refused { reason, .. } => reason,
        }
    }
}
