//! One entity actor per active ride (kind `ride`, keyed by the ride's id): every action on the
//! ride passes through it, one at a time on this replica. An action reads the ride from
//! PostgreSQL, applies the domain's transition and writes it at that version, together with the
//! driver it changes, the offer it answers, its idempotency key and its events; another replica's
//! write in between makes it read again and retry. PostgreSQL's unique indexes guard what two
//! replicas could otherwise both do: one driver per ride, one ride per driver. When the ride is
//! over, the payment step it is due runs ([`super::saga`]).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use super::{
    messages::{Answer, MobilityFailure},
    saga::{RidePayments, Settled},
    Rules,
};
use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::mobility::{
        ride_store::{driver_row, saga_open, StoredRide},
        rides::{KeyRow, Written},
        DriverRow, GeoIndex, MobilityStore, StoreError,
    },
    domain::{
        events::DomainEvent,
        idempotency::{fingerprint, IdempotencyError, IdempotencyKey},
        mobility::{
            events as mobility_events, Availability, CancellationPolicy, Driver, DriverId, MobilityError, Party,
            PaymentState, Ride, RideAction, RideState,
        },
        privacy::Place,
    },
    telemetry::{self, Metrics},
};

/// Name of the rides' entity kind (the `actor` label of their metrics).
pub const KIND: &str = "ride";

/// How often an action is tried against concurrent writes before giving up.
const ATTEMPTS: usize = 4;

/// How long a ride action's idempotency key is kept.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a party asks of a ride.
#[derive(Debug, Clone, PartialEq)]
pub enum RideCommand {
    /// A driver takes the ride offered to them.
    Accept,
    /// A driver turns the offer down.
    Decline,
    /// The driver is at the pickup.
    Arrive,
    /// The rider is on board.
    Start,
    /// The ride is over, with the route actually driven.
    Complete {
        /// Metres.
        distance_m: u64,
        /// Seconds.
        duration_s: u64,
    },
    /// The rider or the driver calls it off.
    Cancel {
        /// Why, optionally.
        reason: Option<String>,
    },
    /// The rider rates the driver, or the driver the rider.
    Rate {
        /// 1 to 5.
        score: u8,
    },
}

impl RideCommand {
    /// The operation an idempotency key is claimed for.
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Accept => "mobility.accept",
            Self::Decline => "mobility.decline",
            Self::Arrive => "mobility.arrive",
            Self::Start => "mobility.start",
            Self::Complete { .. } => "mobility.complete",
            Self::Cancel { .. } => "mobility.cancel",
            Self::Rate { .. } => "mobility.rate",
        }
    }

    /// The request as a key remembers it.
    pub fn request(&self, ride: Uuid) -> serde_json::Value {
        match self {
            Self::Complete { distance_m, duration_s } => {
                serde_json::json!({"ride": ride, "distance_m": distance_m, "duration_s": duration_s})
            }
            Self::Cancel { reason } => serde_json::json!({"ride": ride, "reason": reason}),
            Self::Rate { score } => serde_json::json!({"ride": ride, "score": score}),
            _ => serde_json::json!({ "ride": ride }),
        }
    }

    /// The action in the domain's terms.
    pub fn action(&self) -> RideAction {
        match self {
            Self::Accept | Self::Decline => RideAction::Assign,
            Self::Arrive => RideAction::Arrive,
            Self::Start => RideAction::Start,
            Self::Complete { .. } => RideAction::Complete,
            Self::Cancel { .. } => RideAction::Cancel,
            Self::Rate { .. } => RideAction::Rate,
        }
    }
}

/// A party's action on a ride.
#[derive(Debug, Clone)]
pub struct ActOnRide {
    /// The ride.
    pub ride: Uuid,
    /// Who asks.
    pub subject: String,
    /// The caller's driver profile, if they have one.
    pub driver: Option<DriverId>,
    /// What.
    pub command: RideCommand,
    /// The idempotency key it is sent with.
    pub key: Option<IdempotencyKey>,
}

