//! The ledger's storage contract, with two implementations: PostgreSQL (production; many
//! commands committed in one transaction, their statements pipelined) and memory (embedded
//! mode). Both give the same answers to the same commands; `tests/api/ledger_store.rs` runs one
//! contract suite against each.
//!
//! The stores persist what the domain decides: each batch is applied to the stored state by
//! [`Book`](crate::domain::fintech::Book), all-or-nothing per command, and each command's
//! receipt is kept with its idempotency key in the same transaction. A command may instead be
//! named by its transaction id ([`LedgerOp::once`]): the ledger transaction it creates is then
//! the record that it was applied, and the same id again is a duplicate.

pub mod memory;
pub mod postgres;
pub mod sealing;

pub use memory::MemLedger;
pub use postgres::PgLedger;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
    events::DomainEvent,
    fintech::{Hold, LedgerOp, LedgerOutcome, Movement, Page, Receipt, Totals, Wallet, WalletId},
    fintech::{SealedOwners, WalletEvent, OWNER_FIELD},
    idempotency::{self, Kept},
    privacy::{Place, Sealed, Subject, SubjectKey},
};

/// The receipt an op's idempotency key keeps, encoded.
fn receipt_of(op: &LedgerOp, outcome: &LedgerOutcome) -> serde_json::Value {
    Receipt::of(op, outcome).map(|r| idempotency::keep(&r)).unwrap_or(serde_json::Value::Null)
}

/// The events a batch of commands produced, in commit order: what the outbox stores with it.
/// Lifecycle entries carry their wallet's owner as `owners` has it sealed.
fn batch_events<'a>(
    ops: &'a [LedgerOp],
    outcomes: &'a [LedgerOutcome],
    owners: &'a SealedOwners,
) -> impl Iterator<Item = WalletEvent<'a>> + 'a {
    ops.iter().zip(outcomes).flat_map(move |(op, outcome)| {
        let (wallets, movements): (&[Wallet], &[Movement]) = match outcome {
            LedgerOutcome::Applied { wallets, movements, .. } => (wallets, movements),
            _ => (&[], &[]),
        };
        WalletEvent::all(wallets, movements, op.request_id.as_deref(), owners)
    })
}

/// A batch's events, each under a new id.
pub fn events_of(ops: &[LedgerOp], outcomes: &[LedgerOutcome], owners: &SealedOwners) -> Vec<DomainEvent> {
    batch_events(ops, outcomes, owners).map(|e| e.to_event(Uuid::now_v7())).collect()
}

/// A batch's events as the outbox stores them, written straight from the outcomes, and how many
/// there are.
pub fn encode_events(
    ops: &[LedgerOp],
    outcomes: &[LedgerOutcome],
    owners: &SealedOwners,
) -> Result<(Vec<u8>, usize), serde_json::Error> {
    // About 450 bytes per event: room for the whole batch at once.
    crate::adapters::outbox::encode(
        batch_events(ops, outcomes, owners).map(|e| e.with_id(Uuid::now_v7())),
        512 * ops.len(),
    )
}

/// Add to `owners` the owner of each wallet whose lifecycle one of `movements` changed, sealed
/// for its events under the key `key_of` gives (none without a key or an owner: erased).
fn seal_owners<'k>(
    owners: &mut SealedOwners,
    wallets: &[Wallet],
    movements: &[Movement],
    key_of: impl Fn(&WalletId) -> Option<&'k SubjectKey>,
) -> Result<(), StoreError> {
    for m in movements.iter().filter(|m| m.kind.is_lifecycle()) {
        let Some(w) = wallets.iter().find(|w| w.id == m.wallet_id) else { continue };
        if let (Some(key), Some(owner)) = (key_of(&w.id), w.owner.value()) {
            let sealed = Sealed::seal(key, Place::new(OWNER_FIELD, &w.id.to_string()), owner)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            owners.insert(w.id, sealed.to_text());
        }
    }
    Ok(())
}

/// What [`LedgerStore::erase`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Idempotency keys forgotten.
    pub idempotency_keys: u64,
    /// Wallets no longer linked to the subject.
    pub wallets: u64,
}

/// Storage failures (never business refusals).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] crate::adapters::postgres::PostgresError),
    /// A stored row could not be read back.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store cannot be reached (no connection, or it is being re-established).
    #[error("the ledger cannot be reached: {0}")]
    Unreachable(String),
}

