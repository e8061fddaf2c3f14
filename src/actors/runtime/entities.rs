//! Entity actors: one managed actor per aggregate id (a wallet, a ride, a timeline), spawned on
//! demand by the actor that owns the kind, passivated when idle and capped in number. Each runs
//! in a [`Host`] like the long-lived actors: a panic or fatal error restarts that entity alone,
//! with its own backoff, and is counted under the kind. The kind has one supervision record in
//! the registry (never one per id): its counters add up its entities', so health, metrics and
//! `/system/actors` show the kind.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Arc,
    time::{Duration, Instant},
};

use actix::{Addr, Message, Supervisor};
use actix_rt::{Arbiter, ArbiterHandle};

use futures::future::LocalBoxFuture;

use super::{
    fault::{FaultKind, InjectFault},
    host::{Envelope, Handle, Host, Managed, MessageMetricsCache, Succeeded},
    policy::RestartPolicy,
    registry::{ActorEntry, ActorKind},
    supervisor::AskError,
};

/// How the entities of a kind are kept.
#[derive(Debug, Clone)]
pub struct EntityPolicy {
    /// An entity unused this long is stopped.
    pub idle: Duration,
    /// Most entities alive at once; the least recently used go first.
    pub max_live: usize,
    /// Threads of their own the entities are spread over; 0 keeps them on the owner's thread.
    pub threads: usize,
}

/// A kind of entity as registered with the supervision: its record (with the restart policy of
/// its entities) and metrics.
/// Cheap to clone and `Send`, so that the owner's factory can hold it.
#[derive(Clone)]
pub struct EntityKind {
    pub(crate) entry: Arc<ActorEntry>,
    /// The metrics, and handles per message type, shared by all the entities of the kind.
    pub(crate) messages: Arc<MessageMetricsCache>,
    pub(crate) ask_timeout: Duration,
}

impl EntityKind {
    /// The kind's name: the `actor` label of its metrics.
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// The kind's supervision record.
    pub fn entry(&self) -> &Arc<ActorEntry> {
        &self.entry
    }
}

/// The handle of one live entity.
pub struct EntityRef<E: Managed> {
    addr: Addr<Host<E>>,
    entry: Arc<ActorEntry>,
    ask_timeout: Duration,
}

impl<E: Managed> Clone for EntityRef<E> {
    fn clone(&self) -> Self {
        Self { addr: self.addr.clone(), entry: self.entry.clone(), ask_timeout: self.ask_timeout }
    }
}

impl<E: Managed> EntityRef<E> {
    /// Send `msg` and wait for the answer, at most the runtime's ask timeout.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, AskError>
    where
        E: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        self.ask_queued(msg).await
    }

    /// Queue `msg` now and return the future of its answer: messages queued one after the other
    /// are handled in that order.
    pub fn ask_queued<M>(&self, msg: M) -> impl std::future::Future<Output = Result<M::Result, AskError>> + 'static
    where
        E: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        let request = self.addr.send(Envelope::new(msg, &self.entry));
        let (timeout, name) = (self.ask_timeout, self.entry.name.clone());
        async move {
            match tokio::time::timeout(timeout, request).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(AskError::Unavailable { actor: name, retry_after: Duration::from_secs(1) }),
                Err(_) => Err(AskError::Timeout { actor: name, timeout }),
            }
        }
    }

    /// Queue `msg` without waiting for an answer.
    pub fn tell<M>(&self, msg: M)
    where
        E: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        self.addr.do_send(Envelope::new(msg, &self.entry));
    }

    /// Whether the entity still runs (or is restarting).
    pub fn connected(&self) -> bool {
        self.addr.connected()
    }
}

/// A live entity as its owner keeps it: a handle without the ask timeout, which is the kind's.
struct Live<E: Managed> {
    addr: Addr<Host<E>>,
    entry: Arc<ActorEntry>,
    used: Instant,
}

impl<E: Managed> Live<E> {
    fn entity(&self, kind: &EntityKind) -> EntityRef<E> {
        EntityRef { addr: self.addr.clone(), entry: self.entry.clone(), ask_timeout: kind.ask_timeout }
    }
}

type Make<K, E> = Arc<dyn Fn(&K) -> E + Send + Sync>;

/// The live entities of one kind, owned by one actor (the domain actor of the kind).
pub struct Entities<K, E: Managed> {
    kind: EntityKind,
    policy: EntityPolicy,
    make: Make<K, E>,
    live: HashMap<K, Live<E>>,
    threads: Vec<ArbiterHandle>,
    next_thread: usize,
}

impl<K, E> Entities<K, E>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    E: Managed,
{
    /// No entity alive yet; `make` builds an entity's state from its id, on first use and after
    /// each of its restarts.
    pub fn new(kind: EntityKind, policy: EntityPolicy, make: impl Fn(&K) -> E + Send + Sync + 'static) -> Self {
        Self { kind, policy, make: Arc::new(make), live: HashMap::new(), threads: Vec::new(), next_thread: 0 }
    }

    /// The entity of `id`, spawned if it is not alive.
    pub fn get(&mut self, id: &K) -> EntityRef<E> {
        let now = Instant::now();
        if let Some(live) = self.live.get_mut(id) {
            if live.addr.connected() {
                live.used = now;
                return live.entity(&self.kind);
            }
        }
        if self.live.len() >= self.policy.max_live {
            self.evict_oldest();
        }
        let live = self.spawn(id, now);
        let entity = live.entity(&self.kind);
        self.live.insert(id.clone(), live);
        entity
    }

