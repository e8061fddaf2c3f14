//! The fintech protocol: commands and queries of the fintech domain actor, the wallet actors it
//! spawns, and the ledger writer.

use std::time::Duration;

use actix::Message;

use crate::{
    domain::fintech::{LedgerOp, LedgerOutcome, Page, Wallet, WalletId},
    error::code::{Coded, ErrorCode},
};

/// Why a fintech message got no business answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerFailure {
    /// The ledger store failed or is unreachable; the command may or may not have been applied
    /// (retry with the same idempotency key to find out).
    #[error("the ledger store is unavailable")]
    Store,
    /// The wallet's actor could not be reached.
    #[error("the wallet's actor is unavailable")]
    Unavailable,
    /// The ledger writer's queue is full (the database is slow or unreachable): the command was
    /// refused before it was queued, so nothing was applied.
    #[error("too many commands are waiting for the ledger")]
    Overloaded,
}

impl Coded for LedgerFailure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Store => ErrorCode::LedgerUnavailable,
            Self::Unavailable => ErrorCode::ActorUnavailable,
            Self::Overloaded => ErrorCode::Overloaded,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

/// Commit one ledger operation (ledger writer).
#[derive(Debug)]
pub struct Commit(pub LedgerOp);

impl Message for Commit {
    type Result = Result<LedgerOutcome, LedgerFailure>;
}

/// Apply an operation through the actor of the wallet it debits (or changes).
#[derive(Debug)]
pub struct Execute(pub LedgerOp);

impl Message for Execute {
    type Result = Result<LedgerOutcome, LedgerFailure>;
}

/// Read a wallet; `Ok(None)` when it does not exist.
#[derive(Debug, Clone, Copy)]
pub struct GetWallet {
    /// The wallet.
    pub id: WalletId,
    /// Confirm with the store that the state is current (another replica may have written);
    /// without it a live actor answers from its state alone.
    pub fresh: bool,
}

impl Message for GetWallet {
    type Result = Result<Option<Wallet>, LedgerFailure>;
}

/// A page of a wallet's money movements, newest first, before sequence `before`.
#[derive(Debug, Clone, Copy)]
pub struct GetMovements {
    /// Wallet.
    pub wallet: WalletId,
    /// Exclusive upper bound of the sequence numbers returned.
    pub before: Option<i64>,
    /// Page size.
    pub limit: usize,
}

impl Message for GetMovements {
    type Result = Result<Page, LedgerFailure>;
}

/// A wallet changed through another wallet's command (the credited side of a transfer): its live
/// actor, if any, takes the new state.
#[derive(Debug, Clone)]
pub struct Refresh(pub Wallet);

impl Message for Refresh {
    type Result = Result<(), std::convert::Infallible>;
}

/// The personal data of these wallets' owner was erased: their live actors, if any, drop the
/// state they hold (with the owner in the clear) and load it again, erased, when next asked.
#[derive(Debug, Clone)]
pub struct ForgetOwners(pub Vec<WalletId>);

impl Message for ForgetOwners {
    type Result = Result<(), std::convert::Infallible>;
}

/// Drop the state of one live wallet actor (sent by the domain actor for [`ForgetOwners`]).
#[derive(Debug, Clone, Copy)]
pub struct ForgetState;

impl Message for ForgetState {
    type Result = Result<(), std::convert::Infallible>;
}
