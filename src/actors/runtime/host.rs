//! `Host<A>`: the actix actor that wraps every managed actor. It times and counts each message,
//! turns a panicking or fatally failing handler into a supervised restart with backoff, rejects
//! messages while the actor is restarting or failed, and keeps the supervision record current.

use std::{
    any::TypeId,
    future::Future,
    panic::{catch_unwind, AssertUnwindSafe},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use actix::{
    dev::{MessageResponse, OneshotSender},
    fut::{wrap_future, ActorFuture, ActorFutureExt},
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Supervised,
};
use futures::{future::LocalBoxFuture, FutureExt};
use metrics::{Counter, Histogram};
use tracing::Instrument;

use super::registry::{ActorEntry, ActorState, FailureReason};
use crate::telemetry::{self, Metrics, RequestId};

/// The actix context of a managed actor.
pub type Ctx<A> = Context<Host<A>>;

/// A long-lived actor run under supervision. Its state is rebuilt by its factory on every restart.
pub trait Managed: Sized + Unpin + 'static {
    /// Runs each time the actor (re)starts with fresh state; schedule timers here.
    fn started(&mut self, _ctx: &mut Ctx<Self>) {}

    /// Runs once at shutdown, after every message queued before it was handled.
    fn drained(&mut self, _ctx: &mut Ctx<Self>) {}

    /// Whether each message is handled in an `actor.handle` span of its own. An actor whose
    /// handlers open a span of their own for what they do (an adapter's `adapter.call`) runs them
    /// in the sender's span instead: one span per call rather than two nested.
    const HANDLE_SPAN: bool = true;
}

/// Results of managed messages say whether they succeeded, for the outcome label.
pub trait Succeeded {
    /// Whether the message succeeded.
    fn is_ok(&self) -> bool;
}

impl<T, E> Succeeded for Result<T, E> {
    fn is_ok(&self) -> bool {
        Result::is_ok(self)
    }
}

/// A managed actor's handler for message `M`.
pub trait Handle<M>: Managed
where
    M: Message,
    M::Result: Succeeded,
{
    /// Handle one message.
    fn handle(&mut self, msg: M, ctx: &mut Ctx<Self>) -> Reply<Self, M::Result>;
}

/// How a handler answers.
pub enum Reply<A: Managed, R> {
    /// The answer is ready.
    Now(R),
    /// The answer comes from a future that does not touch the actor's state after an await
    /// (actix `ResponseFuture`); the actor keeps handling other messages meanwhile.
    Later(LocalBoxFuture<'static, R>),
    /// The answer comes from a future that updates the actor's state; no other message is handled
    /// until it completes (actix `AtomicResponse`).
    Atomic(Pin<Box<dyn ActorFuture<Host<A>, Output = R>>>),
    /// The actor's state can no longer be trusted: stop, answer nothing, restart with backoff.
    Fatal(String),
}

impl<A: Managed, R: 'static> Reply<A, R> {
    /// A `Later` answer.
    pub fn later(fut: impl Future<Output = R> + 'static) -> Self {
        Self::Later(Box::pin(fut))
    }

    /// An `Atomic` answer: await `fut`, then `then` updates the actor and produces the answer.
    pub fn atomic<T: 'static>(
        fut: impl Future<Output = T> + 'static,
        then: impl FnOnce(T, &mut A, &mut Ctx<A>) -> R + 'static,
    ) -> Self {
        Self::Atomic(Box::pin(wrap_future::<_, Host<A>>(fut).map(move |t, host, ctx| then(t, &mut host.actor, ctx))))
    }
}

/// A message on its way to a managed actor, with what the runtime needs to account for it.
pub struct Envelope<M> {
    msg: M,
    sent_at: Instant,
    depth: DepthGuard,
    request_id: Option<RequestId>,
    parent: tracing::Span,
}

impl<M: Message> Message for Envelope<M> {
    type Result = M::Result;
}

impl<M> Envelope<M> {
    pub(crate) fn new(msg: M, entry: &Arc<ActorEntry>) -> Self {
        entry.enqueued();
        Self {
            msg,
            sent_at: Instant::now(),
            depth: DepthGuard(entry.clone()),
            request_id: telemetry::current_request_id(),
            parent: tracing::Span::current(),
        }
    }
}