/// Either store, chosen at start-up.
#[derive(Clone)]
pub enum LedgerStore {
    /// PostgreSQL.
    Postgres(postgres::PgLedger),
    /// Process memory.
    Memory(memory::MemLedger),
}

impl LedgerStore {
    /// Apply `ops` in order, all in one transaction where the store has transactions; each op
    /// gets its own outcome, and its receipt is kept under its idempotency key.
    pub async fn commit(&self, ops: &[LedgerOp]) -> Vec<Result<LedgerOutcome, StoreError>> {
        match self {
            Self::Postgres(s) => s.commit(ops).await,
            Self::Memory(s) => match s.owner_keys(ops).await {
                Ok(keys) => s.commit(ops, &keys).into_iter().map(Ok).collect(),
                Err(e) => {
                    let reason = e.to_string();
                    ops.iter().map(|_| Err(StoreError::Unreachable(reason.clone()))).collect()
                }
            },
        }
    }

    /// A wallet as stored.
    pub async fn wallet(&self, id: WalletId) -> Result<Option<Wallet>, StoreError> {
        match self {
            Self::Postgres(s) => s.wallet(id).await,
            Self::Memory(s) => Ok(s.wallet(id)),
        }
    }

    /// A wallet's stored version, the cheap freshness check of cached state.
    pub async fn version(&self, id: WalletId) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Postgres(s) => s.version(id).await,
            Self::Memory(s) => Ok(s.wallet(id).map(|w| w.version)),
        }
    }

    /// Money movements of a wallet, newest first, strictly before sequence `before`.
    pub async fn movements(&self, id: WalletId, before: Option<i64>, limit: usize) -> Result<Page, StoreError> {
        match self {
            Self::Postgres(s) => s.movements(id, before, limit).await,
            Self::Memory(s) => Ok(s.movements(id, before, limit)),
        }
    }

    /// What an idempotency key keeps, if it is taken.
    pub async fn kept(&self, scope: &str, key: &str) -> Result<Option<Kept>, StoreError> {
        match self {
            Self::Postgres(s) => s.kept(scope, key).await,
            Self::Memory(s) => Ok(s.kept(scope, key)),
        }
    }

    /// Forget at most `limit` idempotency keys expired at `now`; returns how many.
    pub async fn purge_expired_keys(&self, now: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        match self {
            Self::Postgres(s) => s.purge_expired_keys(now, limit).await,
            Self::Memory(s) => Ok(s.purge_expired_keys(now, limit)),
        }
    }

    /// The wallets `subject` owns.
    pub async fn wallets_of(&self, subject: &Subject) -> Result<Vec<WalletId>, StoreError> {
        match self {
            Self::Postgres(s) => s.wallets_of(&subject.index).await,
            Self::Memory(s) => Ok(s.wallets_of(&subject.id)),
        }
    }

    /// Remove what can be removed about `subject` once their key is deleted: their idempotency
    /// keys (with the requests and receipts they keep), and the link from their wallets to them
    /// (the wallets stay, with balances and journal, their personal fields unreadable).
    pub async fn erase(&self, subject: &Subject) -> Result<Erased, StoreError> {
        match self {
            Self::Postgres(s) => s.erase(&subject.index).await,
            Self::Memory(s) => Ok(s.erase(&subject.id)),
        }
    }

    /// Forget at most `limit` idempotency keys created before `cutoff`; returns how many.
    pub async fn forget_keys_kept_since(&self, cutoff: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        match self {
            Self::Postgres(s) => s.forget_keys_kept_since(cutoff, limit).await,
            Self::Memory(s) => Ok(s.forget_keys_kept_since(cutoff, limit)),
        }
    }

    /// A hold as stored.
    pub async fn hold(&self, id: Uuid) -> Result<Option<Hold>, StoreError> {
        match self {
            Self::Postgres(s) => s.hold(id).await,
            Self::Memory(s) => Ok(s.hold(id)),
        }
    }

    /// The pending holds expired at `now` (the sweeper releases them), at most `limit`, oldest
    /// first.
    pub async fn expired_holds(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Hold>, StoreError> {
        match self {
            Self::Postgres(s) => s.expired_holds(now, limit).await,
            Self::Memory(s) => Ok(s.expired_holds(now, limit)),
        }
    }

    /// Conservation totals.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        match self {
            Self::Postgres(s) => s.totals().await,
            Self::Memory(s) => Ok(s.totals()),
        }
    }
}
