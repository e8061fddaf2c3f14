//! The dispatcher (supervised, one per replica): it finds drivers for the requested rides. For
//! each ride it tracks, a step searches the geo index around the pickup within the round's radius
//! (widening round after round), keeps the drivers of the ride's mode who are available (as
//! stored), fresh (heard from within 30 s), paid in the ride's currency and not turned down
//! before, and offers the ride to the nearest one: one offer at a time, the next after a decline
//! or once the offer times out. A ride nobody took within the dispatch window expires.
//!
//! Offers are rows in PostgreSQL with one pending offer per ride and per driver, so two replicas
//! tracking the same ride (after a restart, every replica takes up the requested rides) never
//! offer it twice at once; the assignment itself is the ride actor's guarded write.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{
    messages::Answer,
    rides::{RideDeps, SystemAct, SystemCommand},
    MobilityDomain,
};
use crate::{
    actors::runtime::{every, ActorRef, Ctx, Handle, Managed, Reply},
    adapters::mobility::rides::Offer,
    domain::mobility::{next_candidate, Candidate, DispatchPolicy, DriverId, RideState},
    telemetry,
};

/// Registered name of the dispatcher.
pub const NAME: &str = "ride-dispatcher";

/// How often the dispatcher looks at the rides it tracks.
const TICK: Duration = Duration::from_millis(200);

/// How often every requested ride is taken up again (after a restart, or from another replica
/// that stopped).
const RESUME_EVERY: Duration = Duration::from_secs(10);

/// Wait before searching again once the widest radius found nobody.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The dispatcher's own handle, known once it is spawned.
pub type DispatcherRef = Arc<OnceLock<ActorRef<Dispatcher>>>;

/// Dispatch `ride`.
#[derive(Debug, Clone, Copy)]
pub struct Track(pub Uuid);

impl actix::Message for Track {
    type Result = Result<(), std::convert::Infallible>;
}

/// Look at the tracked rides whose time has come.
#[derive(Debug, Clone, Copy)]
pub struct Tick;

impl actix::Message for Tick {
    type Result = Result<(), std::convert::Infallible>;
}

/// Take up every requested ride, and every ride whose payment step is due.
#[derive(Debug, Clone, Copy)]
pub struct Resume;

impl actix::Message for Resume {
    type Result = Answer<usize>;
}

/// What a dispatch step found.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// The ride is no longer waiting for a driver.
    Done,
    /// Offered to a driver now, until then.
    Offered(DateTime<Utc>),
    /// An offer made before is pending until then.
    Waiting(DateTime<Utc>),
    /// Nobody within this round's radius.
    Nobody,
    /// The step failed (a dependency); try again shortly.
    Failed,
}

/// A step's outcome, back to the dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct Stepped {
    /// The ride.
    pub ride: Uuid,
    /// What happened.
    pub step: Step,
}

impl actix::Message for Stepped {
    type Result = Result<(), std::convert::Infallible>;
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    round: usize,
    next: Instant,
    busy: bool,
}

/// The dispatcher.
pub struct Dispatcher {
    deps: RideDeps,
    policy: DispatchPolicy,
    domain: ActorRef<MobilityDomain>,
    me: DispatcherRef,
    tracked: HashMap<Uuid, Tracked>,
}

impl Dispatcher {
    /// A dispatcher over `deps` under `policy`; ride actions go through `domain`.
    pub fn new(deps: RideDeps, policy: DispatchPolicy, domain: ActorRef<MobilityDomain>, me: DispatcherRef) -> Self {
        Self { deps, policy, domain, me, tracked: HashMap::new() }
    }
}

impl Managed for Dispatcher {
    fn started(&mut self, ctx: &mut Ctx<Self>) {
        every(ctx, TICK, || Tick);
        every(ctx, RESUME_EVERY, || Resume);
    }
}

impl Handle<Track> for Dispatcher {
    fn handle(&mut self, Track(ride): Track, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        let now = Instant::now();
        self.tracked.entry(ride).or_insert(Tracked { round: 0, next: now, busy: false }).next = now;
        // At once rather than at the next tick: a rider waits for nothing.
        self.launch(ride);
        Reply::Now(Ok(()))
    }
}

