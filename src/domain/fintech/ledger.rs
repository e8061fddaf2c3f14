//! The ledger's vocabulary: the commands that change it, what a command decided, and the receipt
//! its caller gets (and that an idempotency key keeps). Storage adapters persist what
//! [`super::Book`] decided; transports parse commands and render receipts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{Amount, Currency, FintechError, Hold, Movement, Wallet, WalletId, WalletStatus};
use crate::domain::idempotency::Claim;

/// A change to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
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
        /// The currency the money arrived in, when the sender says (a payment provider does):
        /// it must be the wallet's.
        currency: Option<Currency>,
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
        /// The currency the caller expects both wallets to hold, when given.
        currency: Option<Currency>,
    },
    /// Freeze, unfreeze or close.
    SetStatus {
        /// Wallet.
        wallet: WalletId,
        /// Target status.
        status: WalletStatus,
    },
    /// Set money of a wallet aside (a pending hold); the same hold again changes nothing.
    PlaceHold {
        /// The hold's id, chosen by the caller.
        hold: Uuid,
        /// Wallet whose money is held.
        wallet: WalletId,
        /// Amount held.
        amount: Amount,
        /// What it is held for.
        kind: String,
        /// When it is released by itself if still pending.
        expires_at: DateTime<Utc>,
    },
    /// Capture a pending hold: `amount` (at most the held amount) leaves the wallet, to
    /// `external:<currency>` (a withdrawal) or to wallet `to` (a transfer); the rest is released.
    PostHold {
        /// The hold.
        hold: Uuid,
        /// Its wallet.
        wallet: WalletId,
        /// Amount that moves.
        amount: Amount,
        /// Wallet credited; none for money leaving the ledger.
        to: Option<WalletId>,
        /// External reference of the withdrawal (kept with the hold's journal entry otherwise).
        reference: String,
    },
    /// Release a pending hold (as expired once its time has passed).
    VoidHold {
        /// The hold.
        hold: Uuid,
        /// Its wallet.
        wallet: WalletId,
    },
}

impl LedgerCommand {
    /// Wallets the command changes, source first.
    pub fn wallets(&self) -> Vec<WalletId> {
        match self {
            Self::Open(w) => vec![w.id],
            Self::Deposit { wallet, .. } | Self::Withdraw { wallet, .. } | Self::SetStatus { wallet, .. } => {
                vec![*wallet]
            }
            Self::Transfer { from, to, .. } | Self::PostHold { wallet: from, to: Some(to), .. } => vec![*from, *to],
            Self::PlaceHold { wallet, .. } | Self::PostHold { wallet, .. } | Self::VoidHold { wallet, .. } => {
                vec![*wallet]
            }
        }
    }

    /// The wallet it is sent through: the one it debits or changes (the source of a transfer).
    pub fn owner(&self) -> WalletId {
        match self {
            Self::Open(w) => w.id,
            Self::Deposit { wallet, .. } | Self::Withdraw { wallet, .. } | Self::SetStatus { wallet, .. } => *wallet,
            Self::Transfer { from, .. } => *from,
            Self::PlaceHold { wallet, .. } | Self::PostHold { wallet, .. } | Self::VoidHold { wallet, .. } => *wallet,
        }
    }

    /// Whether applying it records a double-entry ledger transaction (money moves).
    pub fn creates_transaction(&self) -> bool {
        matches!(self, Self::Deposit { .. } | Self::Withdraw { .. } | Self::Transfer { .. } | Self::PostHold { .. })
    }

    /// Operation name for metrics and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open(_) => "open_wallet",
            Self::Deposit { .. } => "deposit",
            Self::Withdraw { .. } => "withdraw",
            Self::Transfer { .. } => "transfer",
            Self::SetStatus { .. } => "set_status",
            Self::PlaceHold { .. } => "place_hold",
            Self::PostHold { .. } => "post_hold",
            Self::VoidHold { .. } => "void_hold",
        }
    }

    /// The operation an idempotency key is claimed for.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Open(_) => "fintech.open_wallet",
            Self::Deposit { .. } => "fintech.deposit",
            Self::Withdraw { .. } => "fintech.withdraw",
            Self::Transfer { .. } => "fintech.transfer",
            Self::SetStatus { .. } => "fintech.set_status",
            Self::PlaceHold { .. } => "fintech.place_hold",
            Self::PostHold { .. } => "fintech.post_hold",
            Self::VoidHold { .. } => "fintech.void_hold",
        }
    }

    /// The request as an idempotency key remembers it: the command's fields, normalised, and
    /// nothing a transport adds (the id a new wallet is given is not part of the request).
    pub fn request(&self) -> Value {
        match self {
            Self::Open(w) => json!({"owner": w.owner, "currency": w.currency}),
            Self::Deposit { wallet, amount, reference, currency } => {
                json!({"wallet": wallet, "amount": amount.get(), "reference": reference, "currency": currency})
            }
            Self::Withdraw { wallet, amount, reference } => {
                json!({"wallet": wallet, "amount": amount.get(), "reference": reference})
            }
            Self::Transfer { from, to, amount, currency } => {
                json!({"from": from, "to": to, "amount": amount.get(), "currency": currency})
            }
            Self::SetStatus { wallet, status } => json!({"wallet": wallet, "status": status}),
            Self::PlaceHold { hold, wallet, amount, kind, expires_at } => {
                json!({"hold": hold, "wallet": wallet, "amount": amount.get(), "kind": kind, "expires_at": expires_at})
            }
            Self::PostHold { hold, wallet, amount, to, reference } => {
                json!({"hold": hold, "wallet": wallet, "amount": amount.get(), "to": to, "reference": reference})
            }
            Self::VoidHold { hold, wallet } => json!({"hold": hold, "wallet": wallet}),
        }
    }
}