/// A ride as answered, and whether the answer replays an earlier request's.
#[derive(Debug, Clone)]
pub struct RideAnswer {
    /// The ride.
    pub ride: StoredRide,
    /// A replay of the key's first request.
    pub replayed: bool,
}

impl actix::Message for ActOnRide {
    type Result = Answer<RideAnswer>;
}

/// What the system does to a ride: time out its pending offer, let it expire.
#[derive(Debug, Clone, Copy)]
pub enum SystemCommand {
    /// The pending offer to this driver ran out.
    OfferTimedOut(DriverId),
    /// Nobody accepted within the dispatch window.
    Expire,
    /// Run the payment step the ride is due.
    Settle,
}

/// The system's action on a ride.
#[derive(Debug, Clone, Copy)]
pub struct SystemAct {
    /// The ride.
    pub ride: Uuid,
    /// What.
    pub command: SystemCommand,
}

impl actix::Message for SystemAct {
    type Result = Answer<Option<Ride>>;
}

/// What a ride actor works with.
#[derive(Clone)]
pub struct RideDeps {
    /// Rides, drivers, offers.
    pub store: MobilityStore,
    /// Where available drivers are.
    pub geo: GeoIndex,
    /// Tariffs and the rest of the rules.
    pub rules: Arc<Rules>,
    /// The ledger side.
    pub payments: RidePayments,
    /// Metrics of this instance.
    pub metrics: Metrics,
}

/// The actor of one ride.
pub struct RideActor {
    id: Uuid,
    /// Shared by the rides' actors: one pointer each, not a copy of the stores' handles.
    deps: Arc<RideDeps>,
}

impl RideActor {
    /// The actor of ride `id`.
    pub fn new(id: Uuid, deps: Arc<RideDeps>) -> Self {
        Self { id, deps }
    }
}

impl Managed for RideActor {}

