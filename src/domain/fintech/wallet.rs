//! The wallet aggregate and the rules every movement must satisfy.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Currency, FintechError};
use crate::domain::privacy::Personal;

/// Largest amount of one movement, in minor units (10^15: ten trillion euros in cents), so that
/// no sum of balances can overflow an i64.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// A wallet's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WalletId(pub Uuid);

impl WalletId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl FromStr for WalletId {
    type Err = FintechError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self).map_err(|_| FintechError::InvalidWalletId(s.chars().take(64).collect()))
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A positive amount of minor units, at most [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

impl Amount {
    /// Validate a requested amount.
    pub fn new(minor_units: i64) -> Result<Self, FintechError> {
        match minor_units {
            n if n <= 0 => Err(FintechError::InvalidAmount),
            n if n > MAX_AMOUNT => Err(FintechError::AmountTooLarge),
            n => Ok(Self(n)),
        }
    }

    /// Minor units.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Lifecycle of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalletStatus {
    /// Accepts every movement.
    Active,
    /// Accepts no movement until unfrozen.
    Frozen,
    /// Final; only an empty wallet closes.
    Closed,
}

impl WalletStatus {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Frozen => "frozen",
            Self::Closed => "closed",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "frozen" => Some(Self::Frozen),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

impl fmt::Display for WalletStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wallet as stored: `version` counts the changes applied to it (its journal sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// Identity.
    pub id: WalletId,
    /// Subject that owns it; erased once the subject's personal data was.
    pub owner: Personal<String>,
    /// Its only currency.
    pub currency: Currency,
    /// Balance in minor units; never negative.
    pub balance: i64,
    /// Minor units set aside by pending holds: at most the balance.
    #[serde(default)]
    pub held: i64,
    /// Lifecycle.
    pub status: WalletStatus,
    /// Number of changes applied, opening included (its journal's last sequence number).
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Longest owner or external reference, in characters.
pub const TEXT_MAX: usize = 128;

/// Check an owner or reference string: 1 to [`TEXT_MAX`] characters (not bytes), none of them a
/// control character.
fn printable(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= TEXT_MAX && s.chars().all(|c| !c.is_control())
}

impl Wallet {
    /// A new, empty, active wallet.
    pub fn open(owner: &str, currency: Currency) -> Result<Self, FintechError> {
        if !printable(owner) {
            return Err(FintechError::InvalidOwner);
        }
        Ok(Self {
            id: WalletId::generate(),
            owner: Personal::Value(owner.into()),
            currency,
            balance: 0,
            held: 0,
            status: WalletStatus::Active,
            version: 1,
            created_at: Utc::now(),
        })
    }

    fn usable(&self) -> Result<(), FintechError> {
        match self.status {
            WalletStatus::Active => Ok(()),
            WalletStatus::Frozen => Err(FintechError::WalletFrozen(self.id)),
            WalletStatus::Closed => Err(FintechError::WalletClosed(self.id)),
        }
    }

    /// Whether `subject` owns it (never once the owner was erased).
    pub fn owned_by(&self, subject: &str) -> bool {
        self.owner.value().is_some_and(|o| o == subject)
    }

    /// What may leave the wallet or be held: the balance minus the pending holds.
    pub fn available(&self) -> i64 {
        self.balance - self.held
    }

    /// Whether `amount` may leave this wallet (or be held): at most its available balance.
    pub fn check_debit(&self, amount: Amount) -> Result<(), FintechError> {
        self.usable()?;
        if self.available() < amount.get() {
            return Err(FintechError::InsufficientFunds(self.id));
        }
        Ok(())
    }

    /// Whether `amount` may enter this wallet.
    pub fn check_credit(&self, amount: Amount) -> Result<(), FintechError> {
        self.usable()?;
        if self.balance.checked_add(amount.get()).is_none_or(|b| b > MAX_AMOUNT.saturating_mul(1000)) {
            return Err(FintechError::AmountTooLarge);
        }
        Ok(())
    }

    /// Whether the wallet may move to `target`.
    pub fn check_status(&self, target: WalletStatus) -> Result<(), FintechError> {
        use WalletStatus::*;
        match (self.status, target) {
            (Active, Frozen) | (Frozen, Active) => Ok(()),
            (Active | Frozen, Closed) if self.held > 0 => Err(FintechError::HoldsPending(self.id)),
            (Active | Frozen, Closed) if self.balance == 0 => Ok(()),
            (Active | Frozen, Closed) => Err(FintechError::BalanceNotZero(self.id)),
            (from, to) => Err(FintechError::InvalidTransition(self.id, from, to)),
        }
    }

    /// Apply a signed change of balance that the rules above allowed.
    pub fn apply_delta(&mut self, delta: i64) {
        self.balance += delta;
        self.version += 1;
    }
}

/// Validate an external reference.
pub fn check_reference(reference: &str) -> Result<(), FintechError> {
    if printable(reference) {
        Ok(())
    } else {
        Err(FintechError::InvalidReference)
    }
}

/// What a journal entry records: a money movement or a lifecycle change (amount 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// The wallet was opened.
    Opened,
    /// The wallet was frozen.
    Frozen,
    /// The wallet was unfrozen.
    Unfrozen,
    /// The wallet was closed.
    Closed,
    /// Money in from outside (credit wallet, debit external).
    Deposit,
    /// Money out to outside (debit wallet, credit external).
    Withdrawal,
    /// Money out to another wallet.
    TransferOut,
    /// Money in from another wallet.
    TransferIn,
    /// A hold set money aside (amount 0: no money moved).
    HoldPlaced,
    /// A hold was captured (the money it moved is the entry after it).
    HoldPosted,
    /// A hold was released on request.
    HoldVoided,
    /// A hold was released because it expired.
    HoldExpired,
}

impl MovementKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Frozen => "frozen",
            Self::Unfrozen => "unfrozen",
            Self::Closed => "closed",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
            Self::HoldPlaced => "hold_placed",
            Self::HoldPosted => "hold_posted",
            Self::HoldVoided => "hold_voided",
            Self::HoldExpired => "hold_expired",
        }
    }

    /// Whether it changes the wallet's lifecycle (opened, frozen, unfrozen, closed) rather than
    /// its money: the events other domains read a wallet's standing from.
    pub fn is_lifecycle(self) -> bool {
        matches!(self, Self::Opened | Self::Frozen | Self::Unfrozen | Self::Closed)
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(Self::Opened),
            "frozen" => Some(Self::Frozen),
            "unfrozen" => Some(Self::Unfrozen),
            "closed" => Some(Self::Closed),
            "deposit" => Some(Self::Deposit),
            "withdrawal" => Some(Self::Withdrawal),
            "transfer_out" => Some(Self::TransferOut),
            "transfer_in" => Some(Self::TransferIn),
            "hold_placed" => Some(Self::HoldPlaced),
            "hold_posted" => Some(Self::HoldPosted),
            "hold_voided" => Some(Self::HoldVoided),
            "hold_expired" => Some(Self::HoldExpired),
            _ => None,
        }
    }
}

