//! Fintech actors. The supervised domain actor `fintech` spawns one [`WalletActor`] per wallet in
//! use (on its own thread, or spread over a few threads of their own), routes every command and
//! read to it, passivates it after an idle period and keeps at most a bounded number alive. The
//! supervised `ledger-writer` commits what the wallet actors send it in shared transactions (group
//! commit).

pub mod client;
pub mod messages;
pub mod wallet;
pub mod writer;

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use actix::{Actor, Addr};
use actix_rt::{Arbiter, ArbiterHandle};

pub use client::{CallError, FintechClient};
pub use messages::{Commit, Execute, GetLiveWallets, GetMovements, GetWallet, LedgerFailure, Refresh};
pub use wallet::WalletActor;
pub use writer::LedgerWriter;

use crate::{
    actors::runtime::{ActorRef, Ctx, Handle, Managed, Reply},
    adapters::ledger::LedgerStore,
    domain::{
        fintech::{LedgerOutcome as Outcome, Page, Wallet, WalletId},
        idempotency::Kept,
    },
    telemetry::{self, Metrics},
};

/// The domain actor's own handle, known once it is spawned (wallet actors report through it).
pub type SelfRef = Arc<OnceLock<ActorRef<FintechDomain>>>;

/// Registered name of the fintech domain actor.
pub const NAME: &str = "fintech";

/// How wallet actors are kept.
#[derive(Debug, Clone)]
pub struct WalletPolicy {
    /// A wallet actor unused this long is stopped.
    pub idle: Duration,
    /// Most wallet actors alive at once; the least recently used go first.
    pub max_live: usize,
    /// Threads of their own the wallet actors are spread over; 0 keeps them on the domain
    /// actor's thread.
    pub threads: usize,
}

struct Live {
    addr: Addr<WalletActor>,
    used: Instant,
}

/// The fintech domain actor.
pub struct FintechDomain {
    store: LedgerStore,
    writer: ActorRef<LedgerWriter>,
    me: SelfRef,
    metrics: Metrics,
    policy: WalletPolicy,
    threads: Vec<ArbiterHandle>,
    wallets: HashMap<WalletId, Live>,
    next_thread: usize,
}

impl FintechDomain {
    /// A domain actor for `store`; wallet actors commit through `writer`.
    pub fn new(
        store: LedgerStore,
        writer: ActorRef<LedgerWriter>,
        me: SelfRef,
        metrics: Metrics,
        policy: WalletPolicy,
    ) -> Self {
        Self { store, writer, me, metrics, policy, threads: Vec::new(), wallets: HashMap::new(), next_thread: 0 }
    }

    /// The live actor of `id`, spawned if needed.
    fn wallet(&mut self, id: WalletId) -> Option<Addr<WalletActor>> {
        let now = Instant::now();
        if let Some(live) = self.wallets.get_mut(&id) {
            if live.addr.connected() {
                live.used = now;
                return Some(live.addr.clone());
            }
        }
        let me = self.me.get()?.clone();
        if self.wallets.len() >= self.policy.max_live {
            self.evict_oldest();
        }
        let (store, writer) = (self.store.clone(), self.writer.clone());
        let make = move |_: &mut actix::Context<WalletActor>| WalletActor::new(id, store, writer, me);
        let addr = if self.policy.threads == 0 {
            // Here, a message from the domain actor to a wallet actor (and back) is a queue
            // push on the same thread: no wake-up of another thread.
            actix::Actor::create(make)
        } else {
            if self.threads.is_empty() {
                self.threads = (0..self.policy.threads).map(|_| Arbiter::new().handle()).collect();
            }
            let thread = &self.threads[self.next_thread % self.threads.len()];
            self.next_thread = self.next_thread.wrapping_add(1);
            WalletActor::start_in_arbiter(thread, make)
        };
        self.wallets.insert(id, Live { addr: addr.clone(), used: now });
        Some(addr)
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.wallets.iter().min_by_key(|(_, l)| l.used).map(|(id, _)| *id) {
            // Dropping the last address stops the actor once its mailbox is empty.
            self.wallets.remove(&oldest);
        }
    }

    fn passivate(&mut self) {
        let idle = self.policy.idle;
        self.wallets.retain(|_, live| live.used.elapsed() < idle && live.addr.connected());
    }
}

