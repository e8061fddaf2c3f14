//! The rides as the domain actor serves them: a ride requested from a quote (its fare held on the
//! rider's wallet first), reads of one ride or a page of them, and the actions routed to the
//! ride's entity actor.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    dispatcher::Track,
    messages::{Answer, MobilityFailure},
    rides::{events_of, ActOnRide, RideActor, RideAnswer, SystemAct, KEY_TTL},
    MobilityDomain,
};
use crate::{
    actors::runtime::{Ctx, Entities, Handle, Reply},
    adapters::mobility::{
        ride_store::StoredRide,
        rides::{Inserted, KeyRow},
    },
    domain::{
        fintech::{FintechError, WalletId},
        idempotency::{fingerprint, IdempotencyError, IdempotencyKey},
        mobility::{DriverId, MobilityError, Ride, RideState},
    },
};

/// Request a ride from a quote, paid from `wallet`.
#[derive(Debug, Clone)]
pub struct RequestRide {
    /// The rider.
    pub subject: String,
    /// The quote it uses.
    pub quote: Uuid,
    /// The rider's wallet the fare is held on.
    pub wallet: WalletId,
    /// The idempotency key.
    pub key: IdempotencyKey,
}

impl actix::Message for RequestRide {
    type Result = Answer<RideAnswer>;
}

/// One ride, for one of its parties.
#[derive(Debug, Clone)]
pub struct GetRide {
    /// The ride.
    pub ride: Uuid,
    /// Who reads.
    pub subject: String,
    /// The reader's driver profile, if any.
    pub driver: Option<DriverId>,
}

impl actix::Message for GetRide {
    type Result = Answer<StoredRide>;
}

/// Whose rides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The rides the caller requested.
    Rider,
    /// The rides offered to or taken by the caller's driver profile.
    Driver(DriverId),
}

/// A page of rides, newest first.
#[derive(Debug, Clone)]
pub struct ListRides {
    /// Who reads.
    pub subject: String,
    /// As rider or as driver.
    pub role: Role,
    /// The page starts strictly before this ride (its request time and id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Page size.
    pub limit: usize,
}

impl actix::Message for ListRides {
    type Result = Answer<Vec<StoredRide>>;
}

impl MobilityDomain {
    pub(super) fn rides(&mut self) -> &mut Entities<Uuid, RideActor> {
        let (deps, kind, policy) = (&self.ride_deps, &self.ride_kind, &self.policy);
        self.rides.get_or_insert_with(|| {
            let deps = deps.clone();
            Entities::new(kind.clone(), policy.clone(), move |id: &Uuid| RideActor::new(*id, deps.clone()))
        })
    }
}

/// What `rider`'s request with `key` claims.
fn request_print(quote: Uuid, wallet: WalletId) -> String {
    fingerprint("mobility.request_ride", &serde_json::json!({"quote": quote, "wallet": wallet}))
}