/// Deliver `make()` to the actor through the runtime (instrumented like any message) now and
/// then every `period`; call from [`Managed::started`], timers end when the actor restarts.
pub fn every<A, M>(ctx: &mut Ctx<A>, period: Duration, make: impl Fn() -> M + 'static)
where
    A: Handle<M>,
    M: Message + 'static,
    M::Result: Succeeded + 'static,
{
    let make = std::rc::Rc::new(make);
    let first = make.clone();
    ctx.run_later(Duration::ZERO, move |host, ctx| ctx.notify(Envelope::new(first(), &host.entry)));
    ctx.run_interval(period, move |host, ctx| ctx.notify(Envelope::new(make(), &host.entry)));
}

/// Decrements the mailbox depth when the message leaves the mailbox, however it leaves.
struct DepthGuard(Arc<ActorEntry>);

impl Drop for DepthGuard {
    fn drop(&mut self) {
        self.0.dequeued();
    }
}

/// Metric handles of one message type.
pub struct MessageMetrics {
    name: &'static str,
    ok: Counter,
    error: Counter,
    panic: Counter,
    fatal: Counter,
    rejected: Counter,
    processing: Histogram,
    mailbox: Histogram,
}

impl MessageMetrics {
    fn new(metrics: &Metrics, actor: &str, name: &'static str) -> Self {
        let outcome = |o: &'static str| metrics::counter!(telemetry::ACTOR_MESSAGES_TOTAL, "actor" => actor.to_string(), "message" => name, "outcome" => o);
        metrics.with(|| Self {
            name,
            ok: outcome("ok"),
            error: outcome("error"),
            panic: outcome("panic"),
            fatal: outcome("fatal"),
            rejected: outcome("rejected"),
            processing: metrics::histogram!(telemetry::ACTOR_PROCESSING_SECONDS, "actor" => actor.to_string(), "message" => name),
            mailbox: metrics::histogram!(telemetry::ACTOR_MAILBOX_SECONDS, "actor" => actor.to_string(), "message" => name),
        })
    }

    fn finished(&self, started: Instant, ok: bool) {
        self.processing.record(started.elapsed().as_secs_f64());
        if ok { &self.ok } else { &self.error }.increment(1);
    }
}

/// The metrics of an actor, with the handles of each message type handled looked up once for
/// the actor, or once for all the entities of a kind (each entity then holds one pointer instead
/// of its own set).
pub struct MessageMetricsCache {
    metrics: Metrics,
    per_message: parking_lot::RwLock<Vec<(TypeId, Arc<MessageMetrics>)>>,
}

impl MessageMetricsCache {
    /// No handle looked up yet.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics, per_message: parking_lot::RwLock::default() }
    }

    fn get<M: 'static>(&self, actor: &str) -> Arc<MessageMetrics> {
        let id = TypeId::of::<M>();
        let find = |all: &[(TypeId, Arc<MessageMetrics>)]| all.iter().find(|(t, _)| *t == id).map(|(_, m)| m.clone());
        if let Some(m) = find(&self.per_message.read()) {
            return m;
        }
        let mut all = self.per_message.write();
        if let Some(m) = find(&all) {
            return m;
        }
        let m = Arc::new(MessageMetrics::new(&self.metrics, actor, short_type_name::<M>()));
        all.push((id, m.clone()));
        m
    }
}

/// The last path segment of a type name: `crate::a::b::GetWallet` becomes `GetWallet`.
pub fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

type Factory<A> = Arc<dyn Fn() -> A + Send + Sync>;

/// The actix actor behind every managed actor.
pub struct Host<A: Managed> {
    actor: A,
    factory: Factory<A>,
    entry: Arc<ActorEntry>,
    /// Shared by the entities of a kind: each holds a pointer, not a set of metric handles.
    metrics: Arc<MessageMetricsCache>,
    /// Delay before the next boot; set by a failure, consumed by `started`.
    pending_delay: Option<Duration>,
    /// Counts boots requested; a backoff timer only boots if no other boot came first (actix's
    /// future cancellation is not reliable across supervised restarts, so timers are never
    /// cancelled, only outdated).
    boot_generation: u32,
    /// Counts the boots done: a late answer of an earlier incarnation cannot fail this one.
    incarnation: u32,
    accepting: bool,
    /// This host's own address, weak (cloned for every `Later` answer, which upgrades it only
    /// to report a panic).
    me: Option<actix::WeakAddr<Self>>,
}

