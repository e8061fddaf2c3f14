//! What fintech holds about a data subject, for the privacy module: their wallets and movements
//! (exported; kept on erasure, sealed under the subject's key, so that balances and conservation
//! still hold), and their idempotency keys (removed on erasure), and the live wallet actors'
//! state (dropped on erasure, so that nothing holds the owner in the clear).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use super::FintechClient;
use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::ledger::LedgerStore,
    domain::{
        fintech::PAGE_MAX,
        privacy::{Category, Subject},
    },
};

/// Name of fintech's part of an export.
pub const NAME: &str = "fintech";

/// Fintech as a holder of personal data.
#[derive(Clone)]
pub struct FintechHolder {
    store: LedgerStore,
    client: FintechClient,
}

impl FintechHolder {
    /// The holder over `store`, whose live wallet actors `client` reaches.
    pub fn new(store: LedgerStore, client: FintechClient) -> Self {
        Self { store, client }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

impl Holder for FintechHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let holder = self.clone();
        async move {
            let mut wallets = Vec::new();
            for id in holder.store.wallets_of(&subject).await.map_err(failed)? {
                let Some(wallet) = holder.store.wallet(id).await.map_err(failed)? else { continue };
                let mut movements = Vec::new();
                let mut before = None;
                loop {
                    let page = holder.store.movements(id, before, PAGE_MAX).await.map_err(failed)?;
                    movements.extend(page.items);
                    match page.next_before {
                        Some(next) => before = Some(next),
                        None => break,
                    }
                }
                wallets.push(json!({
                    "id": wallet.id,
                    "owner": wallet.owner,
                    "erased": wallet.owner.is_erased(),
                    "currency": wallet.currency,
                    "balance": wallet.balance,
                    "status": wallet.status,
                    "created_at": wallet.created_at,
                    "movements": movements,
                }));
            }
            Ok(json!({ "wallets": wallets }))
        }
        .boxed_local()
    }

    /// Idempotency keys kept longer than `fintech.idempotency_ttl_secs` (their expiry).
    fn expire(
        &self,
        category: Category,
        cutoff: DateTime<Utc>,
        batch: usize,
    ) -> LocalBoxFuture<'static, Result<u64, HolderError>> {
        let store = self.store.clone();
        async move {
            if category != Category::IdempotencyResponses {
                return Ok(0);
            }
            store.forget_keys_kept_since(cutoff, batch).await.map_err(failed)
        }
        .boxed_local()
    }

    fn erase(&self, subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        let holder = self.clone();
        async move {
            let wallets = holder.store.wallets_of(&subject).await.map_err(failed)?;
            let erased = holder.store.erase(&subject).await.map_err(failed)?;
            holder.client.forget_owners(wallets).await.map_err(failed)?;
            Ok(BTreeMap::from([
                ("idempotency_keys".to_owned(), erased.idempotency_keys),
                ("wallets".to_owned(), erased.wallets),
            ]))
        }
        .boxed_local()
    }
}
