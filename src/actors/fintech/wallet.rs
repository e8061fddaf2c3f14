//! One actor per live wallet: it orders every command that debits or changes its wallet and
//! answers reads from its state once a one-row version check shows the state is current (another
//! replica may have written since).

use actix::{
    fut::wrap_future, Actor, ActorFutureExt, AtomicResponse, Context, Handler, ResponseActFuture, ResponseFuture,
};

use super::{
    messages::{Commit, Execute, GetWallet, LedgerFailure, Refresh},
    FintechDomain,
};
use crate::{
    actors::runtime::ActorRef,
    adapters::ledger::{LedgerStore, Outcome},
    domain::fintech::{Wallet, WalletId},
};

use super::writer::LedgerWriter;

/// The actor of one wallet.
pub struct WalletActor {
    id: WalletId,
    state: Option<Wallet>,
    store: LedgerStore,
    writer: ActorRef<LedgerWriter>,
    domain: ActorRef<FintechDomain>,
}

impl WalletActor {
    /// An actor for `id`; its state loads on first use.
    pub fn new(
        id: WalletId,
        store: LedgerStore,
        writer: ActorRef<LedgerWriter>,
        domain: ActorRef<FintechDomain>,
    ) -> Self {
        Self { id, state: None, store, writer, domain }
    }

    fn take(&mut self, wallet: &Wallet) {
        if self.state.as_ref().is_none_or(|s| s.version < wallet.version) {
            self.state = Some(wallet.clone());
        }
    }
}

impl Actor for WalletActor {
    type Context = Context<Self>;
}

impl Handler<Execute> for WalletActor {
    type Result = ResponseActFuture<Self, Result<Outcome, LedgerFailure>>;

    /// Commands of this wallet reach the ledger writer in the order they arrive here, and the
    /// writer commits in that order; a command does not wait for the previous one's commit, so
    /// that one busy wallet still fills the writer's batches.
    fn handle(&mut self, Execute(op): Execute, _: &mut Context<Self>) -> Self::Result {
        let committed = self.writer.ask_queued(Commit(op));
        Box::pin(wrap_future::<_, Self>(committed).map(|answer, act, _| {
            let outcome = answer.map_err(|_| LedgerFailure::Unavailable)??;
            if let Outcome::Applied { wallets, .. } = &outcome {
                for wallet in wallets {
                    if wallet.id == act.id {
                        act.take(wallet);
                    } else {
                        act.domain.tell(Refresh(wallet.clone()));
                    }
                }
            }
            Ok(outcome)
        }))
    }
}

impl Handler<GetWallet> for WalletActor {
    type Result = AtomicResponse<Self, Result<Option<Wallet>, LedgerFailure>>;

    fn handle(&mut self, msg: GetWallet, _: &mut Context<Self>) -> Self::Result {
        let (store, id, cached) = (self.store.clone(), self.id, self.state.as_ref().map(|w| w.version));
        let trust_cache = !msg.fresh && cached.is_some();
        let fetch = async move {
            if trust_cache {
                return Ok(None);
            }
            let stored = store.version(id).await.map_err(|_| LedgerFailure::Store)?;
            match (stored, cached) {
                (Some(v), Some(c)) if v == c => Ok(None),
                (None, _) => Ok(Some(None)),
                _ => store.wallet(id).await.map(Some).map_err(|_| LedgerFailure::Store),
            }
        };
        AtomicResponse::new(Box::pin(wrap_future::<_, Self>(fetch).map(|fresh, act, _| {
            match fresh? {
                None => {}
                Some(None) => act.state = None,
                Some(Some(wallet)) => act.state = Some(wallet),
            }
            Ok(act.state.clone())
        })))
    }
}

impl Handler<Refresh> for WalletActor {
    type Result = ResponseFuture<Result<(), std::convert::Infallible>>;

    fn handle(&mut self, Refresh(wallet): Refresh, _: &mut Context<Self>) -> Self::Result {
        self.take(&wallet);
        Box::pin(async { Ok(()) })
    }
}