/// A command with its context.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerOp {
    /// What to change.
    pub command: LedgerCommand,
    /// Id of the ledger transaction it creates.
    pub transaction_id: Uuid,
    /// Idempotency key, if any: the receipt is kept under it, in the same transaction.
    pub idempotency: Option<Claim>,
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
pub enum LedgerOutcome {
    /// Committed: the wallets after the change and the journal entries it appended.
    Applied {
        /// Changed wallets, source first.
        wallets: Vec<Wallet>,
        /// Entries appended.
        movements: Vec<Movement>,
        /// The hold a hold command placed, posted or released, as it now stands.
        holds: Vec<Hold>,
    },
    /// Refused by a rule checked against the stored state; nothing changed.
    Refused(FintechError),
    /// Another request holds the idempotency key, or (for a command applied [`LedgerOp::once`])
    /// its transaction exists; nothing changed.
    DuplicateKey,
    /// A command applied [`LedgerOp::once`] whose transaction exists but records something else
    /// (another wallet, amount, currency or reference): the id was reused for a different
    /// change, which is refused; nothing changed.
    ConflictingDuplicate,
}

/// A double-entry ledger transaction as stored: what a command applied once leaves behind, and
/// what a later command naming the same transaction is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRecord {
    /// Kind.
    pub kind: TransactionKind,
    /// Account debited: a wallet id or `external:<currency>`.
    pub debit: String,
    /// Account credited.
    pub credit: String,
    /// Minor units.
    pub amount: i64,
    /// Currency code of the wallets.
    pub currency: String,
    /// External reference of a deposit or withdrawal.
    pub reference: Option<String>,
}

impl TransactionRecord {
    /// The transaction `command` records when applied to wallets of `currency`; `None` for a
    /// command that moves no money.
    pub fn of(command: &LedgerCommand, currency: &str) -> Option<Self> {
        let external = format!("external:{currency}");
        let (kind, debit, credit, amount, reference) = match command {
            LedgerCommand::Deposit { wallet, amount, reference, .. } => {
                (TransactionKind::Deposit, external, wallet.to_string(), amount.get(), Some(reference.clone()))
            }
            LedgerCommand::Withdraw { wallet, amount, reference } => {
                (TransactionKind::Withdrawal, wallet.to_string(), external, amount.get(), Some(reference.clone()))
            }
            LedgerCommand::Transfer { from, to, amount, .. } => {
                (TransactionKind::Transfer, from.to_string(), to.to_string(), amount.get(), None)
            }
            LedgerCommand::PostHold { wallet, amount, to: None, reference, .. } => {
                (TransactionKind::Withdrawal, wallet.to_string(), external, amount.get(), Some(reference.clone()))
            }
            LedgerCommand::PostHold { wallet, amount, to: Some(to), .. } => {
                (TransactionKind::Transfer, wallet.to_string(), to.to_string(), amount.get(), None)
            }
            LedgerCommand::Open(_)
            | LedgerCommand::SetStatus { .. }
            | LedgerCommand::PlaceHold { .. }
            | LedgerCommand::VoidHold { .. } => return None,
        };
        Some(Self { kind, debit, credit, amount, currency: currency.to_owned(), reference })
    }

    /// Whether `command` is the one that recorded this transaction: the same kind, accounts,
    /// amount and reference, and the same currency when the command names one.
    pub fn recorded_by(&self, command: &LedgerCommand) -> bool {
        let named = match command {
            LedgerCommand::Deposit { currency, .. } | LedgerCommand::Transfer { currency, .. } => *currency,
            _ => None,
        };
        let currency = named.map_or_else(|| self.currency.clone(), |c| c.code().to_owned());
        Self::of(command, &currency).as_ref() == Some(self)
    }
}

/// What kind of money movement a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// Money in from outside.
    Deposit,
    /// Money out to outside.
    Withdrawal,
    /// Money between two wallets.
    Transfer,
}

impl TransactionKind {
    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "deposit" => Some(Self::Deposit),
            "withdrawal" => Some(Self::Withdrawal),
            "transfer" => Some(Self::Transfer),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Transfer => "transfer",
        }
    }
}

