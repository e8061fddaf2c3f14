//! The ledger's rules, every one of them, applied to a set of wallets held in memory: the
//! in-memory store keeps its whole ledger in one, and the PostgreSQL store applies each batch to
//! the wallets it locked. Both stores therefore answer every command the same way, and no
//! transport checks a rule of its own.

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    check_hold_kind, status_entry_kind, Currency, FintechError, Hold, HoldStatus, LedgerCommand as Command, LedgerOp,
    Movement, MovementKind, Wallet, WalletId,
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
    /// The hold a hold command placed, posted or released, as it now stands.
    pub holds: Vec<Hold>,
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
    /// The holds known: every hold (in memory), or those the batch names (PostgreSQL).
    pub holds: HashMap<Uuid, Hold>,
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
        let mut holds = Vec::new();
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
            Command::PlaceHold { hold, wallet, amount, kind, expires_at } => {
                let mut w = self.get(*wallet)?;
                if let Some(existing) = self.holds.get(hold) {
                    existing.check_same(*wallet, amount.get(), kind)?;
                    holds.push(existing.clone());
                    (vec![w], Vec::new(), 0)
                } else {
                    check_hold_kind(kind)?;
                    w.check_debit(*amount)?;
                    let placed = Hold {
                        id: *hold,
                        wallet: w.id,
                        amount: amount.get(),
                        currency: w.currency,
                        kind: kind.clone(),
                        status: HoldStatus::Pending,
                        posted: 0,
                        expires_at: *expires_at,
                        created_at: op.at,
                    };
                    w.held += amount.get();
                    w.version += 1;
                    let m = self.hold_entry(&w, op, MovementKind::HoldPlaced, *hold);
                    self.holds.insert(*hold, placed.clone());
                    holds.push(placed);
                    (vec![w], vec![m], 0)
                }
            }
            Command::PostHold { hold, wallet, amount, to, reference } => {
                let mut held = self.pending(*hold, *wallet)?;
                if held.expired(op.at) {
                    return Err(FintechError::HoldNotPending(held.id, HoldStatus::Expired));
                }
                if amount.get() > held.amount {
                    return Err(FintechError::HoldAmountExceeded);
                }
                let mut src = self.get(*wallet)?;
                let mut dst = match to {
                    Some(to) if to == wallet => return Err(FintechError::SameWallet),
                    Some(to) => Some(self.get(*to)?),
                    None => None,
                };
                if let Some(dst) = &dst {
                    if src.currency != dst.currency {
                        return Err(FintechError::CurrencyMismatch(src.currency, dst.currency));
                    }
                    dst.check_credit(*amount)?;
                }
                // The held money is there whatever the wallet's status: it was promised before.
                src.held -= held.amount;
                src.version += 1;
                let posted = self.hold_entry(&src, op, MovementKind::HoldPosted, *hold);
                src.apply_delta(-amount.get());
                held.status = HoldStatus::Posted;
                held.posted = amount.get();
                self.holds.insert(*hold, held.clone());
                holds.push(held);
                match dst.as_mut() {
                    None => {
                        let out = self.entry(&src, op, MovementKind::Withdrawal, -amount.get(), None, Some(reference));
                        (vec![src], vec![posted, out], -i128::from(amount.get()))
                    }
                    Some(dst) => {
                        dst.apply_delta(amount.get());
                        let out = self.entry(&src, op, MovementKind::TransferOut, -amount.get(), Some(dst.id), None);
                        let inn = self.entry(dst, op, MovementKind::TransferIn, amount.get(), Some(src.id), None);
                        (vec![src, dst.clone()], vec![posted, out, inn], 0)
                    }
                }
            }
            Command::VoidHold { hold, wallet } => {
                let mut held = self.pending(*hold, *wallet)?;
                let mut w = self.get(*wallet)?;
                let (status, kind) = if held.expired(op.at) {
                    (HoldStatus::Expired, MovementKind::HoldExpired)
                } else {
                    (HoldStatus::Voided, MovementKind::HoldVoided)
                };
                w.held -= held.amount;
                w.version += 1;
                let m = self.hold_entry(&w, op, kind, *hold);
                held.status = status;
                self.holds.insert(*hold, held.clone());
                holds.push(held);
                (vec![w], vec![m], 0)
            }
        };
        Ok(Change { wallets, movements, net_external, holds })
    }

    /// The pending hold `id` of `wallet`.
    fn pending(&self, id: Uuid, wallet: WalletId) -> Result<Hold, FintechError> {
        let hold = self.holds.get(&id).filter(|h| h.wallet == wallet).ok_or(FintechError::HoldNotFound(id))?;
        hold.check_pending()?;
        Ok(hold.clone())
    }

    /// A hold's own journal entry: no money moves; it names the hold as its transaction.
    fn hold_entry(&mut self, wallet: &Wallet, op: &LedgerOp, kind: MovementKind, hold: Uuid) -> Movement {
        let mut m = self.entry(wallet, op, kind, 0, None, None);
        m.transaction_id = Some(hold);
        m
    }

    /// The pending holds of the book expired at `now`, at most `limit`, oldest first.
    pub fn expired_holds(&self, now: chrono::DateTime<chrono::Utc>, limit: usize) -> Vec<Hold> {
        let mut expired: Vec<Hold> =
            self.holds.values().filter(|h| h.status == HoldStatus::Pending && h.expired(now)).cloned().collect();
        expired.sort_by_key(|h| (h.expires_at, h.id));
        expired.truncate(limit);
        expired
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::fintech::{Amount, LedgerCommand, WalletStatus};

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

    fn place(hold: Uuid, wallet: WalletId, amount: i64) -> LedgerCommand {
        LedgerCommand::PlaceHold {
            hold,
            wallet,
            amount: Amount::new(amount).unwrap(),
            kind: "payout".into(),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    fn post(hold: Uuid, wallet: WalletId, amount: i64, to: Option<WalletId>) -> LedgerCommand {
        LedgerCommand::PostHold { hold, wallet, amount: Amount::new(amount).unwrap(), to, reference: "po-1".into() }
    }

    #[test]
    fn a_hold_moves_no_money_and_lowers_what_is_available() {
        let (mut book, ids) = book_with(&[("EUR", 100)]);
        let h = Uuid::now_v7();
        let change = book.apply(&op(place(h, ids[0], 60))).unwrap();
        assert_eq!(change.net_external, 0);
        let w = &change.wallets[0];
        assert_eq!((w.balance, w.held, w.available()), (100, 60, 40));
        assert_eq!(
            change.movements.iter().map(|m| (m.kind, m.amount)).collect::<Vec<_>>(),
            [(MovementKind::HoldPlaced, 0)]
        );
        assert_eq!(change.movements[0].transaction_id, Some(h), "the entry names its hold");
        assert_eq!(change.holds[0].status, HoldStatus::Pending);
        // Every rule that checks funds checks what is available.
        let withdraw =
            LedgerCommand::Withdraw { wallet: ids[0], amount: Amount::new(41).unwrap(), reference: "r".into() };
        assert_eq!(book.apply(&op(withdraw)).map(|_| ()), Err(FintechError::InsufficientFunds(ids[0])));
        assert_eq!(
            book.apply(&op(place(Uuid::now_v7(), ids[0], 41))).map(|_| ()),
            Err(FintechError::InsufficientFunds(ids[0]))
        );
        assert!(book.apply(&op(place(Uuid::now_v7(), ids[0], 40))).is_ok(), "exactly what is available");
        assert_eq!(book.wallets[&ids[0]].available(), 0);
    }

    #[test]
    fn the_same_hold_again_changes_nothing_and_another_under_its_id_is_refused() {
        let (mut book, ids) = book_with(&[("EUR", 100)]);
        let h = Uuid::now_v7();
        book.apply(&op(place(h, ids[0], 60))).unwrap();
        let again = book.apply(&op(place(h, ids[0], 60))).unwrap();
        assert!(again.movements.is_empty());
        assert_eq!((again.wallets[0].held, again.holds[0].id), (60, h));
        assert_eq!(book.apply(&op(place(h, ids[0], 61))).map(|_| ()), Err(FintechError::HoldConflict(h)));
        assert_eq!(book.wallets[&ids[0]].held, 60);
    }

    #[test]
    fn posting_moves_at_most_the_held_amount_and_releases_the_rest() {
        let (mut book, ids) = book_with(&[("EUR", 100), ("EUR", 0)]);
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        book.apply(&op(place(a, ids[0], 50))).unwrap();
        assert_eq!(book.apply(&op(post(a, ids[0], 51, None))).map(|_| ()), Err(FintechError::HoldAmountExceeded));
        let out = book.apply(&op(post(a, ids[0], 30, None))).unwrap();
        assert_eq!(out.net_external, -30, "a post moves exactly what it posts");
        let w = &out.wallets[0];
        assert_eq!((w.balance, w.held, w.available()), (70, 0, 70));
        let kinds: Vec<_> = out.movements.iter().map(|m| (m.kind, m.amount)).collect();
        assert_eq!(kinds, [(MovementKind::HoldPosted, 0), (MovementKind::Withdrawal, -30)]);
        assert_eq!((out.holds[0].status, out.holds[0].posted), (HoldStatus::Posted, 30));
        // To another wallet: a transfer.
        book.apply(&op(place(b, ids[0], 70))).unwrap();
        let moved = book.apply(&op(post(b, ids[0], 70, Some(ids[1])))).unwrap();
        assert_eq!(moved.net_external, 0);
        assert_eq!(moved.wallets.iter().map(|w| (w.balance, w.held)).collect::<Vec<_>>(), [(0, 0), (70, 0)]);
        assert_eq!(
            book.apply(&op(post(b, ids[0], 1, Some(ids[0])))).map(|_| ()),
            Err(FintechError::HoldNotPending(b, HoldStatus::Posted))
        );
    }

    #[test]
    fn a_hold_that_is_not_pending_is_refused_with_its_state() {
        let (mut book, ids) = book_with(&[("EUR", 100), ("JPY", 0)]);
        let h = Uuid::now_v7();
        assert_eq!(book.apply(&op(post(h, ids[0], 1, None))).map(|_| ()), Err(FintechError::HoldNotFound(h)));
        book.apply(&op(place(h, ids[0], 10))).unwrap();
        assert_eq!(
            book.apply(&op(LedgerCommand::VoidHold { hold: h, wallet: ids[1] })).map(|_| ()),
            Err(FintechError::HoldNotFound(h)),
            "another wallet's"
        );
        let (eur, jpy) = (Currency::parse("EUR").unwrap(), Currency::parse("JPY").unwrap());
        assert_eq!(
            book.apply(&op(post(h, ids[0], 10, Some(ids[1])))).map(|_| ()),
            Err(FintechError::CurrencyMismatch(eur, jpy))
        );
        let voided = book.apply(&op(LedgerCommand::VoidHold { hold: h, wallet: ids[0] })).unwrap();
        assert_eq!((voided.wallets[0].held, voided.holds[0].status), (0, HoldStatus::Voided));
        assert_eq!(voided.movements[0].kind, MovementKind::HoldVoided);
        for command in [post(h, ids[0], 10, None), LedgerCommand::VoidHold { hold: h, wallet: ids[0] }] {
            assert_eq!(book.apply(&op(command)).map(|_| ()), Err(FintechError::HoldNotPending(h, HoldStatus::Voided)));
        }
        assert_eq!(book.wallets[&ids[0]].balance, 100, "a void moves no money");
    }

    #[test]
    fn an_expired_hold_cannot_be_posted_and_is_released_as_expired() {
        let (mut book, ids) = book_with(&[("EUR", 100)]);
        let h = Uuid::now_v7();
        let mut placed = place(h, ids[0], 40);
        if let LedgerCommand::PlaceHold { expires_at, .. } = &mut placed {
            *expires_at = Utc::now() - chrono::Duration::seconds(1);
        }
        book.apply(&op(placed)).unwrap();
        assert_eq!(book.expired_holds(Utc::now(), 10).iter().map(|h| h.id).collect::<Vec<_>>(), [h]);
        assert_eq!(
            book.apply(&op(post(h, ids[0], 40, None))).map(|_| ()),
            Err(FintechError::HoldNotPending(h, HoldStatus::Expired))
        );
        assert_eq!(book.wallets[&ids[0]].available(), 60, "held until released");
        let released = book.apply(&op(LedgerCommand::VoidHold { hold: h, wallet: ids[0] })).unwrap();
        assert_eq!(
            (released.holds[0].status, released.movements[0].kind),
            (HoldStatus::Expired, MovementKind::HoldExpired)
        );
        assert_eq!(book.wallets[&ids[0]].available(), 100);
        assert!(book.expired_holds(Utc::now(), 10).is_empty());
    }

    #[test]
    fn a_wallet_with_pending_holds_does_not_close_and_a_frozen_ones_holds_still_settle() {
        let (mut book, ids) = book_with(&[("EUR", 0)]);
        let deposit = LedgerCommand::Deposit {
            wallet: ids[0],
            amount: Amount::new(10).unwrap(),
            reference: "r".into(),
            currency: None,
        };
        book.apply(&op(deposit)).unwrap();
        let h = Uuid::now_v7();
        book.apply(&op(place(h, ids[0], 10))).unwrap();
        book.apply(&op(LedgerCommand::SetStatus { wallet: ids[0], status: WalletStatus::Frozen })).unwrap();
        assert_eq!(
            book.apply(&op(place(Uuid::now_v7(), ids[0], 1))).map(|_| ()),
            Err(FintechError::WalletFrozen(ids[0]))
        );
        let close = LedgerCommand::SetStatus { wallet: ids[0], status: WalletStatus::Closed };
        assert_eq!(book.apply(&op(close.clone())).map(|_| ()), Err(FintechError::HoldsPending(ids[0])));
        book.apply(&op(post(h, ids[0], 10, None))).unwrap();
        assert!(book.apply(&op(close)).is_ok(), "empty and no hold pending");
    }
}