/// A ride's change, ready to write.
struct Change {
    ride: Ride,
    driver: Option<DriverChange>,
    offer_answer: Option<(Uuid, &'static str)>,
}

/// A driver changed with a ride: the row to write, the driver after, and its availability before.
struct DriverChange {
    row: DriverRow,
    after: Driver,
    before: Availability,
}

fn request_id() -> Option<String> {
    telemetry::current_request_id().map(|r| r.as_str().to_owned())
}

/// The events of `next` (whose state was `before`; none for a new ride), the rider named sealed,
/// and of the driver whose availability went from `driver.1` to `driver.0`'s.
pub async fn events_of(
    store: &MobilityStore,
    next: &Ride,
    before: Option<RideState>,
    driver: Option<(&Driver, Availability)>,
) -> Answer<Vec<DomainEvent>> {
    let mut events = Vec::new();
    if let Some(kind) = mobility_events::ride_event_type(next, before) {
        let id = next.id.to_string();
        // An erased rider is named by nobody.
        let sealed = if next.rider.is_empty() {
            String::new()
        } else {
            let place = Place::new("mobility.ride.rider", &id);
            store.vault().seal(&next.rider, place, &next.rider).await.map_err(StoreError::from)?.to_text()
        };
        events.push(mobility_events::ride_event(kind, next, &sealed, request_id()));
    }
    if let Some((driver, from)) = driver.filter(|(d, from)| d.availability != *from) {
        events.push(mobility_events::driver_status_changed(driver, from, request_id(), driver.updated_at));
    }
    Ok(events)
}

/// The stored driver `id`, changed by `change`.
async fn driver_change(
    store: &MobilityStore,
    id: DriverId,
    change: impl FnOnce(&Driver) -> Result<Driver, MobilityError>,
) -> Answer<DriverChange> {
    let row = store.driver_row(id).await?.ok_or(MobilityError::DriverNotFound)?;
    let driver = MobilityStore::driver_of_row(&row)?;
    let after = change(&driver)?;
    Ok(DriverChange { row: driver_row(&row, &after), after, before: driver.availability })
}

impl RideActor {
    /// Decide what `command` of `party` changes in `ride`.
    async fn decide(deps: &RideDeps, ride: &Ride, msg: &ActOnRide, party: Party) -> Answer<Change> {
        let now = Utc::now();
        let rules = &deps.rules;
        let tariff = rules.tariff(ride.quote.currency, ride.quote.mode)?;
        let by = msg.driver;
        let change = |ride: Ride| Change { ride, driver: None, offer_answer: None };
        Ok(match (&msg.command, party) {
            (RideCommand::Accept, _) => {
                let driver = by.ok_or(MobilityError::NotOffered(ride.id))?;
                let offer = deps.store.pending_offer(ride.id).await?;
                if ride.state != RideState::Requested {
                    return Err(MobilityError::RideStateConflict {
                        ride: ride.id,
                        state: ride.state,
                        action: RideAction::Assign,
                    }
                    .into());
                }
                if offer.as_ref().is_none_or(|o| o.driver_id != driver.0 || o.expires_at <= now) {
                    return Err(MobilityError::NotOffered(ride.id).into());
                }
                let next = ride.assign(driver, now)?;
                let taken = driver_change(&deps.store, driver, |d| d.take_ride(ride.id, now)).await?;
                Change { ride: next, driver: Some(taken), offer_answer: Some((driver.0, "accepted")) }
            }
            (RideCommand::Decline, _) => {
                let driver = by.ok_or(MobilityError::NotOffered(ride.id))?;
                let offer = deps.store.pending_offer(ride.id).await?;
                if offer.as_ref().is_none_or(|o| o.driver_id != driver.0) {
                    return Err(MobilityError::NotOffered(ride.id).into());
                }
                Change { ride: ride.decline(driver, now)?, driver: None, offer_answer: Some((driver.0, "declined")) }
            }
            (RideCommand::Arrive, Party::Driver) => {
                change(ride.arrive(by.ok_or(MobilityError::NotAParty(ride.id))?, now)?)
            }
            (RideCommand::Start, Party::Driver) => {
                change(ride.start(by.ok_or(MobilityError::NotAParty(ride.id))?, now)?)
            }
            (RideCommand::Complete { distance_m, duration_s }, Party::Driver) => {
                let driver = by.ok_or(MobilityError::NotAParty(ride.id))?;
                let next = ride.complete(
                    driver,
                    &tariff,
                    rules.tolerance_pct,
                    rules.commission_bps,
                    *distance_m,
                    *duration_s,
                    now,
                )?;
                let released = driver_change(&deps.store, driver, |d| Ok(d.release_ride(ride.id, now))).await?;
                Change { ride: next, driver: Some(released), offer_answer: None }
            }
            (RideCommand::Cancel { reason }, Party::Rider) => {
                let policy = CancellationPolicy { grace: rules.cancellation_grace };
                let next = ride.cancel_by_rider(&policy, &tariff, reason.clone(), now)?;
                let offer = deps.store.pending_offer(ride.id).await?;
                let driver = match ride.driver {
                    Some(d) => Some(driver_change(&deps.store, d, |x| Ok(x.release_ride(ride.id, now))).await?),
                    None => None,
                };
                Change { ride: next, driver, offer_answer: offer.map(|o| (o.driver_id, "withdrawn")) }
            }
            (RideCommand::Cancel { .. }, Party::Driver) => {
                let driver = by.ok_or(MobilityError::NotAParty(ride.id))?;
                let next = ride.cancel_by_driver(driver, now)?;
                let released = driver_change(&deps.store, driver, |d| Ok(d.release_ride(ride.id, now))).await?;
                Change { ride: next, driver: Some(released), offer_answer: None }
            }
            (RideCommand::Rate { score }, party) => {
                let next = ride.rate(party, *score, now)?;
                let driver = match (party, ride.driver) {
                    (Party::Rider, Some(d)) => Some(driver_change(&deps.store, d, |x| x.rated(*score, now)).await?),
                    _ => None,
                };
                Change { ride: next, driver, offer_answer: None }
            }
            (command, _) => {
                return Err(MobilityError::RideStateConflict {
                    ride: ride.id,
                    state: ride.state,
                    action: command.action(),
                }
                .into())
            }
        })
    }

