//! One actor per live wallet: it orders every command that debits or changes its wallet and
//! answers reads from its state once a one-row version check shows the state is current (another
//! replica may have written since).

use std::{cell::RefCell, rc::Rc};

use actix::{fut::wrap_future, Actor, ActorFutureExt, AtomicResponse, Context, Handler, ResponseFuture};

use super::{
    messages::{Commit, Execute, GetWallet, LedgerFailure, Refresh},
    FintechDomain,
};
use crate::{
    actors::runtime::ActorRef,
    adapters::ledger::LedgerStore,
    domain::fintech::{LedgerOutcome as Outcome, Wallet, WalletId},
};

use super::writer::LedgerWriter;

/// The actor of one wallet.
pub struct WalletActor {
    id: WalletId,
    /// The wallet as last committed, shared with the answers of the commands in flight.
    state: Rc<RefCell<Option<Wallet>>>,
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
        Self { id, state: Rc::default(), store, writer, domain }
    }
}

/// Keep `wallet` as the state unless the state is newer.
fn take(state: &RefCell<Option<Wallet>>, wallet: &Wallet) {
    let mut state = state.borrow_mut();
    if state.as_ref().is_none_or(|s| s.version < wallet.version) {
        *state = Some(wallet.clone());
    }
}

impl Actor for WalletActor {
    type Context = Context<Self>;
}

impl Handler<Execute> for WalletActor {
    type Result = ResponseFuture<Result<Outcome, LedgerFailure>>;

    /// Commands of this wallet reach the ledger writer in the order they arrive here, and the
    /// writer commits in that order; a command does not wait for the previous one's commit, so
    /// that one busy wallet still fills the writer's batches. The answer waits for the commit as
    /// a task of its own: a wake-up of this actor polls none of the commands in flight.
    fn handle(&mut self, Execute(op): Execute, _: &mut Context<Self>) -> Self::Result {
        let committed = self.writer.ask_queued(Commit(op));
        let (id, state, domain) = (self.id, self.state.clone(), self.domain.clone());
        Box::pin(async move {
            let outcome = committed.await.map_err(|_| LedgerFailure::Unavailable)??;
            if let Outcome::Applied { wallets, .. } = &outcome {
                for wallet in wallets {
                    if wallet.id == id {
                        take(&state, wallet);
                    } else {
                        domain.tell(Refresh(wallet.clone()));
                    }
                }
            }
            Ok(outcome)
        })
    }
}

impl Handler<GetWallet> for WalletActor {
    type Result = AtomicResponse<Self, Result<Option<Wallet>, LedgerFailure>>;

    fn handle(&mut self, msg: GetWallet, _: &mut Context<Self>) -> Self::Result {
        let (store, id, cached) = (self.store.clone(), self.id, self.state.borrow().as_ref().map(|w| w.version));
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
            let mut state = act.state.borrow_mut();
            match fresh? {
                None => {}
                Some(None) => *state = None,
                Some(Some(wallet)) => *state = Some(wallet),
            }
            Ok(state.clone())
        })))
    }
}

impl Handler<Refresh> for WalletActor {
    type Result = ResponseFuture<Result<(), std::convert::Infallible>>;

    fn handle(&mut self, Refresh(wallet): Refresh, _: &mut Context<Self>) -> Self::Result {
        take(&self.state, &wallet);
        Box::pin(async { Ok(()) })
    }
}
