//! Personal data across every domain: the holders of personal data register here (as domains
//! register their event routes), and the privacy client asks all of them to export or erase
//! what they hold about a subject.
//!
//! A holder removes what can be removed (idempotency receipts, cached state); what must be kept
//! (the ledger) stays, sealed under the subject's key, which the client deletes: every copy of it
//! becomes unreadable at once (crypto-shredding).

pub mod retention;

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use serde_json::{json, Map, Value};

use crate::{
    adapters::privacy::{Vault, VaultError},
    domain::privacy::{Category, ErasureRecord, Requester, Subject},
    error::code::{Coded, ErrorCode},
    telemetry::{self, Metrics},
};

/// Why a holder could not export or erase.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{holder} could not answer: {detail}")]
pub struct HolderError {
    /// The holder.
    pub holder: &'static str,
    /// What failed (logged; never shown to clients).
    pub detail: String,
}

impl Coded for HolderError {
    fn code(&self) -> ErrorCode {
        ErrorCode::PrivacyUnavailable
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(1))
    }
}

/// Why a privacy request failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyFailure {
    /// The vault failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A holder failed.
    #[error(transparent)]
    Holder(#[from] HolderError),
}

impl Coded for PrivacyFailure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Vault(e) => e.code(),
            Self::Holder(e) => e.code(),
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Vault(e) => e.retry_after(),
            Self::Holder(e) => e.retry_after(),
        }
    }
}

/// Something that holds personal data about subjects: one per domain.
pub trait Holder: Send + Sync + 'static {
    /// Its name: the key of its part of an export, the prefix of its counts in an erasure record.
    fn name(&self) -> &'static str;

    /// Everything it holds about `subject`, readable, as JSON.
    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>>;

    /// Remove what can be removed about `subject`, once the subject's key is deleted; returns
    /// how many of each kind of thing it removed (or made unreadable).
    fn erase(&self, subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>>;

    /// Remove at most `batch` items of `category` kept since before `cutoff` (nothing, for a
    /// category it does not hold); returns how many.
    fn expire(
        &self,
        category: Category,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> LocalBoxFuture<'static, Result<u64, HolderError>> {
        let _ = (category, cutoff, batch);
        Box::pin(async { Ok(0) })
    }
}

/// The registered holders.
#[derive(Clone, Default)]
pub struct Holders(Vec<Arc<dyn Holder>>);

impl Holders {
    /// Register `holder`.
    pub fn register(&mut self, holder: Arc<dyn Holder>) {
        self.0.push(holder);
    }

    /// Have every holder remove at most `batch` items of `category` kept since before `cutoff`.
    pub async fn expire(&self, category: Category, cutoff: DateTime<Utc>, batch: usize) -> Result<u64, HolderError> {
        let mut removed = 0;
        for holder in &self.0 {
            removed += holder.expire(category, cutoff, batch).await?;
        }
        Ok(removed)
    }

    /// Their names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|h| h.name()).collect()
    }
}

/// The one way to export or erase a subject's personal data; cheap to clone.
#[derive(Clone)]
pub struct PrivacyClient {
    vault: Vault,
    holders: Holders,
    metrics: Metrics,
}

impl PrivacyClient {
    /// A client over `vault` asking `holders`.
    pub fn new(vault: Vault, holders: Holders, metrics: Metrics) -> Self {
        // The series exist from the start (at zero), for the dashboard and the alerts.
        metrics.with(|| {
            metrics::counter!(telemetry::PRIVACY_ERASURES_TOTAL).increment(0);
            metrics::counter!(telemetry::PRIVACY_ADMIN_READS_TOTAL).increment(0);
        });
        Self { vault, holders, metrics }
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The registered holders.
    pub fn holders(&self) -> &Holders {
        &self.holders
    }

    /// The subject whose id is `id`.
    pub fn subject(&self, id: &str) -> Subject {
        Subject { id: id.to_owned(), index: self.vault.subject_index(id) }
    }

    /// Erase `subject`: delete their key, then have every holder remove what it can; returns the
    /// signed completion record, which is also kept.
    pub async fn erase(&self, subject: &str, requested_by: Requester) -> Result<ErasureRecord, PrivacyFailure> {
        let subject = self.subject(subject);
        let key_id = self.vault.erase(&subject.index).await?;
        let mut removed = BTreeMap::new();
        for holder in &self.holders.0 {
            for (what, n) in holder.erase(subject.clone()).await? {
                removed.insert(format!("{}.{what}", holder.name()), n);
            }
        }
        let record =
            ErasureRecord::sign(&subject.index, requested_by, key_id, removed, Utc::now(), self.vault.master_keys());
        self.vault.keep_erasure(&subject.index, &record).await?;
        self.metrics.with(|| metrics::counter!(telemetry::PRIVACY_ERASURES_TOTAL).increment(1));
        Ok(record)
    }

    /// Everything held about `subject`, by holder, with the records of their erasures.
    pub async fn export(&self, subject: &str) -> Result<Value, PrivacyFailure> {
        let subject = self.subject(subject);
        let mut domains = Map::new();
        for holder in &self.holders.0 {
            domains.insert(holder.name().to_owned(), holder.export(subject.clone()).await?);
        }
        let erasures = self.vault.erasures(&subject.index).await?;
        domains.insert("privacy".into(), json!({ "erasures": erasures }));
        Ok(json!({
            "subject": subject.id,
            "generated_at": Utc::now(),
            "domains": domains,
        }))
    }
}