impl Handle<Tick> for Dispatcher {
    fn handle(&mut self, _: Tick, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        let now = Instant::now();
        let due: Vec<Uuid> =
            self.tracked.iter().filter(|(_, t)| !t.busy && t.next <= now).map(|(ride, _)| *ride).collect();
        for ride in due {
            self.launch(ride);
        }
        Reply::Now(Ok(()))
    }
}

impl Dispatcher {
    /// Start a dispatch step for `ride` if it is tracked, due and not already in a step.
    fn launch(&mut self, ride: Uuid) {
        let Some(me) = self.me.get().cloned() else { return };
        let Some(tracked) = self.tracked.get_mut(&ride) else { return };
        if tracked.busy || tracked.next > Instant::now() {
            return;
        }
        tracked.busy = true;
        let (deps, policy, domain) = (self.deps.clone(), self.policy.clone(), self.domain.clone());
        let round = tracked.round;
        actix_rt::spawn(async move {
            let step = step(&deps, &policy, &domain, ride, round).await;
            me.tell(Stepped { ride, step });
        });
    }
}

impl Handle<Stepped> for Dispatcher {
    fn handle(&mut self, msg: Stepped, _: &mut Ctx<Self>) -> Reply<Self, Result<(), std::convert::Infallible>> {
        let now = Instant::now();
        let last_round = self.policy.radii_m.len().saturating_sub(1);
        match msg.step {
            Step::Done => {
                self.tracked.remove(&msg.ride);
            }
            Step::Offered(until) | Step::Waiting(until) => {
                if let Some(t) = self.tracked.get_mut(&msg.ride) {
                    let wait = (until - Utc::now()).to_std().unwrap_or_default();
                    *t = Tracked { round: t.round, next: now + wait, busy: false };
                }
            }
            Step::Nobody => {
                if let Some(t) = self.tracked.get_mut(&msg.ride) {
                    let (round, next) =
                        if t.round < last_round { (t.round + 1, now) } else { (t.round, now + RETRY_AFTER) };
                    *t = Tracked { round, next, busy: false };
                }
            }
            Step::Failed => {
                if let Some(t) = self.tracked.get_mut(&msg.ride) {
                    *t = Tracked { round: t.round, next: now + RETRY_AFTER, busy: false };
                }
            }
        }
        // A wider radius is searched at once.
        self.launch(msg.ride);
        Reply::Now(Ok(()))
    }
}

impl Handle<Resume> for Dispatcher {
    fn handle(&mut self, _: Resume, _: &mut Ctx<Self>) -> Reply<Self, Answer<usize>> {
        let (deps, domain, me) = (self.deps.clone(), self.domain.clone(), self.me.get().cloned());
        Reply::later(async move {
            let requested = deps.store.rows().requested_rides(1_000).await?;
            let due = deps.store.rows().rides_to_resume(100).await?;
            if let Some(me) = &me {
                for row in &requested {
                    me.tell(Track(row.id));
                }
            }
            for row in &due {
                let settled = domain.ask(SystemAct { ride: row.id, command: SystemCommand::Settle }).await;
                if let Err(e) = settled.map_err(super::MobilityFailure::from).and_then(|r| r) {
                    tracing::warn!(ride = %row.id, error = %e, "ride payment step not done; retried later");
                }
            }
            Ok(requested.len() + due.len())
        })
    }
}