    /// Queue `msg` for the entity of `id` if it is alive (without waiting for an answer); whether
    /// it was.
    pub fn tell_live<M>(&self, id: &K, msg: M) -> bool
    where
        E: Handle<M>,
        M: Message + Send + 'static,
        M::Result: Succeeded + Send + 'static,
    {
        match self.live.get(id).filter(|l| l.addr.connected()) {
            Some(live) => {
                live.addr.do_send(Envelope::new(msg, &live.entry));
                true
            }
            None => false,
        }
    }

    /// Stop the entities idle for longer than the policy allows.
    pub fn passivate(&mut self) {
        let idle = self.policy.idle;
        self.live.retain(|_, live| live.used.elapsed() < idle && live.addr.connected());
    }

    /// Stop every entity and the threads they ran on.
    pub fn clear(&mut self) {
        self.live.clear();
        for thread in self.threads.drain(..) {
            thread.stop();
        }
    }

    fn evict_oldest(&mut self) {
        if let Some(oldest) = self.live.iter().min_by_key(|(_, l)| l.used).map(|(id, _)| id.clone()) {
            // Dropping the last handle stops the entity once its mailbox is empty.
            self.live.remove(&oldest);
        }
    }

    fn spawn(&mut self, id: &K, now: Instant) -> Live<E> {
        let entry = Arc::new(ActorEntry::entity(&self.kind.entry));
        let (make, key) = (self.make.clone(), id.clone());
        let factory: Arc<dyn Fn() -> E + Send + Sync> = Arc::new(move || make(&key));
        let (host_entry, messages) = (entry.clone(), self.kind.messages.clone());
        let host = move |_: &mut actix::Context<Host<E>>| Host::new(factory, host_entry, messages, None);
        let addr = if self.policy.threads == 0 {
            // A message between the owner and its entities (and back) is then a queue push on
            // the same thread: no wake-up of another thread.
            Supervisor::start(host)
        } else {
            if self.threads.is_empty() {
                self.threads = (0..self.policy.threads).map(|_| Arbiter::new().handle()).collect();
            }
            let thread = &self.threads[self.next_thread % self.threads.len()];
            self.next_thread = self.next_thread.wrapping_add(1);
            Supervisor::start_in_arbiter(thread, host)
        };
        Live { addr, entry, used: now }
    }
}

impl<K, E: Managed> Drop for Entities<K, E> {
    /// Entities on threads of their own go with their owner.
    fn drop(&mut self) {
        for thread in self.threads.drain(..) {
            thread.stop();
        }
    }
}

impl ActorEntry {
    /// The record of one entity of `kind`: named by the kind (metric labels never carry an id),
    /// with the kind's restart policy and a restart history of its own, and adding its counts to
    /// the kind's.
    fn entity(kind: &Arc<ActorEntry>) -> Self {
        let mut entry = Self::with_shared(kind.name.clone(), ActorKind::Entity, false, kind.policy().clone());
        entry.parent = Some(kind.clone());
        entry
    }
}

/// The supervision record of a kind of entity: running as long as the process does.
pub(crate) fn kind_entry(name: &str, policy: RestartPolicy) -> Arc<ActorEntry> {
    let entry = Arc::new(ActorEntry::new(name, ActorKind::Entity, false, policy));
    entry.mark_running();
    entry
}

/// Inject a fault into one entity of the kind the receiving actor owns (resilience tests).
#[derive(Debug, Clone)]
pub struct InjectEntityFault {
    /// The kind of entity (an owner of several kinds routes by it).
    pub kind: String,
    /// The entity's id, as text.
    pub entity: String,
    /// The fault.
    pub fault: FaultKind,
}

/// Why a fault could not be injected into an entity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntityFaultError {
    /// The id is not one of this kind's.
    #[error("`{0}` is not an id of this kind of entity")]
    NotAnId(String),
    /// The owner or the entity did not answer (a panicking entity does not).
    #[error(transparent)]
    Ask(#[from] AskError),
}

impl Message for InjectEntityFault {
    type Result = Result<(), EntityFaultError>;
}

/// What the supervision needs to reach the entities of a kind: their owner.
pub(crate) trait EntityOwner: Send + Sync {
    fn inject(&self, msg: InjectEntityFault) -> LocalBoxFuture<'static, Result<(), EntityFaultError>>;
}

impl<A: Handle<InjectEntityFault>> EntityOwner for super::ActorRef<A> {
    fn inject(&self, msg: InjectEntityFault) -> LocalBoxFuture<'static, Result<(), EntityFaultError>> {
        let this = self.clone();
        Box::pin(async move { this.ask(msg).await? })
    }
}

impl<K, E> Entities<K, E>
where
    K: Clone + Eq + Hash + Send + Sync + std::str::FromStr + 'static,
    E: Managed,
{
    /// Inject `msg`'s fault into the entity it names (spawned if it is not alive); the answer
    /// is what a client of the entity sees.
    pub fn inject(&mut self, msg: InjectEntityFault) -> LocalBoxFuture<'static, Result<(), EntityFaultError>> {
        let Ok(id) = msg.entity.parse::<K>() else {
            return Box::pin(futures::future::ready(Err(EntityFaultError::NotAnId(msg.entity))));
        };
        let answer = self.get(&id).ask_queued(InjectFault(msg.fault));
        Box::pin(async move {
            answer.await?.unwrap_or(());
            Ok(())
        })
    }
}
