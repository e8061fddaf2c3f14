//! The ledger in process memory, for the embedded mode: one lock, commands applied in order with
//! the same rules and answers as PostgreSQL. Nothing survives the process.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::StoreError;
use crate::adapters::{outbox::MemOutbox, privacy::Vault};
use crate::domain::{
    fintech::{
        Book, FintechError, Hold, LedgerCommand, LedgerOp, LedgerOutcome as Outcome, Movement, Page, SealedOwners,
        Totals, TransactionRecord, Wallet, WalletId,
    },
    idempotency::{self, Kept},
    privacy::{Personal, SubjectKey},
};

/// What a key keeps, when it expires and when it was kept.
type KeptKey = (Kept, DateTime<Utc>, DateTime<Utc>);

#[derive(Default)]
struct State {
    book: Book,
    journal: HashMap<WalletId, Vec<Movement>>,
    /// What each key keeps, when it expires and when it was kept.
    keys: HashMap<(String, String), KeptKey>,
    /// The ledger transactions applied, by id.
    transactions: HashMap<uuid::Uuid, TransactionRecord>,
    net_external: i128,
}

/// The in-memory ledger.
#[derive(Clone)]
pub struct MemLedger {
    state: Arc<Mutex<State>>,
    outbox: MemOutbox,
    /// Seals the owners the lifecycle events carry; without one they carry none.
    vault: Option<Vault>,
}

impl MemLedger {
    /// An empty ledger whose events go to `outbox`.
    pub fn new(outbox: MemOutbox) -> Self {
        Self { state: Arc::default(), outbox, vault: None }
    }

