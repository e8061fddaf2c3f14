//! What ESG holds about a data subject, for the privacy module: their activities (with their
//! footprints), participations, wallet changes, monthly aggregates, totals, score and
//! leaderboard membership, all under their blind index. On erasure every row goes, the boards that showed them are rebuilt without them,
//! and the live subject actor forgets its state.

use std::collections::BTreeMap;

use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use super::EsgClient;
use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::esg::{EsgStore, PAGE_MAX},
    domain::privacy::Subject,
};

/// Name of ESG's part of an export.
pub const NAME: &str = "esg";

/// ESG as a holder of personal data.
#[derive(Clone)]
pub struct EsgHolder {
    store: EsgStore,
    client: EsgClient,
}

impl EsgHolder {
    /// The holder over `store`, whose live actors `client` reaches.
    pub fn new(store: EsgStore, client: EsgClient) -> Self {
        Self { store, client }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

impl Holder for EsgHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let holder = self.clone();
        async move {
            let state = holder.store.subject(&subject.index).await.map_err(failed)?;
            let mut activities = Vec::new();
            let mut before = None;
            loop {
                let page = holder.store.activities(&subject.index, before, PAGE_MAX).await.map_err(failed)?;
                let full = page.len() == PAGE_MAX;
                before = page.last().map(|a| (a.recorded_at, a.id));
                activities.extend(page);
                if !full {
                    break;
                }
            }
            let since = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
            let months = holder.store.months(&subject.index, since).await.map_err(failed)?;
            let leaderboard = holder.store.member(&subject.index).await.map_err(failed)?;
            let participations = holder.store.participations(&subject.index).await.map_err(failed)?;
            let wallet_changes = holder.store.wallet_changes(&subject.index).await.map_err(failed)?;
            Ok(json!({
                "leaderboard": leaderboard.map(|community| json!({ "community": community })),
                "totals": state.as_ref().map(|s| s.totals),
                "score": state.as_ref().and_then(|s| s.score.clone()),
                "activities": activities,
                "months": months,
                "participations": participations,
                "wallet_changes": wallet_changes,
            }))
        }
        .boxed_local()
    }

    fn erase(&self, subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        let holder = self.clone();
        async move {
            holder.client.leave_boards(&subject.id).await.map_err(failed)?;
            let erased = holder.store.erase(&subject.index).await.map_err(failed)?;
            holder.client.forget(&subject.id).await.map_err(failed)?;
            Ok(BTreeMap::from([
                ("activities".to_owned(), erased.activities),
                ("participations".to_owned(), erased.participations),
                ("wallet_changes".to_owned(), erased.wallet_changes),
            ]))
        }
        .boxed_local()
    }
}
