//! Fintech: wallets holding integer minor units of one ISO 4217 currency, and the movements
//! between them. Every movement is double entry: a debit and a credit of the same amount, where
//! money entering or leaving the ledger is posted against the `external` account of its currency.

mod book;
mod currency;
mod ledger;
mod wallet;

pub use book::{Book, Change};
pub use currency::Currency;
pub use ledger::{LedgerCommand, LedgerOp, LedgerOutcome, Page, Receipt, Totals, Transaction, TransactionKind};
pub use wallet::{
    check_reference, status_entry_kind, Amount, Movement, MovementKind, Wallet, WalletId, WalletStatus, MAX_AMOUNT,
    TEXT_MAX,
};

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
}

impl FintechError {
    /// Short snake_case name of the rule broken (the API's error code for it).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCurrency(_) => "unknown_currency",
            Self::InvalidAmount => "invalid_amount",
            Self::AmountTooLarge => "amount_too_large",
            Self::SameWallet => "same_wallet",
            Self::InvalidWalletId(_) => "invalid_wallet_id",
            Self::WalletNotFound(_) => "wallet_not_found",
            Self::InsufficientFunds(_) => "insufficient_funds",
            Self::WalletFrozen(_) => "wallet_frozen",
            Self::WalletClosed(_) => "wallet_closed",
            Self::CurrencyMismatch(..) => "currency_mismatch",
            Self::BalanceNotZero(_) => "balance_not_zero",
            Self::InvalidTransition(..) => "invalid_transition",
            Self::InvalidReference | Self::InvalidOwner => "invalid_reference",
        }
    }

    /// The request field the refusal is about, when one field is to blame.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownCurrency(_) | Self::CurrencyMismatch(..) => Some("currency"),
            Self::InvalidAmount | Self::AmountTooLarge => Some("amount"),
            Self::SameWallet => Some("to"),
            Self::InvalidReference => Some("reference"),
            Self::InvalidOwner => Some("owner"),
            _ => None,
        }
    }
}