    /// The same, its lifecycle events carrying their wallet's owner sealed by `vault`.
    pub fn with_vault(mut self, vault: Vault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The keys of the owners of the wallets `ops` open or change the status of, found before
    /// the ledger is locked (the vault may wait on its store).
    pub(super) async fn owner_keys(&self, ops: &[LedgerOp]) -> Result<HashMap<WalletId, SubjectKey>, StoreError> {
        let mut keys = HashMap::new();
        let Some(vault) = &self.vault else { return Ok(keys) };
        for op in ops {
            let (id, owner) = match &op.command {
                LedgerCommand::Open(w) => (w.id, w.owner.value().cloned()),
                LedgerCommand::SetStatus { wallet, .. } => {
                    (*wallet, self.wallet(*wallet).and_then(|w| w.owner.value().cloned()))
                }
                _ => continue,
            };
            if let Some(owner) = owner {
                keys.insert(id, vault.key_of(&owner).await?);
            }
        }
        Ok(keys)
    }

    /// Apply `ops` in order; the lifecycle events carry the owners sealed under `keys`.
    pub(super) fn commit(&self, ops: &[LedgerOp], keys: &HashMap<WalletId, SubjectKey>) -> Vec<Outcome> {
        let mut state = self.state.lock();
        let outcomes: Vec<Outcome> = ops
            .iter()
            .map(|op| {
                if let Some(claim) = &op.idempotency {
                    let held = state.keys.get(&(claim.scope.clone(), claim.key.clone()));
                    if held.is_some_and(|(_, expires_at, _)| !idempotency::expired(*expires_at, op.at)) {
                        return Outcome::DuplicateKey;
                    }
                }
                if op.once {
                    if let Some(record) = state.transactions.get(&op.transaction_id) {
                        return if record.recorded_by(&op.command) {
                            Outcome::DuplicateKey
                        } else {
                            Outcome::ConflictingDuplicate
                        };
                    }
                }
                let outcome = match state.apply(op) {
                    Ok(outcome) => outcome,
                    Err(refusal) => Outcome::Refused(refusal),
                };
                if let Some(claim) = &op.idempotency {
                    let kept = Kept {
                        fingerprint: claim.fingerprint.clone(),
                        request: claim.request.clone(),
                        result: Some(super::receipt_of(op, &outcome)),
                    };
                    state.keys.insert((claim.scope.clone(), claim.key.clone()), (kept, claim.expires_at, op.at));
                }
                outcome
            })
            .collect();
        let mut owners = SealedOwners::new();
        for outcome in &outcomes {
            if let Outcome::Applied { wallets, movements, .. } = outcome {
                // A key that does not seal (never: the vault's keys are well formed) leaves the
                // events without owner rather than the committed change unanswered.
                let _ = super::seal_owners(&mut owners, wallets, movements, |id| keys.get(id));
            }
        }
        // Appended under the ledger's lock: batches reach the outbox in commit order.
        let created_at = ops.last().map(|op| op.at).unwrap_or_else(Utc::now);
        self.outbox.append(created_at, super::events_of(ops, &outcomes, &owners));
        outcomes
    }

    pub(super) fn wallet(&self, id: WalletId) -> Option<Wallet> {
        self.state.lock().book.wallets.get(&id).cloned()
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

    pub(super) fn kept(&self, scope: &str, key: &str) -> Option<Kept> {
        self.state.lock().keys.get(&(scope.to_string(), key.to_string())).map(|(k, ..)| k.clone())
    }

    pub(super) fn purge_expired_keys(&self, now: DateTime<Utc>, limit: usize) -> u64 {
        let mut state = self.state.lock();
        let mut expired: Vec<_> = state
            .keys
            .iter()
            .filter(|(_, (_, at, _))| idempotency::expired(*at, now))
            .map(|(k, (_, at, _))| (*at, k.clone()))
            .collect();
        expired.sort();
        expired.truncate(limit);
        for (_, key) in &expired {
            state.keys.remove(key);
        }
        expired.len() as u64
    }

    pub(super) fn wallets_of(&self, subject: &str) -> Vec<WalletId> {
        let state = self.state.lock();
        let mut ids: Vec<WalletId> =
            state.book.wallets.values().filter(|w| w.owned_by(subject)).map(|w| w.id).collect();
        ids.sort();
        ids
    }

    /// Forget the subject's idempotency keys and, as nothing here is sealed, erase the owner and
    /// the references of the subject's wallets in place.
    pub(super) fn erase(&self, subject: &str) -> super::Erased {
        let mut state = self.state.lock();
        let before = state.keys.len();
        state.keys.retain(|(scope, _), _| scope != subject);
        let forgotten = (before - state.keys.len()) as u64;
        let owned: Vec<WalletId> = state.book.wallets.values().filter(|w| w.owned_by(subject)).map(|w| w.id).collect();
        let wallets = owned.len() as u64;
        for id in owned {
            if let Some(w) = state.book.wallets.get_mut(&id) {
                w.owner = Personal::Erased;
            }
            for m in state.journal.get_mut(&id).into_iter().flatten() {
                if m.reference.take().is_some() {
                    m.erased = true;
                }
            }
        }
        super::Erased { idempotency_keys: forgotten, wallets }
    }

    pub(super) fn forget_keys_kept_since(&self, cutoff: DateTime<Utc>, limit: usize) -> u64 {
        let mut state = self.state.lock();
        let mut old: Vec<_> =
            state.keys.iter().filter(|(_, (.., at))| *at < cutoff).map(|(k, (.., at))| (*at, k.clone())).collect();
        old.sort();
        old.truncate(limit);
        for (_, key) in &old {
            state.keys.remove(key);
        }
        old.len() as u64
    }

    pub(super) fn hold(&self, id: uuid::Uuid) -> Option<Hold> {
        self.state.lock().book.holds.get(&id).cloned()
    }

    pub(super) fn expired_holds(&self, now: DateTime<Utc>, limit: usize) -> Vec<Hold> {
        self.state.lock().book.expired_holds(now, limit)
    }

    pub(super) fn totals(&self) -> Totals {
        let state = self.state.lock();
        Totals {
            balances: state.book.wallets.values().map(|w| i128::from(w.balance)).sum(),
            net_external: state.net_external,
        }
    }
}

impl State {
    fn apply(&mut self, op: &LedgerOp) -> Result<Outcome, FintechError> {
        let change = self.book.apply(op)?;
        let currency = change.wallets.first().map(|w| w.currency.code());
        if let Some(record) = currency.and_then(|c| TransactionRecord::of(&op.command, c)) {
            self.transactions.insert(op.transaction_id, record);
        }
        for m in &change.movements {
            self.journal.entry(m.wallet_id).or_default().push(m.clone());
        }
        self.net_external += change.net_external;
        Ok(Outcome::Applied { wallets: change.wallets, movements: change.movements, holds: change.holds })
    }
}