    /// Run `msg` against the stored ride, again on a fresh read while another write wins.
    async fn act(deps: Arc<RideDeps>, msg: ActOnRide) -> Answer<RideAnswer> {
        let scope = deps.store.index(&msg.subject);
        let claim = msg.key.as_ref().map(|k| {
            let print = fingerprint(msg.command.operation(), &msg.command.request(msg.ride));
            (k.as_str().to_owned(), print)
        });
        for _ in 0..ATTEMPTS {
            if let Some((key, print)) = &claim {
                if let Some(kept) = deps.store.rows().key(&scope, key).await? {
                    return replay(&deps, &kept, print, msg.ride).await;
                }
            }
            let stored = deps.store.ride(msg.ride).await?.ok_or(MobilityError::RideNotFound(msg.ride))?;
            let ride = &stored.ride;
            let offered = match msg.driver {
                Some(d) => deps.store.rows().offered(ride.id, d.0).await?,
                None => false,
            };
            let party = match ride.party(&msg.subject, msg.driver) {
                Some(party) => party,
                None if offered => Party::Driver,
                None => return Err(MobilityError::RideNotFound(msg.ride).into()),
            };
            let change = Self::decide(&deps, ride, &msg, party).await?;
            let key = claim.as_ref().map(|(key, print)| KeyRow {
                scope,
                key: key.clone(),
                fingerprint: print.clone(),
                ride_id: ride.id,
                version: change.ride.version,
                expires_at: Utc::now() + chrono::Duration::from_std(KEY_TTL).unwrap_or(chrono::Duration::MAX),
            });
            let driver = change.driver.as_ref();
            let events =
                events_of(&deps.store, &change.ride, Some(ride.state), driver.map(|d| (&d.after, d.before))).await?;
            let row = driver.map(|d| &d.row);
            let written = deps.store.write_ride(&change.ride, row, change.offer_answer, key.as_ref(), &events).await?;
            match written {
                Written::Written => {
                    after_write(&deps, ride, &change).await;
                    if saga_open(&change.ride) {
                        // The payment step runs now; if it cannot, the dispatcher's resumption
                        // runs it again from the stored ride.
                        if let Err(e) = settle(&deps, change.ride.clone()).await {
                            tracing::warn!(ride = %change.ride.id, error = %e, "ride payment step not done; retried later");
                        }
                    }
                    let ride = deps.store.ride(msg.ride).await?.ok_or(MobilityError::RideNotFound(msg.ride))?;
                    return Ok(RideAnswer { ride, replayed: false });
                }
                Written::KeyTaken(kept) => {
                    if let Some((_, print)) = &claim {
                        return replay(&deps, &kept, print, msg.ride).await;
                    }
                }
                Written::Stale => {}
            }
        }
        Err(MobilityFailure::Contended)
    }
}

/// The answer a kept key gives: the ride as it stands, if the key was used for this very request.
async fn replay(deps: &RideDeps, kept: &KeyRow, print: &str, ride: Uuid) -> Answer<RideAnswer> {
    if kept.fingerprint != print || kept.ride_id != ride {
        return Err(IdempotencyError::Reused(vec!["request".into()]).into());
    }
    let ride = deps.store.ride(ride).await?.ok_or(MobilityError::RideNotFound(ride))?;
    Ok(RideAnswer { ride, replayed: true })
}

/// What follows a written change: the geo index follows the driver, the metrics count it.
async fn after_write(deps: &RideDeps, before: &Ride, change: &Change) {
    if let Some(driver) = &change.driver {
        if driver.after.availability != Availability::Available {
            if let Err(e) = deps.geo.remove(driver.after.id).await {
                tracing::warn!(error = %e, "driver not taken out of the geo index");
            }
        }
    }
    let ride = &change.ride;
    if ride.state == RideState::DriverAssigned && before.state == RideState::Requested {
        let waited = (ride.updated_at - before.requested_at).to_std().unwrap_or_default();
        let mode = ride.quote.mode.as_str();
        deps.metrics.with(|| {
            metrics::histogram!(telemetry::MOBILITY_DISPATCH_SECONDS, "mode" => mode).record(waited.as_secs_f64())
        });
    }
}

/// Run `command` of the system on the stored ride `id`.
async fn system(deps: Arc<RideDeps>, id: Uuid, command: SystemCommand) -> Answer<Option<Ride>> {
    for _ in 0..ATTEMPTS {
        let Some(stored) = deps.store.ride(id).await? else { return Ok(None) };
        let ride = stored.ride;
        let now = Utc::now();
        let (next, offer_answer) = match command {
            SystemCommand::OfferTimedOut(driver) => {
                if ride.state != RideState::Requested {
                    return Ok(Some(ride));
                }
                (ride.decline(driver, now)?, Some((driver.0, "timed_out")))
            }
            SystemCommand::Expire => {
                if ride.state != RideState::Requested {
                    return Ok(Some(ride));
                }
                let offer = deps.store.pending_offer(ride.id).await?;
                (ride.expire(now)?, offer.map(|o| (o.driver_id, "withdrawn")))
            }
            SystemCommand::Settle => return settle(&deps, ride).await.map(Some),
        };
        let events = events_of(&deps.store, &next, Some(ride.state), None).await?;
        match deps.store.write_ride(&next, None, offer_answer, None, &events).await? {
            Written::Written => {
                if next.state == RideState::Expired {
                    deps.metrics.with(|| {
                        metrics::counter!(telemetry::MOBILITY_RIDES_EXPIRED_TOTAL, "mode" => next.quote.mode.as_str())
                            .increment(1)
                    });
                    return settle(&deps, next).await.map(Some);
                }
                return Ok(Some(next));
            }
            Written::Stale | Written::KeyTaken(_) => {}
        }
    }
    Err(MobilityFailure::Contended)
}

/// The payment step `ride` is due, and its outcome kept with the ride.
async fn settle(deps: &RideDeps, mut ride: Ride) -> Answer<Ride> {
    for _ in 0..ATTEMPTS {
        let driver_wallet = match ride.driver {
            Some(d) => deps.store.driver_states(&[d]).await?.first().map(|s| s.wallet),
            None => None,
        };
        let Some(settled) = deps.payments.settle(&ride, driver_wallet).await? else { return Ok(ride) };
        let now = Utc::now();
        // A failed step is written as such first; the next turn releases the hold and says so.
        let next = match &settled {
            Settled::Captured => ride.settle(PaymentState::Captured, None, now),
            Settled::Released => ride.settle(PaymentState::Released, None, now),
            Settled::Failed(reason) => ride.settle(PaymentState::Failed, Some(reason.clone()), now),
        };
        match deps.store.write_ride(&next, None, None, None, &[]).await? {
            Written::Written => {
                if settled == Settled::Captured {
                    let amount = next.fare.or(next.cancellation.as_ref().map(|c| c.fee)).unwrap_or(0);
                    let currency = next.quote.currency.code().to_owned();
                    deps.metrics.with(|| {
                        metrics::counter!(telemetry::MOBILITY_FARES_TOTAL, "currency" => currency)
                            .increment(u64::try_from(amount).unwrap_or(0))
                    });
                }
                if next.payment != PaymentState::Failed {
                    return Ok(next);
                }
                ride = next;
            }
            Written::Stale | Written::KeyTaken(_) => {
                let stored = deps.store.ride(ride.id).await?.ok_or(MobilityError::RideNotFound(ride.id))?;
                ride = stored.ride;
            }
        }
    }
    Err(MobilityFailure::Contended)
}

impl Handle<ActOnRide> for RideActor {
    fn handle(&mut self, msg: ActOnRide, _: &mut Ctx<Self>) -> Reply<Self, Answer<RideAnswer>> {
        let deps = self.deps.clone();
        Reply::atomic(RideActor::act(deps, msg), |answer, _: &mut Self, _| answer)
    }
}

impl Handle<SystemAct> for RideActor {
    fn handle(&mut self, msg: SystemAct, _: &mut Ctx<Self>) -> Reply<Self, Answer<Option<Ride>>> {
        debug_assert_eq!(msg.ride, self.id);
        Reply::atomic(system(self.deps.clone(), msg.ride, msg.command), |answer, _: &mut Self, _| answer)
    }
}