impl<A: Managed> Host<A> {
    pub(crate) fn new(
        factory: Factory<A>,
        entry: Arc<ActorEntry>,
        metrics: Arc<MessageMetricsCache>,
        delay: Option<Duration>,
    ) -> Self {
        Self {
            actor: factory(),
            factory,
            entry,
            metrics,
            pending_delay: delay,
            boot_generation: 0,
            incarnation: 0,
            accepting: false,
            me: None,
        }
    }

    /// The managed actor.
    pub fn actor(&mut self) -> &mut A {
        &mut self.actor
    }

    /// The supervision record.
    pub fn entry(&self) -> &Arc<ActorEntry> {
        &self.entry
    }

    fn message_metrics<M: 'static>(&mut self) -> Arc<MessageMetrics> {
        self.metrics.get::<M>(&self.entry.name)
    }

    fn boot(&mut self, ctx: &mut Ctx<A>) {
        if self.entry.state() == ActorState::Stopped {
            return;
        }
        self.accepting = true;
        self.incarnation = self.incarnation.wrapping_add(1);
        self.entry.mark_running();
        tracing::info!(actor = %self.entry.name, restarts = self.entry.restarts(), "actor running");
        let actor = &mut self.actor;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| actor.started(ctx))) {
            self.fail(FailureReason::Panic, panic_message(panic.as_ref()), ctx);
        }
    }

    /// Record the failure, stop accepting, and stop the context: the actix supervisor restarts
    /// this host, `restarting` rebuilds the state and `started` waits out the backoff.
    fn fail(&mut self, reason: FailureReason, detail: String, ctx: &mut Ctx<A>) {
        self.accepting = false;
        self.metrics.metrics.with(|| {
            metrics::counter!(telemetry::ACTOR_FAILURES_TOTAL, "actor" => self.entry.name.to_string(), "reason" => reason.as_str())
                .increment(1)
        });
        let decision = self.entry.record_failure(reason, detail);
        self.pending_delay = Some(decision.delay);
        ctx.stop();
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

impl<A: Managed> Actor for Host<A> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.me.is_none() {
            self.me = Some(ctx.address().downgrade());
        }
        match self.pending_delay.take() {
            Some(delay) => {
                let generation = self.boot_generation;
                ctx.run_later(delay, move |host, ctx| {
                    if host.boot_generation == generation {
                        host.boot(ctx)
                    }
                });
            }
            None => self.boot(ctx),
        }
    }
}

impl<A: Managed> Supervised for Host<A> {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.actor = (self.factory)();
    }
}

impl<A, M> Handler<Envelope<M>> for Host<A>
where
    A: Handle<M>,
    M: Message + 'static,
    M::Result: Succeeded + 'static,
{
    type Result = HostReply<A, M::Result>;

    fn handle(&mut self, envelope: Envelope<M>, ctx: &mut Self::Context) -> Self::Result {
        let Envelope { msg, sent_at, depth, request_id, parent } = envelope;
        drop(depth);
        let started = Instant::now();
        let metrics = self.message_metrics::<M>();
        metrics.mailbox.record(started.saturating_duration_since(sent_at).as_secs_f64());
        if !self.accepting {
            metrics.rejected.increment(1);
            return HostReply::Rejected;
        }
        self.entry.count_handled();
        let span = if A::HANDLE_SPAN {
            tracing::info_span!(
                parent: &parent,
                "actor.handle",
                actor = %self.entry.name,
                message = metrics.name,
                request_id = request_id.as_ref().map(|r| r.as_str()).unwrap_or(""),
            )
        } else {
            parent
        };
        let actor = &mut self.actor;
        let reply = span.in_scope(|| {
            catch_unwind(AssertUnwindSafe(|| match &request_id {
                Some(id) => telemetry::REQUEST_ID.sync_scope(id.clone(), || actor.handle(msg, ctx)),
                None => actor.handle(msg, ctx),
            }))
        });
        match reply {
            Ok(Reply::Now(result)) => {
                metrics.finished(started, result.is_ok());
                HostReply::Now(result)
            }
            Ok(Reply::Later(fut)) => {
                let me = self.me.clone();
                HostReply::Later { fut, started, metrics, span, request_id, incarnation: self.incarnation, me }
            }
            Ok(Reply::Atomic(fut)) => HostReply::Atomic { fut, started, metrics },
            Ok(Reply::Fatal(detail)) => {
                metrics.fatal.increment(1);
                self.fail(FailureReason::Fatal, detail, ctx);
                HostReply::Rejected
            }
            Err(panic) => {
                metrics.panic.increment(1);
                self.fail(FailureReason::Panic, panic_message(panic.as_ref()), ctx);
                HostReply::Rejected
            }
        }
    }
}

