//! Holds: money of a wallet set aside for a payment not yet final, like the pending transfers of
//! a two-phase ledger. A pending hold moves no money; it lowers its wallet's *available* balance
//! (balance − held) until it is posted (captured: at most the held amount moves, the rest is
//! released), voided (released) or expired (released once its `expires_at` has passed).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Currency, FintechError, WalletId, TEXT_MAX};

/// Lifecycle of a hold: pending, then exactly one of the three final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldStatus {
    /// The money is set aside.
    Pending,
    /// Captured: the posted amount moved, the rest was released.
    Posted,
    /// Released on request.
    Voided,
    /// Released because it expired.
    Expired,
}

impl HoldStatus {
    /// Lower-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Posted => "posted",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "posted" => Some(Self::Posted),
            "voided" => Some(Self::Voided),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hold on a wallet, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Identity, chosen by the caller: placing the same hold again is a no-op.
    pub id: Uuid,
    /// Wallet whose money is held.
    pub wallet: WalletId,
    /// Minor units held.
    pub amount: i64,
    /// The wallet's currency.
    pub currency: Currency,
    /// What the money is held for (`payout`, `ride`, ...).
    pub kind: String,
    /// Lifecycle.
    pub status: HoldStatus,
    /// Minor units that moved when it was posted (0 otherwise).
    pub posted: i64,
    /// When a still pending hold is released by itself.
    pub expires_at: DateTime<Utc>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

impl Hold {
    /// Whether it has expired at `now` (a pending hold is released from then on).
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// Whether it may be posted or voided: pending, else refused with its state.
    pub fn check_pending(&self) -> Result<(), FintechError> {
        match self.status {
            HoldStatus::Pending => Ok(()),
            status => Err(FintechError::HoldNotPending(self.id, status)),
        }
    }

    /// Whether placing `other` names this very hold again (same wallet, amount and kind), which
    /// changes nothing; another hold under the same id is refused.
    pub fn check_same(&self, wallet: WalletId, amount: i64, kind: &str) -> Result<(), FintechError> {
        if self.wallet == wallet && self.amount == amount && self.kind == kind {
            Ok(())
        } else {
            Err(FintechError::HoldConflict(self.id))
        }
    }
}

/// Validate a hold's kind: 1 to 32 lower-case letters, digits, `_` or `.`.
pub fn check_hold_kind(kind: &str) -> Result<(), FintechError> {
    let ok = !kind.is_empty()
        && kind.len() <= TEXT_MAX.min(32)
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(FintechError::InvalidHoldKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(status: HoldStatus) -> Hold {
        Hold {
            id: Uuid::now_v7(),
            wallet: WalletId::generate(),
            amount: 100,
            currency: Currency::parse("EUR").unwrap(),
            kind: "payout".into(),
            status,
            posted: 0,
            expires_at: Utc::now(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn only_a_pending_hold_moves_on_and_a_refusal_names_its_state() {
        assert!(hold(HoldStatus::Pending).check_pending().is_ok());
        for status in [HoldStatus::Posted, HoldStatus::Voided, HoldStatus::Expired] {
            let h = hold(status);
            assert_eq!(h.check_pending(), Err(FintechError::HoldNotPending(h.id, status)));
            assert_eq!(HoldStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn the_same_hold_again_is_the_same_and_another_under_its_id_is_refused() {
        let h = hold(HoldStatus::Pending);
        assert!(h.check_same(h.wallet, 100, "payout").is_ok());
        assert_eq!(h.check_same(h.wallet, 101, "payout"), Err(FintechError::HoldConflict(h.id)));
        assert_eq!(h.check_same(WalletId::generate(), 100, "payout"), Err(FintechError::HoldConflict(h.id)));
        assert_eq!(h.check_same(h.wallet, 100, "ride"), Err(FintechError::HoldConflict(h.id)));
    }

    #[test]
    fn kinds_are_short_lower_case_names() {
        assert!(check_hold_kind("payout").is_ok());
        assert!(check_hold_kind("ride.fare_2").is_ok());
        for bad in ["", "Payout", "a b", &"x".repeat(33)] {
            assert_eq!(check_hold_kind(bad), Err(FintechError::InvalidHoldKind), "{bad:?}");
        }
    }
}
