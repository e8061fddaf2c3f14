//! The ledger in process memory, for the embedded mode: one lock, commands applied in order with
//! the same rules and answers as PostgreSQL. Nothing survives the process.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::{Command, KeptResponse, LedgerOp, OutboxBatch, OutboxLag, Outcome, Page, Render, StoredResponse, Totals};
use crate::domain::fintech::{status_entry_kind, FintechError, Movement, MovementKind, Wallet, WalletId};

#[derive(Default)]
struct State {
    wallets: HashMap<WalletId, Wallet>,
    journal: HashMap<WalletId, Vec<Movement>>,
    keys: HashMap<(String, String), (KeptResponse, DateTime<Utc>)>,
    net_external: i128,
    outbox: VecDeque<OutboxBatch>,
    outbox_next: i64,
}

/// The in-memory ledger.
#[derive(Clone, Default)]
pub struct MemLedger {
    state: Arc<Mutex<State>>,
}

impl MemLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn commit(&self, ops: &[LedgerOp], render: Render) -> Vec<Outcome> {
        let mut state = self.state.lock();
        let outcomes: Vec<Outcome> = ops
            .iter()
            .map(|op| {
                if let Some(claim) = &op.idempotency {
                    if state.keys.contains_key(&(claim.scope.clone(), claim.key.clone())) {
                        return Outcome::DuplicateKey;
                    }
                }
                let outcome = match state.apply(op) {
                    Ok(outcome) => outcome,
                    Err(refusal) => Outcome::Refused(refusal),
                };
                if let Some(claim) = &op.idempotency {
                    let kept = KeptResponse {
                        request_hash: claim.request_hash.clone(),
                        request_body: claim.request_body.clone(),
                        response: render(op, &outcome),
                    };
                    state.keys.insert((claim.scope.clone(), claim.key.clone()), (kept, claim.expires_at));
                }
                outcome
            })
            .collect();
        let events = super::events_of(ops, &outcomes);
        if !events.is_empty() {
            state.outbox_next += 1;
            let id = state.outbox_next;
            let created_at = ops.last().map(|op| op.at).unwrap_or_else(Utc::now);
            state.outbox.push_back(OutboxBatch { id, created_at, events });
        }
        outcomes
    }

    /// The oldest `limit` outbox batches.
    pub fn outbox_fetch(&self, limit: usize) -> Vec<OutboxBatch> {
        self.state.lock().outbox.iter().take(limit).cloned().collect()
    }

    /// Forget published outbox batches.
    pub fn outbox_delete(&self, ids: &[i64]) {
        self.state.lock().outbox.retain(|b| !ids.contains(&b.id));
    }

    /// How far the outbox is behind.
    pub fn outbox_lag(&self) -> OutboxLag {
        let state = self.state.lock();
        OutboxLag {
            events: state.outbox.iter().map(|b| b.events.len() as u64).sum(),
            oldest: state.outbox.front().map(|b| b.created_at),
        }
    }

    pub(super) fn wallet(&self, id: WalletId) -> Option<Wallet> {
        self.state.lock().wallets.get(&id).cloned()
    }

    pub(super) fn movements(&self, id: WalletId, before: Option<i64>, limit: usize) -> Page {
        let state = self.state.lock();
        let mut items: Vec<Movement> = state
            .journal
            .get(&id)
            .map(|j| {
                j.iter()
                    .rev()
                    .filter(|m| m.amount != 0 && before.is_none_or(|b| m.seq < b))
                    .take(limit + 1)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let next_before = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|m| m.seq)
        } else {
            None
        };
        Page { items, next_before }
    }

    pub(super) fn kept_response(&self, scope: &str, key: &str) -> Option<KeptResponse> {
        self.state.lock().keys.get(&(scope.to_string(), key.to_string())).map(|(k, _)| k.clone())
    }

    pub(super) fn purge_expired_keys(&self, now: DateTime<Utc>) -> u64 {
        let mut state = self.state.lock();
        let before = state.keys.len();
        state.keys.retain(|_, (_, expires)| *expires > now);
        (before - state.keys.len()) as u64
    }

    pub(super) fn totals(&self) -> Totals {
        let state = self.state.lock();
        Totals {
            balances: state.wallets.values().map(|w| i128::from(w.balance)).sum(),
            net_external: state.net_external,
        }
    }
}

impl State {
    fn get(&self, id: WalletId) -> Result<Wallet, FintechError> {
        self.wallets.get(&id).cloned().ok_or(FintechError::WalletNotFound(id))
    }

    fn append(
        &mut self,
        wallet: &Wallet,
        op: &LedgerOp,
        kind: MovementKind,
        amount: i64,
        counterparty: Option<WalletId>,
        reference: Option<&str>,
    ) -> Movement {
        let movement = Movement {
            wallet_id: wallet.id,
            seq: wallet.version,
            transaction_id: (amount != 0).then_some(op.transaction_id),
            kind,
            amount,
            balance_after: wallet.balance,
            counterparty,
            reference: reference.map(str::to_string),
            created_at: op.at,
        };
        self.journal.entry(wallet.id).or_default().push(movement.clone());
        self.wallets.insert(wallet.id, wallet.clone());
        movement
    }

    fn apply(&mut self, op: &LedgerOp) -> Result<Outcome, FintechError> {
        let (wallets, movements) = match &op.command {
            Command::Open(wallet) => {
                let mut wallet = wallet.as_ref().clone();
                wallet.created_at = op.at;
                let m = self.append(&wallet, op, MovementKind::Opened, 0, None, None);
                (vec![wallet], vec![m])
            }
            Command::Deposit { wallet, amount, reference } => {
                let mut w = self.get(*wallet)?;
                w.check_credit(*amount)?;
                w.apply_delta(amount.get());
                self.net_external += i128::from(amount.get());
                let m = self.append(&w, op, MovementKind::Deposit, amount.get(), None, Some(reference));
                (vec![w], vec![m])
            }
            Command::Withdraw { wallet, amount, reference } => {
                let mut w = self.get(*wallet)?;
                w.check_debit(*amount)?;
                w.apply_delta(-amount.get());
                self.net_external -= i128::from(amount.get());
                let m = self.append(&w, op, MovementKind::Withdrawal, -amount.get(), None, Some(reference));
                (vec![w], vec![m])
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
                let out = self.append(&src, op, MovementKind::TransferOut, -amount.get(), Some(dst.id), None);
                let inn = self.append(&dst, op, MovementKind::TransferIn, amount.get(), Some(src.id), None);
                (vec![src, dst], vec![out, inn])
            }
            Command::SetStatus { wallet, status } => {
                let mut w = self.get(*wallet)?;
                w.check_status(*status)?;
                let kind = status_entry_kind(w.status, *status);
                w.status = *status;
                w.version += 1;
                let m = self.append(&w, op, kind, 0, None, None);
                (vec![w], vec![m])
            }
        };
        Ok(Outcome::Applied { wallets, movements })
    }
}

impl From<&KeptResponse> for StoredResponse {
    fn from(k: &KeptResponse) -> Self {
        k.response.clone()
    }
}