/// A handler's answer on its way back, with the accounting still to do.
pub enum HostReply<A: Managed, R> {
    /// Ready answer.
    Now(R),
    /// Refused or failed: the sender sees a closed mailbox.
    Rejected,
    /// Answer from a future run as a task of its own.
    Later {
        /// The future.
        fut: LocalBoxFuture<'static, R>,
        /// When handling started.
        started: Instant,
        /// Where to record the outcome.
        metrics: Arc<MessageMetrics>,
        /// The handling span.
        span: tracing::Span,
        /// Correlation id to keep in scope.
        request_id: Option<RequestId>,
        /// The incarnation of the actor that answers.
        incarnation: u32,
        /// Where a panic of the future is reported.
        me: Option<actix::WeakAddr<Host<A>>>,
    },
    /// Answer from a future that holds the actor.
    Atomic {
        /// The future.
        fut: Pin<Box<dyn ActorFuture<Host<A>, Output = R>>>,
        /// When handling started.
        started: Instant,
        /// Where to record the outcome.
        metrics: Arc<MessageMetrics>,
    },
}

thread_local! {
    /// `Later` answers ready on this thread, waiting for the end of the scheduler's pass.
    static READY: std::cell::RefCell<Vec<Box<dyn FnOnce()>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Send a `Later` answer once the tasks ready on this thread have run, with the other answers
/// ready by then: the askers' threads are woken once for them all instead of once each (a
/// cross-thread wake-up is a system call on both sides).
fn answer_in_pass<R: 'static>(tx: Option<OneshotSender<R>>, result: R) {
    let Some(tx) = tx else { return };
    let first = READY.with(|ready| {
        let mut ready = ready.borrow_mut();
        ready.push(Box::new(move || {
            let _ = tx.send(result);
        }));
        ready.len() == 1
    });
    if first {
        actix_rt::spawn(async {
            for send in READY.with(|ready| std::mem::take(&mut *ready.borrow_mut())) {
                send();
            }
        });
    }
}

fn answer<R>(tx: Option<OneshotSender<R>>, result: R) {
    if let Some(tx) = tx {
        // The asker may have timed out and gone; nothing to do then.
        let _ = tx.send(result);
    }
}

impl<A, M> MessageResponse<Host<A>, Envelope<M>> for HostReply<A, M::Result>
where
    A: Managed,
    M: Message + 'static,
    M::Result: Succeeded + 'static,
{
    fn handle(self, ctx: &mut Ctx<A>, tx: Option<OneshotSender<M::Result>>) {
        match self {
            HostReply::Now(result) => answer(tx, result),
            HostReply::Rejected => drop(tx),
            HostReply::Later { fut, started, metrics, span, request_id, incarnation, me } => {
                let fut = AssertUnwindSafe(fut).catch_unwind();
                let fut: LocalBoxFuture<'static, _> = match request_id {
                    Some(id) => Box::pin(telemetry::REQUEST_ID.scope(id, fut).instrument(span)),
                    None => Box::pin(fut.instrument(span)),
                };
                // A task of its own on the actor's thread, woken only by what it waits for. (A
                // future spawned in the actor's context would be polled again at every wake-up
                // of the actor, with all the others: a cost per message that grows with the
                // number of answers pending.) A panic still fails the actor, through its mailbox.
                actix_rt::spawn(async move {
                    match fut.await {
                        Ok(result) => {
                            metrics.finished(started, result.is_ok());
                            answer_in_pass(tx, result);
                        }
                        Err(panic) => {
                            metrics.panic.increment(1);
                            if let Some(me) = me.and_then(|me| me.upgrade()) {
                                me.do_send(LaterPanicked { detail: panic_message(panic.as_ref()), incarnation });
                            }
                        }
                    }
                });
            }
            HostReply::Atomic { fut, started, metrics } => {
                ctx.wait(CatchUnwind(fut).map(move |outcome, host, ctx| match outcome {
                    Ok(result) => {
                        metrics.finished(started, result.is_ok());
                        answer(tx, result);
                    }
                    Err(detail) => {
                        metrics.panic.increment(1);
                        host.fail(FailureReason::Panic, detail, ctx);
                    }
                }));
            }
        }
    }
}