fn seen(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// One dispatch step for `ride` in round `round`.
async fn step(
    deps: &RideDeps,
    policy: &DispatchPolicy,
    domain: &ActorRef<MobilityDomain>,
    id: Uuid,
    round: usize,
) -> Step {
    let step = match try_step(deps, policy, domain, id, round).await {
        Ok(step) => step,
        Err(e) => {
            tracing::warn!(ride = %id, error = %e, "dispatch step failed");
            Step::Failed
        }
    };
    let outcome = step.outcome();
    deps.metrics
        .with(|| metrics::counter!(telemetry::MOBILITY_DISPATCH_STEPS_TOTAL, "outcome" => outcome).increment(1));
    step
}

impl Step {
    /// Every outcome's label, for the steps counter.
    pub const OUTCOMES: [&'static str; 5] = ["done", "offered", "waiting", "nobody", "failed"];

    /// This step's label in the steps counter.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Done => Self::OUTCOMES[0],
            Self::Offered(_) => Self::OUTCOMES[1],
            Self::Waiting(_) => Self::OUTCOMES[2],
            Self::Nobody => Self::OUTCOMES[3],
            Self::Failed => Self::OUTCOMES[4],
        }
    }
}

async fn try_step(
    deps: &RideDeps,
    policy: &DispatchPolicy,
    domain: &ActorRef<MobilityDomain>,
    id: Uuid,
    round: usize,
) -> Answer<Step> {
    let system = |command| async move { domain.ask(SystemAct { ride: id, command }).await? };
    let Some(stored) = deps.store.ride(id).await? else { return Ok(Step::Done) };
    let ride = stored.ride;
    if ride.state != RideState::Requested {
        return Ok(Step::Done);
    }
    let now = Utc::now();
    if policy.expired(ride.requested_at, now) {
        system(SystemCommand::Expire).await?;
        return Ok(Step::Done);
    }
    let ride = match deps.store.pending_offer(id).await? {
        Some(offer) if offer.expires_at > now => return Ok(Step::Waiting(offer.expires_at)),
        Some(offer) => match system(SystemCommand::OfferTimedOut(DriverId(offer.driver_id))).await? {
            Some(ride) if ride.state == RideState::Requested => ride,
            _ => return Ok(Step::Done),
        },
        None => ride,
    };
    let rider = deps.store.index(&ride.rider);
    let radius = policy.radius(round).or_else(|| policy.radii_m.last().copied()).unwrap_or(1_000);
    let near = deps.geo.near(ride.quote.mode, ride.quote.pickup, radius, policy.search_count(round)).await?;
    let ids: Vec<DriverId> = near.iter().map(|n| n.driver).collect();
    let states = deps.store.driver_states(&ids).await?;
    let mut candidates = Vec::with_capacity(near.len());
    for n in &near {
        let Some(state) = states.iter().find(|s| s.id == n.driver) else { continue };
        // Nobody is offered their own ride.
        if state.owner.as_ref() == Some(&rider) {
            continue;
        }
        candidates.push(Candidate {
            driver: n.driver,
            distance_m: n.distance_m,
            last_seen: seen(n.seen_ms),
            availability: state.availability,
            mode: state.mode,
        });
    }
    // Drivers with an offer pending elsewhere are passed over without trying them one by one.
    let ids: Vec<Uuid> = candidates.iter().map(|c| c.driver.0).collect();
    let pending = deps.store.rows().drivers_with_pending_offers(&ids).await?;
    let mut busy: HashSet<DriverId> = pending.into_iter().map(DriverId).collect();
    while let Some(driver) = next_candidate(&ride, &candidates, &busy, now) {
        // Only the driver about to be offered the ride has their wallet looked at: paid in
        // another currency, they are passed over.
        let wallet = states.iter().find(|s| s.id == driver).map(|s| s.wallet);
        let paid_in = match wallet {
            Some(wallet) => deps.payments.fintech().wallet(wallet, false).await?.map(|w| w.currency),
            None => None,
        };
        if paid_in.as_ref() != Some(&ride.quote.currency) {
            busy.insert(driver);
            continue;
        }
        let timeout = chrono::Duration::from_std(policy.offer_timeout).unwrap_or(chrono::Duration::seconds(15));
        let offer =
            Offer { ride_id: id, driver_id: driver.0, offered_at: now, expires_at: now + timeout, answer: None };
        if deps.store.rows().offer(&offer).await? {
            return Ok(Step::Offered(offer.expires_at));
        }
        busy.insert(driver);
    }
    Ok(Step::Nobody)
}
