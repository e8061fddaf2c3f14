//! Fintech: wallets holding integer minor units of one ISO 4217 currency, and the movements
//! between them. Every movement is double entry: a debit and a credit of the same amount, where
//! money entering or leaving the ledger is posted against the `external` account of its currency.

mod book;
mod currency;
mod events;
mod hold;
mod ledger;
mod wallet;

pub use book::{Book, Change};
pub use currency::Currency;
pub use events::{PaymentSettled, SealedOwners, WalletEvent, OWNER_FIELD, PAYMENT_SCHEMA_VERSION, PAYMENT_SETTLED};
pub use hold::{check_hold_kind, Hold, HoldStatus};
pub use ledger::{
    LedgerCommand, LedgerOp, LedgerOutcome, Page, Receipt, Totals, Transaction, TransactionKind, TransactionRecord,
};
pub use wallet::{
    check_reference, status_entry_kind, Amount, Movement, MovementKind, Wallet, WalletId, WalletStatus, MAX_AMOUNT,
    TEXT_MAX,
};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::code::{Coded, ErrorCode};

/// Largest page of a wallet's movements a client may ask for.
pub const PAGE_MAX: usize = 200;

/// Every way a fintech command can be refused. Serializable: a refusal is kept under the
/// command's idempotency key and replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", content = "args", rename_all = "snake_case")]
pub enum FintechError {
    /// Not an ISO 4217 code.
    #[error("`{0}` is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    /// Zero or negative amount.
    #[error("amounts are positive integers of minor units")]
    InvalidAmount,
    /// Above the largest accepted amount, or a balance would overflow.
    #[error("the amount is above the largest accepted ({MAX_AMOUNT} minor units)")]
    AmountTooLarge,
    /// Source and destination are the same wallet.
    #[error("source and destination are the same wallet")]
    SameWallet,
    /// The id is not a UUID.
    #[error("`{0}` is not a wallet id")]
    InvalidWalletId(String),
    /// No such wallet.
    #[error("wallet {0} does not exist")]
    WalletNotFound(WalletId),
    /// The debit would make the balance negative.
    #[error("wallet {0} has insufficient funds")]
    InsufficientFunds(WalletId),
    /// The wallet is frozen.
    #[error("wallet {0} is frozen")]
    WalletFrozen(WalletId),
    /// The wallet is closed.
    #[error("wallet {0} is closed")]
    WalletClosed(WalletId),
    /// The wallets hold different currencies.
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    /// A wallet is closed only once empty.
    #[error("wallet {0} still holds money")]
    BalanceNotZero(WalletId),
    /// The status change makes no sense from the current status.
    #[error("wallet {0} cannot go from {1} to {2}")]
    InvalidTransition(WalletId, WalletStatus, WalletStatus),
    /// The external reference is empty or too long.
    #[error("the external reference must be 1 to 128 printable characters")]
    InvalidReference,
    /// The owner is empty or too long.
    #[error("the owner must be 1 to 128 printable characters")]
    InvalidOwner,
    /// No such hold on the wallet named.
    #[error("hold {0} does not exist on this wallet")]
    HoldNotFound(Uuid),
    /// The hold is not pending any more; its state says why.
    #[error("hold {0} is {1}")]
    HoldNotPending(Uuid, HoldStatus),
    /// Another hold was placed under the same id.
    #[error("hold {0} was placed for another wallet, amount or kind")]
    HoldConflict(Uuid),
    /// Posted for more than it holds.
    #[error("a hold is posted for at most the amount it holds")]
    HoldAmountExceeded,
    /// The kind is not a short lower-case name.
    #[error("a hold's kind is 1 to 32 lower-case letters, digits, `_` or `.`")]
    InvalidHoldKind,
    /// A wallet closes only once no hold is pending on it.
    #[error("wallet {0} has pending holds")]
    HoldsPending(WalletId),
}

impl FintechError {
    /// The request field the refusal is about, when one field is to blame.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownCurrency(_) | Self::CurrencyMismatch(..) => Some("currency"),
            Self::InvalidAmount | Self::AmountTooLarge => Some("amount"),
            Self::SameWallet => Some("to"),
            Self::InvalidReference => Some("reference"),
            Self::InvalidOwner => Some("owner"),
            Self::HoldAmountExceeded => Some("amount"),
            Self::InvalidHoldKind => Some("kind"),
            _ => None,
        }
    }
}

impl Coded for FintechError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownCurrency(_) => ErrorCode::UnknownCurrency,
            Self::InvalidAmount => ErrorCode::InvalidAmount,
            Self::AmountTooLarge => ErrorCode::AmountTooLarge,
            Self::SameWallet => ErrorCode::SameWallet,
            Self::InvalidWalletId(_) => ErrorCode::InvalidWalletId,
            Self::WalletNotFound(_) => ErrorCode::WalletNotFound,
            Self::InsufficientFunds(_) => ErrorCode::InsufficientFunds,
            Self::WalletFrozen(_) => ErrorCode::WalletFrozen,
            Self::WalletClosed(_) => ErrorCode::WalletClosed,
            Self::CurrencyMismatch(..) => ErrorCode::CurrencyMismatch,
            Self::BalanceNotZero(_) => ErrorCode::BalanceNotZero,
            Self::InvalidTransition(..) => ErrorCode::InvalidTransition,
            Self::InvalidReference | Self::InvalidOwner => ErrorCode::InvalidReference,
            Self::HoldNotFound(_) => ErrorCode::HoldNotFound,
            Self::HoldNotPending(_, HoldStatus::Posted) => ErrorCode::HoldPosted,
            Self::HoldNotPending(_, HoldStatus::Voided | HoldStatus::Pending) => ErrorCode::HoldVoided,
            Self::HoldNotPending(_, HoldStatus::Expired) => ErrorCode::HoldExpired,
            Self::HoldConflict(_) => ErrorCode::HoldConflict,
            Self::HoldAmountExceeded => ErrorCode::HoldAmountExceeded,
            Self::InvalidHoldKind => ErrorCode::InvalidHoldKind,
            Self::HoldsPending(_) => ErrorCode::HoldsPending,
        }
    }

    /// The field at fault, when one is.
    fn extensions(&self) -> Map<String, Value> {
        self.field().map(|field| Map::from_iter([("field".to_string(), Value::from(field))])).unwrap_or_default()
    }
}
