//! The ESG domain's protocol: one message per intent, answered with the store's types or an
//! [`EsgFailure`].

use actix::Message;

use crate::{
    actors::runtime::AskError,
    adapters::{
        esg::{Activity, Credit, Entry, EsgStoreError, Noted, Recorded, Signal, SubjectState},
        external::AdapterError,
        privacy::{VaultError, VaultFailure},
    },
    domain::{esg::EsgError, idempotency::IdempotencyError, privacy::BlindIndex},
    error::code::Coded,
};

/// Why an ESG call got no answer it could use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EsgFailure {
    /// A rule refused it; nothing was recorded.
    #[error(transparent)]
    Rule(#[from] EsgError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] EsgStoreError),
    /// The emissions adapter gave no answer, and no shipped factor could stand in.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// An actor did not answer.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The privacy vault failed.
    #[error(transparent)]
    Vault(VaultFailure),
    /// The idempotency key names another report.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
}

impl From<VaultError> for EsgFailure {
    fn from(e: VaultError) -> Self {
        Self::Vault(e.into())
    }
}

impl EsgFailure {
    fn inner(&self) -> Option<&dyn Coded> {
        match self {
            Self::Rule(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Adapter(e) => Some(e),
            Self::Ask(e) => Some(e),
            Self::Idempotency(e) => Some(e),
            Self::Vault(e) => Some(e),
        }
    }
}

crate::error::code::coded_by_inner!(EsgFailure);

/// What an ESG message answers.
pub type Answer<T> = Result<T, EsgFailure>;

/// Record a priced activity for a subject, recompute their score and publish what follows.
#[derive(Debug, Clone)]
pub struct Record(pub Entry);

impl Message for Record {
    type Result = Answer<Recorded>;
}

/// Record a signal for a subject (they took part in the community, or one of their wallets
/// changed), recompute their score and publish it.
#[derive(Debug, Clone)]
pub struct Note(pub Credit, pub Signal);

impl Message for Note {
    type Result = Answer<Noted>;
}

/// The subject's totals and latest score, and their monthly aggregates from `since` on.
#[derive(Debug, Clone)]
pub struct GetSubject {
    /// The subject.
    pub subject: String,
    /// Their blind index.
    pub index: BlindIndex,
    /// The first month of the aggregates.
    pub since: chrono::NaiveDate,
}

/// A subject as read: totals and score (none before the first activity), and months.
pub type SubjectRead = (Option<SubjectState>, Vec<crate::adapters::esg::Month>);

impl Message for GetSubject {
    type Result = Answer<SubjectRead>;
}

/// Drop what the subject's actor keeps (after an erasure, or a recording).
#[derive(Debug, Clone)]
pub struct ForgetSubject {
    /// The subject.
    pub subject: String,
}

impl Message for ForgetSubject {
    type Result = Result<(), std::convert::Infallible>;
}

/// A page of the subject's activities, latest recorded first.
#[derive(Debug, Clone)]
pub struct ListActivities {
    /// Their blind index.
    pub index: BlindIndex,
    /// The last activity of the previous page: (recorded at, id).
    pub before: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
    /// At most this many.
    pub limit: usize,
}

impl Message for ListActivities {
    type Result = Answer<Vec<Activity>>;
}