/// Polls an actor future, turning a panic into an error.
struct CatchUnwind<A: Managed, R>(Pin<Box<dyn ActorFuture<Host<A>, Output = R>>>);

impl<A: Managed, R> ActorFuture<Host<A>> for CatchUnwind<A, R> {
    type Output = Result<R, String>;

    fn poll(
        mut self: Pin<&mut Self>,
        host: &mut Host<A>,
        ctx: &mut Ctx<A>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(host, ctx, task))) {
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    }
}

/// Host-level message: answered once every message queued before it has been handled; the actor
/// then stops accepting and runs its `drained` hook.
pub(crate) struct Drain;

impl Message for Drain {
    type Result = ();
}

impl<A: Managed> Handler<Drain> for Host<A> {
    type Result = ();

    fn handle(&mut self, _: Drain, ctx: &mut Self::Context) {
        self.accepting = false;
        self.entry.set_state(ActorState::Stopped);
        let actor = &mut self.actor;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| actor.drained(ctx))) {
            tracing::error!(actor = %self.entry.name, panic = %panic_message(panic.as_ref()), "drain hook panicked");
        }
    }
}

/// Host-level message: a `Later` answer of the actor panicked; the actor fails as if its handler
/// had.
struct LaterPanicked {
    detail: String,
    incarnation: u32,
}

impl Message for LaterPanicked {
    type Result = ();
}

impl<A: Managed> Handler<LaterPanicked> for Host<A> {
    type Result = ();

    fn handle(&mut self, msg: LaterPanicked, ctx: &mut Self::Context) {
        if self.accepting && msg.incarnation == self.incarnation {
            self.fail(FailureReason::Panic, msg.detail, ctx);
        }
    }
}

/// Host-level message: an operator restart. A running actor is rebuilt from its factory at once;
/// a restarting or failed one skips the rest of its backoff. Either way the restart history is
/// cleared.
pub(crate) struct Restart;

impl Message for Restart {
    type Result = ();
}

impl<A: Managed> Handler<Restart> for Host<A> {
    type Result = ();

    fn handle(&mut self, _: Restart, ctx: &mut Self::Context) {
        if self.entry.state() == ActorState::Stopped {
            return;
        }
        tracing::warn!(actor = %self.entry.name, "operator restart");
        self.entry.operator_restart();
        if self.accepting {
            self.accepting = false;
            self.pending_delay = None;
            ctx.stop();
        } else {
            self.boot_generation = self.boot_generation.wrapping_add(1);
            self.boot(ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        actors::runtime::{ActorKind, ActorSpec, Handle, Registry, Supervision},
        config::SupervisionSettings,
    };

    struct Doubler;

    impl Managed for Doubler {}

    struct Double(u64);

    impl Message for Double {
        type Result = Result<u64, ()>;
    }

    impl Handle<Double> for Doubler {
        fn handle(&mut self, msg: Double, _: &mut Ctx<Self>) -> Reply<Self, Result<u64, ()>> {
            Reply::later(async move {
                // Answers become ready in different passes of the actor thread's scheduler.
                for _ in 0..msg.0 % 3 {
                    tokio::task::yield_now().await;
                }
                Ok(msg.0 * 2)
            })
        }
    }

    #[actix_rt::test]
    async fn later_answers_delivered_together_each_reach_their_asker() {
        let metrics = Metrics::new().unwrap();
        let supervision = Supervision::new(Arc::new(Registry::default()), SupervisionSettings::default(), metrics);
        let doubler = supervision.spawn(ActorSpec::new("doubler", ActorKind::System, false), || Doubler).unwrap();
        let asks = (0..500u64).map(|n| {
            let doubler = doubler.clone();
            async move { (n, doubler.ask(Double(n)).await) }
        });
        for (n, answer) in futures::future::join_all(asks).await {
            assert_eq!(answer.unwrap(), Ok(n * 2));
        }
        supervision.halt();
    }
}
