//! The ledger's rules, every one of them, applied to a set of wallets held in memory: the
//! in-memory store keeps its whole ledger in one, and the PostgreSQL store applies each batch to
//! the wallets it locked. Both stores therefore answer every command the same way, and no
//! transport checks a rule of its own.

use std::collections::HashMap;

use super::{
    status_entry_kind, Currency, FintechError, LedgerCommand as Command, LedgerOp, Movement, MovementKind, Wallet,
    WalletId,
};

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

/// The currency a command expects, when it names one, is the wallet's.
fn expect_currency(expected: Option<Currency>, actual: Currency) -> Result<(), FintechError> {
    match expected {
        Some(expected) if expected != actual => Err(FintechError::CurrencyMismatch(expected, actual)),
        _ => Ok(()),
    }
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
            erased: false,
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
            Command::Deposit { wallet, amount, reference, currency } => {
                let mut w = self.get(*wallet)?;
                expect_currency(*currency, w.currency)?;
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
            Command::Transfer { from, to, amount, currency } => {
                if from == to {
                    return Err(FintechError::SameWallet);
                }
                let (mut src, mut dst) = (self.get(*from)?, self.get(*to)?);
                expect_currency(*currency, src.currency)?;
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

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::fintech::{Amount, LedgerCommand};

    fn op(command: LedgerCommand) -> LedgerOp {
        LedgerOp {
            command,
            transaction_id: Uuid::now_v7(),
            idempotency: None,
            once: false,
            request_id: None,
            at: Utc::now(),
        }
    }

    fn book_with(balances: &[(&str, i64)]) -> (Book, Vec<WalletId>) {
        let mut book = Book::default();
        let ids = balances
            .iter()
            .map(|(currency, balance)| {
                let mut w = Wallet::open("alice", Currency::parse(currency).unwrap()).unwrap();
                w.balance = *balance;
                book.wallets.insert(w.id, w.clone());
                w.id
            })
            .collect();
        (book, ids)
    }

    fn transfer(from: WalletId, to: WalletId, amount: i64, currency: Option<&str>) -> LedgerCommand {
        LedgerCommand::Transfer {
            from,
            to,
            amount: Amount::new(amount).unwrap(),
            currency: currency.map(|c| Currency::parse(c).unwrap()),
        }
    }

    #[test]
    fn a_transfer_moves_money_both_ways_and_conserves_it() {
        let (mut book, ids) = book_with(&[("EUR", 100), ("EUR", 0)]);
        let change = book.apply(&op(transfer(ids[0], ids[1], 30, Some("EUR")))).unwrap();
        assert_eq!(change.net_external, 0);
        let balances: Vec<i64> = change.wallets.iter().map(|w| w.balance).collect();
        assert_eq!(balances, vec![70, 30]);
        assert_eq!(change.movements.iter().map(|m| m.amount).sum::<i64>(), 0);
    }

    #[test]
    fn every_transfer_rule_lives_here() {
        let (mut book, ids) = book_with(&[("EUR", 100), ("EUR", 0), ("JPY", 0)]);
        let (eur, jpy) = (Currency::parse("EUR").unwrap(), Currency::parse("JPY").unwrap());
        let cases = [
            (transfer(ids[0], ids[0], 1, None), FintechError::SameWallet),
            (transfer(ids[0], ids[2], 1, None), FintechError::CurrencyMismatch(eur, jpy)),
            (transfer(ids[0], ids[1], 1, Some("JPY")), FintechError::CurrencyMismatch(jpy, eur)),
            (transfer(ids[0], ids[1], 101, None), FintechError::InsufficientFunds(ids[0])),
        ];
        for (command, refusal) in cases {
            assert_eq!(book.apply(&op(command)).map(|_| ()), Err(refusal.clone()), "{refusal}");
        }
        assert_eq!(book.wallets[&ids[0]].balance, 100, "refusals change nothing");
    }

    #[test]
    fn a_payment_in_another_currency_than_the_wallets_is_refused() {
        let (mut book, ids) = book_with(&[("EUR", 0)]);
        let pay = |currency: &str| LedgerCommand::Deposit {
            wallet: ids[0],
            amount: Amount::new(5).unwrap(),
            reference: "psp-1".into(),
            currency: Some(Currency::parse(currency).unwrap()),
        };
        let refused = book.apply(&op(pay("USD"))).map(|_| ());
        assert!(matches!(refused, Err(FintechError::CurrencyMismatch(..))), "{refused:?}");
        assert_eq!(book.apply(&op(pay("EUR"))).unwrap().net_external, 5);
    }
}
