//! The ledger's storage contract, with two implementations: PostgreSQL (production; many
//! commands committed in one transaction, their statements pipelined) and memory (embedded
//! mode). Both give the same answers to the same commands; `tests/api/ledger_store.rs` runs one
//! contract suite against each.
//!
//! Every command is checked again inside the store against the stored state (the actors'
//! checks are an optimisation, never the guarantee), applied all-or-nothing, and recorded with
//! its idempotency key and response in the same transaction. A command may instead be named by
//! its transaction id ([`LedgerOp::once`]): the ledger transaction it creates is then the record
//! that it was applied, and the same id again is a duplicate.

pub mod book;
pub mod memory;
pub mod postgres;

pub use memory::MemLedger;
pub use postgres::PgLedger;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::{
    events::{DomainEvent, WalletEvent},
    fintech::{Amount, FintechError, Movement, Wallet, WalletId, WalletStatus},
};

/// A change to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Create this wallet.
    Open(Box<Wallet>),
    /// Money in from outside.
    Deposit {
        /// Wallet credited.
        wallet: WalletId,
        /// Amount.
        amount: Amount,
        /// External reference (payment provider id).
        reference: String,
    },
    /// Money out to outside.
    Withdraw {
        /// Wallet debited.
        wallet: WalletId,
        /// Amount.
        amount: Amount,
        /// External reference.
        reference: String,
    },
    /// Money between two wallets of the same currency.
    Transfer {
        /// Wallet debited.
        from: WalletId,
        /// Wallet credited.
        to: WalletId,
        /// Amount.
        amount: Amount,
    },
    /// Freeze, unfreeze or close.
    SetStatus {
        /// Wallet.
        wallet: WalletId,
        /// Target status.
        status: WalletStatus,
    },
}

impl Command {
    /// Wallets the command changes, source first.
    pub fn wallets(&self) -> Vec<WalletId> {
        match self {
            Self::Open(w) => vec![w.id],
            Self::Deposit { wallet, .. } | Self::Withdraw { wallet, .. } | Self::SetStatus { wallet, .. } => {
                vec![*wallet]
            }
            Self::Transfer { from, to, .. } => vec![*from, *to],
        }
    }

    /// The wallet it is sent through: the one it debits or changes (the source of a transfer).
    pub fn owner(&self) -> WalletId {
        match self {
            Self::Open(w) => w.id,
            Self::Deposit { wallet, .. } | Self::Withdraw { wallet, .. } | Self::SetStatus { wallet, .. } => *wallet,
            Self::Transfer { from, .. } => *from,
        }
    }

    /// Whether applying it records a double-entry ledger transaction (money moves).
    pub fn creates_transaction(&self) -> bool {
        matches!(self, Self::Deposit { .. } | Self::Withdraw { .. } | Self::Transfer { .. })
    }

    /// Operation name for metrics and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open(_) => "open_wallet",
            Self::Deposit { .. } => "deposit",
            Self::Withdraw { .. } => "withdraw",
            Self::Transfer { .. } => "transfer",
            Self::SetStatus { .. } => "set_status",
        }
    }
}

/// The idempotency key a command is recorded under.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyClaim {
    /// Whose key (the subject): keys of different callers never collide.
    pub scope: String,
    /// The client's `Idempotency-Key`.
    pub key: String,
    /// Hash of method, route and body.
    pub request_hash: String,
    /// The body, to name differing fields when the key is reused.
    pub request_body: Value,
    /// When the key may be forgotten.
    pub expires_at: DateTime<Utc>,
}

/// A command with its context.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerOp {
    /// What to change.
    pub command: Command,
    /// Id of the ledger transaction it creates.
    pub transaction_id: Uuid,
    /// Idempotency key, if any.
    pub idempotency: Option<IdempotencyClaim>,
    /// The transaction id names the command for good (it is derived from the id of the event
    /// that asked for it): if a ledger transaction with this id exists, the command is a
    /// duplicate and changes nothing. Only for commands that create a ledger transaction
    /// (deposit, withdrawal, transfer); a refused command leaves no record and is checked again.
    pub once: bool,
    /// Correlation id.
    pub request_id: Option<String>,
    /// Commit time recorded.
    pub at: DateTime<Utc>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Committed: the wallets after the change and the journal entries it appended.
    Applied {
        /// Changed wallets, source first.
        wallets: Vec<Wallet>,
        /// Entries appended.
        movements: Vec<Movement>,
    },
    /// Refused by a rule checked against the stored state; nothing changed.
    Refused(FintechError),
    /// Another request holds the idempotency key, or (for a command applied [`LedgerOp::once`])
    /// its transaction exists; nothing changed.
    DuplicateKey,
}

