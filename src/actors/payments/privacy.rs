//! What payments hold about a data subject, for the privacy module: the top-ups asked for and
//! the payouts made from the subject's wallets. Both are financial records, kept as long as the
//! ledger they moved money in; they carry no personal field of their own (a payout's destination
//! is the provider's token for a bank account, not an account number), so an erasure removes
//! nothing here.

use std::collections::BTreeMap;

use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use super::PaymentsStore;
use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::ledger::LedgerStore,
    domain::privacy::Subject,
};

/// Name of payments' part of an export.
pub const NAME: &str = "payments";

/// Payments as a holder of personal data.
#[derive(Clone)]
pub struct PaymentsHolder {
    ledger: LedgerStore,
    store: PaymentsStore,
}

impl PaymentsHolder {
    /// The holder of what `store` keeps about the wallets `ledger` finds for a subject.
    pub fn new(ledger: LedgerStore, store: PaymentsStore) -> Self {
        Self { ledger, store }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

impl Holder for PaymentsHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The subject's top-ups (without their client secret: a credential for confirming the
    /// payment, not information about the subject) and payouts, oldest first.
    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let holder = self.clone();
        async move {
            let wallets = holder.ledger.wallets_of(&subject).await.map_err(failed)?;
            let top_ups: Vec<Value> = holder
                .store
                .top_ups_of(&wallets)
                .await
                .map_err(failed)?
                .into_iter()
                .map(|kept| {
                    let t = kept.item;
                    json!({
                        "intent_id": t.intent,
                        "wallet_id": t.wallet,
                        "amount": t.amount,
                        "currency": t.currency,
                        "status_when_asked": t.status,
                        "created_at": kept.created_at,
                    })
                })
                .collect();
            let payouts: Vec<Value> = holder
                .store
                .payouts_of(&wallets)
                .await
                .map_err(failed)?
                .into_iter()
                .map(|kept| {
                    let p = kept.item;
                    json!({
                        "id": p.id,
                        "wallet_id": p.wallet,
                        "amount": p.amount,
                        "currency": p.currency,
                        "destination": p.destination,
                        "provider_id": p.provider_id,
                        "status": p.status.as_str(),
                        "failure": p.failure,
                        "created_at": kept.created_at,
                    })
                })
                .collect();
            Ok(json!({ "top_ups": top_ups, "payouts": payouts }))
        }
        .boxed_local()
    }

    fn erase(&self, _subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }
}