impl Handle<RequestRide> for MobilityDomain {
    fn handle(&mut self, msg: RequestRide, _: &mut Ctx<Self>) -> Reply<Self, Answer<RideAnswer>> {
        let deps = self.ride_deps.clone();
        let dispatcher = self.dispatcher.get().cloned();
        Reply::later(async move {
            let store = &deps.store;
            let scope = store.index(&msg.subject);
            let print = request_print(msg.quote, msg.wallet);
            if let Some(kept) = store.rows().key(&scope, msg.key.as_str()).await? {
                return replay(&deps.store, &kept, &print).await;
            }
            let quote =
                store.quote_of(&msg.subject, msg.quote).await?.ok_or(MobilityError::QuoteNotFound(msg.quote))?;
            let wallet = deps.payments.fintech().wallet(msg.wallet, false).await?;
            let wallet = wallet.filter(|w| w.owned_by(&msg.subject)).ok_or(FintechError::WalletNotFound(msg.wallet))?;
            if wallet.currency != quote.currency {
                return Err(FintechError::CurrencyMismatch(wallet.currency, quote.currency).into());
            }
            let now = Utc::now();
            let ride = Ride::request(Uuid::now_v7(), msg.subject.clone(), msg.wallet, quote, now)?;
            if let Some(open) = store.rides_of_rider(&scope, None, 1).await?.first() {
                if open.ride.state.is_open() {
                    return Err(MobilityError::RideOpen(open.ride.id).into());
                }
            }
            deps.payments.hold(&ride, deps.rules.hold_hours, deps.rules.tolerance_pct).await?;
            let key = KeyRow {
                scope,
                key: msg.key.as_str().to_owned(),
                fingerprint: print.clone(),
                ride_id: ride.id,
                version: ride.version,
                expires_at: now + chrono::Duration::from_std(KEY_TTL).unwrap_or(chrono::Duration::MAX),
            };
            let events = events_of(store, &ride, None, None).await?;
            let inserted = store.insert_ride(&ride, Some(&key), &events).await;
            let refusal = match inserted {
                Ok(Inserted::Inserted) => None,
                Ok(Inserted::QuoteUsed) => Some(MobilityFailure::Rule(MobilityError::QuoteUsed(ride.quote.id))),
                Ok(Inserted::RideOpen) => Some(MobilityFailure::Rule(MobilityError::RideOpen(ride.id))),
                Ok(Inserted::KeyTaken(kept)) => {
                    deps.payments.release(&ride).await?;
                    return replay(store, &kept, &print).await;
                }
                Err(e) => Some(e.into()),
            };
            if let Some(refusal) = refusal {
                // Nothing was written: the hold goes.
                deps.payments.release(&ride).await?;
                return Err(refusal);
            }
            if let Some(dispatcher) = dispatcher {
                dispatcher.tell(Track(ride.id));
            }
            let ride = store.ride(ride.id).await?.ok_or(MobilityError::RideNotFound(ride.id))?;
            Ok(RideAnswer { ride, replayed: false })
        })
    }
}

async fn replay(store: &crate::adapters::mobility::MobilityStore, kept: &KeyRow, print: &str) -> Answer<RideAnswer> {
    if kept.fingerprint != print {
        return Err(IdempotencyError::Reused(vec!["request".into()]).into());
    }
    let ride = store.ride(kept.ride_id).await?.ok_or(MobilityError::RideNotFound(kept.ride_id))?;
    Ok(RideAnswer { ride, replayed: true })
}

impl Handle<ActOnRide> for MobilityDomain {
    fn handle(&mut self, msg: ActOnRide, _: &mut Ctx<Self>) -> Reply<Self, Answer<RideAnswer>> {
        let answer = self.rides().get(&msg.ride).ask_queued(msg);
        let dispatcher = self.dispatcher.get().cloned();
        Reply::later(async move {
            let answer = answer.await??;
            // A ride a driver declined or gave back is dispatched again.
            if let (RideState::Requested, Some(dispatcher)) = (answer.ride.ride.state, dispatcher) {
                dispatcher.tell(Track(answer.ride.ride.id));
            }
            Ok(answer)
        })
    }
}

impl Handle<SystemAct> for MobilityDomain {
    fn handle(&mut self, msg: SystemAct, _: &mut Ctx<Self>) -> Reply<Self, Answer<Option<Ride>>> {
        let answer = self.rides().get(&msg.ride).ask_queued(msg);
        Reply::later(async move { answer.await? })
    }
}

impl Handle<GetRide> for MobilityDomain {
    fn handle(&mut self, msg: GetRide, _: &mut Ctx<Self>) -> Reply<Self, Answer<StoredRide>> {
        let store = self.ride_deps.store.clone();
        Reply::later(async move {
            let stored = store.ride(msg.ride).await?.ok_or(MobilityError::RideNotFound(msg.ride))?;
            let offered = match msg.driver {
                Some(d) => store.rows().offered(msg.ride, d.0).await?,
                None => false,
            };
            match stored.ride.party(&msg.subject, msg.driver) {
                Some(_) => Ok(stored),
                None if offered => Ok(stored),
                None => Err(MobilityError::RideNotFound(msg.ride).into()),
            }
        })
    }
}

impl Handle<ListRides> for MobilityDomain {
    fn handle(&mut self, msg: ListRides, _: &mut Ctx<Self>) -> Reply<Self, Answer<Vec<StoredRide>>> {
        let store = self.ride_deps.store.clone();
        Reply::later(async move {
            Ok(match msg.role {
                Role::Rider => store.rides_of_rider(&store.index(&msg.subject), msg.before, msg.limit).await?,
                Role::Driver(driver) => store.rides_of_driver(driver, msg.before, msg.limit).await?,
            })
        })
    }
}