/// A completed money movement, as its caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Ledger transaction id.
    pub id: Uuid,
    /// Kind.
    pub kind: TransactionKind,
    /// Wallet debited (none for a deposit).
    pub from: Option<WalletId>,
    /// Wallet credited (none for a withdrawal).
    pub to: Option<WalletId>,
    /// Minor units.
    pub amount: i64,
    /// Currency of the wallets.
    pub currency: Currency,
    /// External reference of a deposit or withdrawal.
    pub reference: Option<String>,
    /// The caller's own wallet after the movement (the credited side of a transfer belongs to
    /// someone else).
    pub balance_after: i64,
    /// Commit time.
    pub created_at: DateTime<Utc>,
}

/// What a command answers its caller, and what its idempotency key keeps: the same for every
/// transport, each of which renders it its own way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "receipt", content = "value", rename_all = "snake_case")]
pub enum Receipt {
    /// A wallet was opened.
    Opened(Wallet),
    /// A wallet's status changed.
    StatusChanged(Wallet),
    /// Money moved.
    Moved(Transaction),
    /// A hold was placed or released (or placed again: nothing changed).
    Held(Hold),
    /// A rule refused the command; nothing changed.
    Refused(FintechError),
}

impl Receipt {
    /// The receipt of `op` given what it did; `None` when it did nothing of its own (a
    /// duplicate).
    pub fn of(op: &LedgerOp, outcome: &LedgerOutcome) -> Option<Self> {
        let (wallets, movements, holds) = match outcome {
            LedgerOutcome::Applied { wallets, movements, holds } => (wallets, movements, holds),
            LedgerOutcome::Refused(e) => return Some(Self::Refused(e.clone())),
            LedgerOutcome::DuplicateKey | LedgerOutcome::ConflictingDuplicate => return None,
        };
        let first = wallets.first()?;
        let moved = |kind, from, to, amount: &Amount| {
            // The money's entry (a posted hold's own entry comes first and moves nothing).
            let entry = movements.iter().find(|m| m.amount != 0);
            Self::Moved(Transaction {
                id: op.transaction_id,
                kind,
                from,
                to,
                amount: amount.get(),
                currency: first.currency,
                reference: entry.and_then(|m| m.reference.clone()),
                balance_after: entry.map_or(first.balance, |m| m.balance_after),
                created_at: op.at,
            })
        };
        Some(match &op.command {
            LedgerCommand::Open(_) => Self::Opened(first.clone()),
            LedgerCommand::SetStatus { .. } => Self::StatusChanged(first.clone()),
            LedgerCommand::Deposit { wallet, amount, .. } => {
                moved(TransactionKind::Deposit, None, Some(*wallet), amount)
            }
            LedgerCommand::Withdraw { wallet, amount, .. } => {
                moved(TransactionKind::Withdrawal, Some(*wallet), None, amount)
            }
            LedgerCommand::Transfer { from, to, amount, .. } => {
                moved(TransactionKind::Transfer, Some(*from), Some(*to), amount)
            }
            LedgerCommand::PostHold { wallet, amount, to: None, .. } => {
                moved(TransactionKind::Withdrawal, Some(*wallet), None, amount)
            }
            LedgerCommand::PostHold { wallet, amount, to: Some(to), .. } => {
                moved(TransactionKind::Transfer, Some(*wallet), Some(*to), amount)
            }
            LedgerCommand::PlaceHold { .. } | LedgerCommand::VoidHold { .. } => Self::Held(holds.first()?.clone()),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn deposit(wallet: WalletId, amount: i64, reference: &str, currency: Option<&str>) -> LedgerCommand {
        LedgerCommand::Deposit {
            wallet,
            amount: Amount::new(amount).unwrap(),
            reference: reference.into(),
            currency: currency.map(|c| Currency::parse(c).unwrap()),
        }
    }

    #[test]
    fn a_transaction_is_recorded_by_its_own_command_only() {
        let (a, b) = (WalletId(Uuid::now_v7()), WalletId(Uuid::now_v7()));
        let first = deposit(a, 500, "psp-1", Some("EUR"));
        let record = TransactionRecord::of(&first, "EUR").unwrap();
        assert_eq!((record.debit.as_str(), record.credit.clone()), ("external:EUR", a.to_string()));
        assert!(record.recorded_by(&first));
        assert!(record.recorded_by(&deposit(a, 500, "psp-1", None)), "no currency named: the wallet's");
        for other in [
            deposit(b, 500, "psp-1", Some("EUR")),
            deposit(a, 501, "psp-1", Some("EUR")),
            deposit(a, 500, "psp-2", Some("EUR")),
            deposit(a, 500, "psp-1", Some("USD")),
            LedgerCommand::Withdraw { wallet: a, amount: Amount::new(500).unwrap(), reference: "psp-1".into() },
        ] {
            assert!(!record.recorded_by(&other), "{other:?}");
        }
        assert!(TransactionRecord::of(&LedgerCommand::SetStatus { wallet: a, status: WalletStatus::Frozen }, "EUR")
            .is_none());
        assert_eq!(TransactionKind::parse(TransactionKind::Withdrawal.as_str()), Some(TransactionKind::Withdrawal));
    }
}
