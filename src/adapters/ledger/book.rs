//! The ledger's rules applied to a set of wallets held in memory: the in-memory store keeps its
//! whole ledger in one, and the PostgreSQL store applies each batch to the wallets it locked.
//! Both stores therefore answer every command the same way.

use std::collections::HashMap;

use super::{Command, LedgerOp};
use crate::domain::fintech::{status_entry_kind, FintechError, Movement, MovementKind, Wallet, WalletId};

/// What one applied command changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The wallets after the command, source first.
    pub wallets: Vec<Wallet>,
    /// The journal entries it appended.
    pub movements: Vec<Movement>,
    /// Money that entered (positive) or left (negative) the ledger.
    pub net_external: i128,
}

/// Wallets by id.
#[derive(Debug, Default, Clone)]
pub struct Book {
    /// Current state of each wallet.
    pub wallets: HashMap<WalletId, Wallet>,
}

impl Book {
    fn get(&self, id: WalletId) -> Result<Wallet, FintechError> {
        self.wallets.get(&id).cloned().ok_or(FintechError::WalletNotFound(id))
    }

    fn entry(
        &mut self,
        wallet: &Wallet,
        op: &LedgerOp,
        kind: MovementKind,
        amount: i64,
        counterparty: Option<WalletId>,
        reference: Option<&str>,
    ) -> Movement {
        self.wallets.insert(wallet.id, wallet.clone());
        Movement {
            wallet_id: wallet.id,
            seq: wallet.version,
            transaction_id: (amount != 0).then_some(op.transaction_id),
            kind,
            amount,
            balance_after: wallet.balance,
            counterparty,
            reference: reference.map(str::to_string),
            created_at: op.at,
        }
    }

    /// Apply `op` if every rule holds; otherwise change nothing and say which rule broke.
    pub fn apply(&mut self, op: &LedgerOp) -> Result<Change, FintechError> {
        let (wallets, movements, net_external) = match &op.command {
            Command::Open(wallet) => {
                let mut wallet = wallet.as_ref().clone();
                wallet.created_at = op.at;
                let m = self.entry(&wallet, op, MovementKind::Opened, 0, None, None);
                (vec![wallet], vec![m], 0)
            }
            Command::Deposit { wallet, amount, reference } => {
                let mut w = self.get(*wallet)?;
                w.check_credit(*amount)?;
                w.apply_delta(amount.get());
                let m = self.entry(&w, op, MovementKind::Deposit, amount.get(), None, Some(reference));
                (vec![w], vec![m], i128::from(amount.get()))
            }
            Command::Withdraw { wallet, amount, reference } => {
                let mut w = self.get(*wallet)?;
                w.check_debit(*amount)?;
                w.apply_delta(-amount.get());
                let m = self.entry(&w, op, MovementKind::Withdrawal, -amount.get(), None, Some(reference));
                (vec![w], vec![m], -i128::from(amount.get()))
            }
            Command::Transfer { from, to, amount } => {
                if from == to {
                    return Err(FintechError::SameWallet);
                }
                let (mut src, mut dst) = (self.get(*from)?, self.get(*to)?);
                if src.currency != dst.currency {
                    return Err(FintechError::CurrencyMismatch(src.currency, dst.currency));
                }
                src.check_debit(*amount)?;
                dst.check_credit(*amount)?;
                src.apply_delta(-amount.get());
                dst.apply_delta(amount.get());
                let out = self.entry(&src, op, MovementKind::TransferOut, -amount.get(), Some(dst.id), None);
                let inn = self.entry(&dst, op, MovementKind::TransferIn, amount.get(), Some(src.id), None);
                (vec![src, dst], vec![out, inn], 0)
            }
            Command::SetStatus { wallet, status } => {
                let mut w = self.get(*wallet)?;
                w.check_status(*status)?;
                let kind = status_entry_kind(w.status, *status);
                w.status = *status;
                w.version += 1;
                let m = self.entry(&w, op, kind, 0, None, None);
                (vec![w], vec![m], 0)
            }
        };
        Ok(Change { wallets, movements, net_external })
    }
}
