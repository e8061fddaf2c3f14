//! One entity actor per live wallet: it orders every command that debits or changes its wallet
//! and answers reads from its state once a one-row version check shows the state is current
//! (another replica may have written since).

use std::{convert::Infallible, sync::Arc};

use super::{
    messages::{Commit, Execute, ForgetState, GetWallet, LedgerFailure, Refresh},
    writer::LedgerWriter,
    FintechDomain,
};
use crate::{
    actors::runtime::{ActorRef, Ctx, Handle, Managed, Reply},
    adapters::ledger::LedgerStore,
    domain::fintech::{LedgerOutcome, Wallet, WalletId},
};

/// Name of the wallets' entity kind (the `actor` label of their metrics).
pub const KIND: &str = "wallet";

/// The actor of one wallet.
pub struct WalletActor {
    id: WalletId,
    /// The wallet as last committed; `None` until loaded (or if it does not exist).
    state: Option<Wallet>,
    /// Shared by the wallets' actors: one pointer each, not a copy of the store's handles.
    store: Arc<LedgerStore>,
    writer: ActorRef<LedgerWriter>,
    domain: ActorRef<FintechDomain>,
}

impl WalletActor {
    /// An actor for `id`; its state loads on first use.
    pub fn new(
        id: WalletId,
        store: Arc<LedgerStore>,
        writer: ActorRef<LedgerWriter>,
        domain: ActorRef<FintechDomain>,
    ) -> Self {
        Self { id, state: None, store, writer, domain }
    }

    /// Keep `wallet` as the state unless the state is newer.
    fn take(&mut self, wallet: Wallet) {
        if self.state.as_ref().is_none_or(|s| s.version < wallet.version) {
            self.state = Some(wallet);
        }
    }
}

impl Managed for WalletActor {}

impl Handle<Execute> for WalletActor {
    /// Commands of this wallet reach the ledger writer in the order they arrive here, and the
    /// writer commits in that order; a command does not wait for the previous one's commit, so
    /// that one busy wallet still fills the writer's batches. The answer waits for the commit as
    /// a task of its own, which changes no state: every wallet the command changed (this one
    /// included) takes its new state from a `Refresh`, queued before the answer is sent.
    fn handle(&mut self, Execute(op): Execute, _: &mut Ctx<Self>) -> Reply<Self, Result<LedgerOutcome, LedgerFailure>> {
        let committed = self.writer.ask_queued(Commit(op));
        let domain = self.domain.clone();
        Reply::later(async move {
            let outcome = committed.await.map_err(|_| LedgerFailure::Unavailable)??;
            if let LedgerOutcome::Applied { wallets, .. } = &outcome {
                for wallet in wallets {
                    domain.tell(Refresh(wallet.clone()));
                }
            }
            Ok(outcome)
        })
    }
}

impl Handle<GetWallet> for WalletActor {
    fn handle(&mut self, msg: GetWallet, _: &mut Ctx<Self>) -> Reply<Self, Result<Option<Wallet>, LedgerFailure>> {
        let cached = self.state.as_ref().map(|w| w.version);
        if !msg.fresh && cached.is_some() {
            return Reply::Now(Ok(self.state.clone()));
        }
        let (store, id) = (self.store.clone(), self.id);
        let fetch = async move {
            let stored = store.version(id).await.map_err(|_| LedgerFailure::Store)?;
            match (stored, cached) {
                (Some(v), Some(c)) if v == c => Ok(None),
                (None, _) => Ok(Some(None)),
                _ => store.wallet(id).await.map(Some).map_err(|_| LedgerFailure::Store),
            }
        };
        // The state changes after the await: no other message is handled meanwhile.
        Reply::atomic(fetch, |fresh: Result<Option<Option<Wallet>>, LedgerFailure>, actor: &mut Self, _| {
            match fresh? {
                None => {}
                Some(None) => actor.state = None,
                Some(Some(wallet)) => actor.state = Some(wallet),
            }
            Ok(actor.state.clone())
        })
    }
}

impl Handle<Refresh> for WalletActor {
    fn handle(&mut self, Refresh(wallet): Refresh, _: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        self.take(wallet);
        Reply::Now(Ok(()))
    }
}

impl Handle<ForgetState> for WalletActor {
    fn handle(&mut self, _: ForgetState, _: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        self.state = None;
        Reply::Now(Ok(()))
    }
}