/// The journal entry a status change produces.
pub fn status_entry_kind(from: WalletStatus, to: WalletStatus) -> MovementKind {
    match (from, to) {
        (_, WalletStatus::Closed) => MovementKind::Closed,
        (_, WalletStatus::Frozen) => MovementKind::Frozen,
        _ => MovementKind::Unfrozen,
    }
}

/// One journal entry of a wallet: the change its `seq`-th version applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// Wallet.
    pub wallet_id: WalletId,
    /// Version of the wallet this entry produced (1, 2, ...).
    pub seq: i64,
    /// Ledger transaction both legs belong to (none for lifecycle changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<Uuid>,
    /// Kind.
    pub kind: MovementKind,
    /// Signed change in minor units (negative for debits, 0 for lifecycle changes).
    pub amount: i64,
    /// Balance after the change.
    pub balance_after: i64,
    /// The other wallet of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<WalletId>,
    /// External reference of a deposit or withdrawal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Whether its personal fields (the reference) were erased: `reference` is then `None`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub erased: bool,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(balance: i64, status: WalletStatus) -> Wallet {
        Wallet { balance, status, ..Wallet::open("alice", Currency::parse("EUR").unwrap()).unwrap() }
    }

    #[test]
    fn amounts_are_positive_and_bounded() {
        assert_eq!(Amount::new(0), Err(FintechError::InvalidAmount));
        assert_eq!(Amount::new(-5), Err(FintechError::InvalidAmount));
        assert_eq!(Amount::new(MAX_AMOUNT + 1), Err(FintechError::AmountTooLarge));
        assert_eq!(Amount::new(1).unwrap().get(), 1);
    }

    #[test]
    fn debits_never_make_a_balance_negative() {
        let w = wallet(100, WalletStatus::Active);
        assert!(w.check_debit(Amount::new(100).unwrap()).is_ok());
        assert_eq!(w.check_debit(Amount::new(101).unwrap()), Err(FintechError::InsufficientFunds(w.id)));
    }

    #[test]
    fn frozen_and_closed_wallets_refuse_movements() {
        let f = wallet(100, WalletStatus::Frozen);
        assert_eq!(f.check_credit(Amount::new(1).unwrap()), Err(FintechError::WalletFrozen(f.id)));
        let c = wallet(0, WalletStatus::Closed);
        assert_eq!(c.check_debit(Amount::new(1).unwrap()), Err(FintechError::WalletClosed(c.id)));
    }

    #[test]
    fn only_empty_wallets_close_and_closed_is_final() {
        assert!(wallet(0, WalletStatus::Active).check_status(WalletStatus::Closed).is_ok());
        assert!(matches!(
            wallet(1, WalletStatus::Active).check_status(WalletStatus::Closed),
            Err(FintechError::BalanceNotZero(_))
        ));
        assert!(matches!(
            wallet(0, WalletStatus::Closed).check_status(WalletStatus::Active),
            Err(FintechError::InvalidTransition(..))
        ));
    }

    #[test]
    fn references_are_counted_in_characters_and_refuse_control_characters() {
        assert!(check_reference(&"é".repeat(TEXT_MAX)).is_ok());
        assert!(check_reference(&"é".repeat(TEXT_MAX + 1)).is_err());
        for bad in ["", "a\nb", "tab\t", "\u{7f}", "\u{85}"] {
            assert_eq!(check_reference(bad), Err(FintechError::InvalidReference), "{bad:?}");
        }
        assert!(check_reference("psp-0001 ✓").is_ok());
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!("not-a-uuid".parse::<WalletId>().is_err());
        assert!("0192f0c1-7a4b-7cc2-9d1e-5f2a3b4c5d6e".parse::<WalletId>().is_ok());
    }
}