impl Drop for FintechDomain {
    /// Wallet actors on threads of their own go with the domain actor.
    fn drop(&mut self) {
        for thread in self.threads.drain(..) {
            thread.stop();
        }
    }
}

impl Managed for FintechDomain {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        let every = (self.policy.idle / 4).max(Duration::from_secs(1));
        actix::AsyncContext::run_interval(ctx, every, |host, _| host.actor().passivate());
        crate::actors::runtime::every(ctx, CONSERVATION_EVERY, || CheckConservation);
    }

    fn drained(&mut self, _: &mut Ctx<Self>) {
        self.wallets.clear();
        for thread in self.threads.drain(..) {
            thread.stop();
        }
    }
}

impl Handle<Execute> for FintechDomain {
    fn handle(&mut self, msg: Execute, _: &mut Ctx<Self>) -> Reply<Self, Result<Outcome, LedgerFailure>> {
        let owner = msg.0.command.owner();
        let Some(addr) = self.wallet(owner) else { return Reply::Now(Err(LedgerFailure::Unavailable)) };
        Reply::later(async move { addr.send(msg).await.unwrap_or(Err(LedgerFailure::Unavailable)) })
    }
}

impl Handle<GetWallet> for FintechDomain {
    fn handle(&mut self, msg: GetWallet, _: &mut Ctx<Self>) -> Reply<Self, Result<Option<Wallet>, LedgerFailure>> {
        let Some(addr) = self.wallet(msg.id) else { return Reply::Now(Err(LedgerFailure::Unavailable)) };
        Reply::later(async move { addr.send(msg).await.unwrap_or(Err(LedgerFailure::Unavailable)) })
    }
}

impl Handle<GetMovements> for FintechDomain {
    fn handle(&mut self, msg: GetMovements, _: &mut Ctx<Self>) -> Reply<Self, Result<Page, LedgerFailure>> {
        let store = self.store.clone();
        Reply::later(async move {
            store.movements(msg.wallet, msg.before, msg.limit).await.map_err(|_| LedgerFailure::Store)
        })
    }
}

/// How often the conservation gauge is recomputed.
pub const CONSERVATION_EVERY: Duration = Duration::from_secs(5);

/// Recompute the conservation gauge: every balance summed minus money that entered and left,
/// which double entry keeps at 0.
#[derive(Debug, Clone, Copy)]
pub struct CheckConservation;

impl actix::Message for CheckConservation {
    type Result = Result<i128, LedgerFailure>;
}

impl Handle<CheckConservation> for FintechDomain {
    fn handle(&mut self, _: CheckConservation, _: &mut Ctx<Self>) -> Reply<Self, Result<i128, LedgerFailure>> {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        Reply::later(async move {
            let totals = store.totals().await.map_err(|_| LedgerFailure::Store)?;
            let gap = totals.balances - totals.net_external;
            metrics.with(|| metrics::gauge!(telemetry::LEDGER_CONSERVATION_GAP).set(gap as f64));
            if gap != 0 {
                tracing::error!(
                    gap = gap as f64,
                    "ledger conservation broken: balances differ from net external flows"
                );
            }
            Ok(gap)
        })
    }
}

/// What an idempotency key of `scope` keeps.
#[derive(Debug, Clone)]
pub struct GetKept {
    /// The caller.
    pub scope: String,
    /// The key.
    pub key: String,
}

impl actix::Message for GetKept {
    type Result = Result<Option<Kept>, LedgerFailure>;
}

impl Handle<GetKept> for FintechDomain {
    fn handle(&mut self, msg: GetKept, _: &mut Ctx<Self>) -> Reply<Self, Result<Option<Kept>, LedgerFailure>> {
        let store = self.store.clone();
        Reply::later(async move { store.kept(&msg.scope, &msg.key).await.map_err(|_| LedgerFailure::Store) })
    }
}

impl Handle<Refresh> for FintechDomain {
    fn handle(&mut self, msg: Refresh, _: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        if let Some(live) = self.wallets.get(&msg.0.id) {
            live.addr.do_send(msg);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<GetLiveWallets> for FintechDomain {
    fn handle(&mut self, _: GetLiveWallets, _: &mut Ctx<Self>) -> Reply<Self, Result<usize, Infallible>> {
        Reply::Now(Ok(self.wallets.len()))
    }
}