/// A response kept for an idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Value,
}

/// A kept response with the request it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptResponse {
    /// Hash of the original request.
    pub request_hash: String,
    /// Body of the original request.
    pub request_body: Value,
    /// The response.
    pub response: StoredResponse,
}

/// Renders the response to keep for an operation with an idempotency key.
pub type Render = fn(&LedgerOp, &Outcome) -> StoredResponse;

/// A page of journal entries, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Entries.
    pub items: Vec<Movement>,
    /// Sequence number to pass as `before` for the next page.
    pub next_before: Option<i64>,
}

/// The conservation check: the sum of all balances equals deposits minus withdrawals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Sum of every wallet's balance.
    pub balances: i128,
    /// Money that entered minus money that left.
    pub net_external: i128,
}

/// The events a batch of commands produced, in commit order: what the outbox stores with it.
fn batch_events<'a>(ops: &'a [LedgerOp], outcomes: &'a [Outcome]) -> impl Iterator<Item = WalletEvent<'a>> + 'a {
    ops.iter().zip(outcomes).flat_map(|(op, outcome)| {
        let (wallets, movements): (&[Wallet], &[Movement]) = match outcome {
            Outcome::Applied { wallets, movements } => (wallets, movements),
            _ => (&[], &[]),
        };
        WalletEvent::all(wallets, movements, op.request_id.as_deref())
    })
}

/// A batch's events, each under a new id.
pub fn events_of(ops: &[LedgerOp], outcomes: &[Outcome]) -> Vec<DomainEvent> {
    batch_events(ops, outcomes).map(|e| e.to_event(Uuid::now_v7())).collect()
}

/// A batch's events as the outbox stores them (a JSON array of [`DomainEvent`]s, read back by the
/// relay), written straight from the outcomes, and how many there are.
pub fn encode_events(ops: &[LedgerOp], outcomes: &[Outcome]) -> Result<(Vec<u8>, usize), serde_json::Error> {
    use serde::ser::{SerializeSeq, Serializer};
    // About 450 bytes per event: room for the whole batch at once.
    let mut bytes = Vec::with_capacity(512 * ops.len());
    let mut count = 0;
    let mut ser = serde_json::Serializer::new(&mut bytes);
    let mut seq = ser.serialize_seq(None)?;
    for event in batch_events(ops, outcomes) {
        seq.serialize_element(&event.with_id(Uuid::now_v7()))?;
        count += 1;
    }
    seq.end()?;
    Ok((bytes, count))
}

/// One committed batch's events, waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxBatch {
    /// Outbox position: increasing, and in commit order for every aggregate.
    pub id: i64,
    /// When the batch committed.
    pub created_at: DateTime<Utc>,
    /// Its events, in commit order.
    pub events: Vec<DomainEvent>,
}

/// How far the outbox is behind.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OutboxLag {
    /// Events not yet published.
    pub events: u64,
    /// Commit time of the oldest one.
    pub oldest: Option<DateTime<Utc>>,
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
    /// gets its own outcome. Kept responses are rendered with `render`.
    pub async fn commit(&self, ops: &[LedgerOp], render: Render) -> Vec<Result<Outcome, StoreError>> {
        match self {
            Self::Postgres(s) => s.commit(ops, render).await,
            Self::Memory(s) => s.commit(ops, render).into_iter().map(Ok).collect(),
        }
    }

    /// The outbox as the relay reads it (its own connection on PostgreSQL).
    pub fn outbox(&self) -> crate::adapters::outbox::Outbox {
        match self {
            Self::Postgres(s) => crate::adapters::outbox::Outbox::Postgres {
                config: std::sync::Arc::new(s.config().clone()),
                client: None,
                leader: false,
            },
            Self::Memory(s) => crate::adapters::outbox::Outbox::Memory(s.clone()),
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

    /// The response kept for an idempotency key, if any.
    pub async fn kept_response(&self, scope: &str, key: &str) -> Result<Option<KeptResponse>, StoreError> {
        match self {
            Self::Postgres(s) => s.kept_response(scope, key).await,
            Self::Memory(s) => Ok(s.kept_response(scope, key)),
        }
    }

    /// Forget idempotency keys expired before `now`; returns how many.
    pub async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        match self {
            Self::Postgres(s) => s.purge_expired_keys(now).await,
            Self::Memory(s) => Ok(s.purge_expired_keys(now)),
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
