//! Fintech actors. The supervised domain actor `fintech` owns the wallets' entity actors (one
//! [`WalletActor`] per wallet in use, under the runtime's entity facility: spawned on demand,
//! passivated when idle, capped in number, restarted alone after a panic) and routes every
//! command and read to them. The supervised `ledger-writer` commits what the wallet actors send
//! it in shared transactions (group commit).

pub mod client;
pub mod events;
pub mod messages;
pub mod privacy;
pub mod purge;
pub mod sweep;
pub mod wallet;
pub mod writer;

use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    time::Duration,
};

pub use client::{CallError, FintechClient};
pub use messages::{Commit, Execute, ForgetOwners, ForgetState, GetMovements, GetWallet, LedgerFailure, Refresh};
pub use purge::KeyPurger;
pub use sweep::HoldSweeper;
pub use wallet::WalletActor;
pub use writer::LedgerWriter;

use crate::{
    actors::runtime::{
        ActorRef, Ctx, Entities, EntityFaultError, EntityKind, EntityPolicy, Handle, InjectEntityFault, Managed, Reply,
    },
    adapters::ledger::LedgerStore,
    domain::{
        fintech::{LedgerOutcome, Page, Wallet, WalletId},
        idempotency::Kept,
    },
    telemetry::{self, Metrics},
};

/// The domain actor's own handle, known once it is spawned (wallet actors report through it).
pub type SelfRef = Arc<OnceLock<ActorRef<FintechDomain>>>;

/// Registered name of the fintech domain actor.
pub const NAME: &str = "fintech";

/// The fintech domain actor.
pub struct FintechDomain {
    store: LedgerStore,
    metrics: Metrics,
    policy: EntityPolicy,
    wallets: Option<Entities<WalletId, WalletActor>>,
    kind: EntityKind,
    writer: ActorRef<LedgerWriter>,
    me: SelfRef,
}

impl FintechDomain {
    /// A domain actor for `store`; its wallet actors (of entity `kind`) commit through `writer`.
    pub fn new(
        store: LedgerStore,
        writer: ActorRef<LedgerWriter>,
        me: SelfRef,
        metrics: Metrics,
        kind: EntityKind,
        policy: EntityPolicy,
    ) -> Self {
        Self { store, metrics, policy, wallets: None, kind, writer, me }
    }

    /// The wallets' entities, made once the domain actor's own handle is known.
    fn wallets(&mut self) -> Option<&mut Entities<WalletId, WalletActor>> {
        if self.wallets.is_none() {
            let domain = self.me.get()?.clone();
            let (store, writer) = (Arc::new(self.store.clone()), self.writer.clone());
            self.wallets = Some(Entities::new(self.kind.clone(), self.policy.clone(), move |id: &WalletId| {
                WalletActor::new(*id, store.clone(), writer.clone(), domain.clone())
            }));
        }
        self.wallets.as_mut()
    }
}

impl Managed for FintechDomain {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        let every = (self.policy.idle / 4).max(Duration::from_secs(1));
        actix::AsyncContext::run_interval(ctx, every, |host, _| {
            if let Some(wallets) = host.actor().wallets.as_mut() {
                wallets.passivate();
            }
        });
        crate::actors::runtime::every(ctx, CONSERVATION_EVERY, || CheckConservation);
    }

    fn drained(&mut self, _: &mut Ctx<Self>) {
        if let Some(wallets) = self.wallets.as_mut() {
            wallets.clear();
        }
    }
}

impl Handle<Execute> for FintechDomain {
    fn handle(&mut self, msg: Execute, _: &mut Ctx<Self>) -> Reply<Self, Result<LedgerOutcome, LedgerFailure>> {
        let owner = msg.0.command.owner();
        let Some(wallets) = self.wallets() else { return Reply::Now(Err(LedgerFailure::Unavailable)) };
        let answer = wallets.get(&owner).ask_queued(msg);
        Reply::later(async move { answer.await.unwrap_or(Err(LedgerFailure::Unavailable)) })
    }
}

impl Handle<GetWallet> for FintechDomain {
    fn handle(&mut self, msg: GetWallet, _: &mut Ctx<Self>) -> Reply<Self, Result<Option<Wallet>, LedgerFailure>> {
        let Some(wallets) = self.wallets() else { return Reply::Now(Err(LedgerFailure::Unavailable)) };
        let answer = wallets.get(&msg.id).ask_queued(msg);
        Reply::later(async move { answer.await.unwrap_or(Err(LedgerFailure::Unavailable)) })
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
        if let Some(wallets) = self.wallets.as_ref() {
            let id = msg.0.id;
            wallets.tell_live(&id, msg);
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<ForgetOwners> for FintechDomain {
    fn handle(&mut self, msg: ForgetOwners, _: &mut Ctx<Self>) -> Reply<Self, Result<(), Infallible>> {
        if let Some(wallets) = self.wallets.as_ref() {
            for id in &msg.0 {
                wallets.tell_live(id, ForgetState);
            }
        }
        Reply::Now(Ok(()))
    }
}

impl Handle<InjectEntityFault> for FintechDomain {
    fn handle(&mut self, msg: InjectEntityFault, _: &mut Ctx<Self>) -> Reply<Self, Result<(), EntityFaultError>> {
        match self.wallets() {
            Some(wallets) => Reply::Later(wallets.inject(msg)),
            None => Reply::Now(Err(EntityFaultError::NotAnId(msg.entity))),
        }
    }
}
