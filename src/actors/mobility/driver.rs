//! One entity actor per online driver (keyed by the driver's subject): it orders the driver's
//! changes, admits position reports at the allowed rate and writes them to the geo index.
//!
//! PostgreSQL holds the driver; a change is applied to the state read from it and written only
//! if nobody wrote in between (the row's version), otherwise read again and retried, so replicas
//! never lose one another's changes. The state kept here serves position reports; it is read
//! again once older than [`STATE_TTL`], so an availability changed through another replica is
//! seen within that time (dispatch always reads the stored state).

use std::time::{Duration, Instant};

use chrono::Utc;

use super::messages::{
    Answer, GetDriver, LocationAccepted, MobilityFailure, PutDriver, ReportLocation, SetAvailability,
};
use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::mobility::{GeoIndex, MobilityStore},
    domain::mobility::{events, Availability, Driver, DriverId, LocationGate, MobilityError},
    telemetry,
};

/// Name of the drivers' entity kind (the `actor` label of their metrics).
pub const KIND: &str = "driver";

/// How long the state read from the store serves position reports.
pub const STATE_TTL: Duration = Duration::from_secs(5);

/// How often a change is tried against concurrent ones before giving up.
const ATTEMPTS: usize = 4;

/// The actor of one driver.
pub struct DriverActor {
    subject: String,
    store: MobilityStore,
    geo: GeoIndex,
    /// The driver as last read or written, and when.
    state: Option<(Driver, Instant)>,
    gate: LocationGate,
}

impl DriverActor {
    /// An actor for the driver of `subject`; its state loads on first use.
    pub fn new(subject: String, store: MobilityStore, geo: GeoIndex) -> Self {
        Self { subject, store, geo, state: None, gate: LocationGate::default() }
    }

    fn current(&self) -> Option<&Driver> {
        self.state.as_ref().filter(|(_, at)| at.elapsed() < STATE_TTL).map(|(d, _)| d)
    }
}

impl Managed for DriverActor {}

/// Apply `change` to the stored driver of `subject` and write it, again on a fresh read while
/// another change wins; the geo index follows the new availability.
async fn change(
    store: MobilityStore,
    geo: GeoIndex,
    subject: String,
    change: impl Fn(Option<&Driver>) -> Result<Option<Driver>, MobilityError>,
) -> Answer<(Driver, bool)> {
    for _ in 0..ATTEMPTS {
        let stored = store.driver_of(&subject).await?;
        let Some(next) = change(stored.as_ref())? else {
            return stored.map(|d| (d, false)).ok_or(MobilityError::DriverNotFound.into());
        };
        let request_id = telemetry::current_request_id().map(|r| r.as_str().to_owned());
        let written = match &stored {
            None => store.create_driver(&subject, &next).await?,
            Some(before) => {
                let events = if before.availability == next.availability {
                    Vec::new()
                } else {
                    vec![events::driver_status_changed(&next, before.availability, request_id, next.updated_at)]
                };
                store.save_driver(&subject, &next, &events).await?
            }
        };
        if written {
            if next.availability != Availability::Available {
                geo.remove(next.id).await?;
            }
            return Ok((next, stored.is_none()));
        }
    }
    Err(MobilityFailure::Contended)
}

impl Handle<PutDriver> for DriverActor {
    fn handle(&mut self, msg: PutDriver, _: &mut Ctx<Self>) -> Reply<Self, Answer<(Driver, bool)>> {
        let (store, geo) = (self.store.clone(), self.geo.clone());
        let fut = change(store, geo, self.subject.clone(), move |stored| {
            let now = Utc::now();
            match stored {
                None => Ok(Some(Driver::register(DriverId::generate(), msg.vehicle.clone(), msg.wallet, now))),
                Some(d) if d.vehicle == msg.vehicle && d.wallet == msg.wallet => Ok(None),
                Some(d) => d.change_vehicle(msg.vehicle.clone(), msg.wallet, now).map(Some),
            }
        });
        Reply::atomic(fut, |answer, actor: &mut Self, _| {
            if let Ok((driver, _)) = &answer {
                actor.state = Some((driver.clone(), Instant::now()));
            }
            answer
        })
    }
}

impl Handle<SetAvailability> for DriverActor {
    fn handle(&mut self, msg: SetAvailability, _: &mut Ctx<Self>) -> Reply<Self, Answer<Driver>> {
        let (store, geo) = (self.store.clone(), self.geo.clone());
        let to = msg.to;
        let fut = change(store, geo, self.subject.clone(), move |stored| {
            let driver = stored.ok_or(MobilityError::DriverNotFound)?;
            if driver.availability == to {
                return Ok(None);
            }
            driver.set_availability(to, Utc::now()).map(Some)
        });
        Reply::atomic(fut, |answer, actor: &mut Self, _| {
            let (driver, _) = answer?;
            actor.state = Some((driver.clone(), Instant::now()));
            Ok(driver)
        })
    }
}

impl Handle<GetDriver> for DriverActor {
    fn handle(&mut self, _: GetDriver, _: &mut Ctx<Self>) -> Reply<Self, Answer<Driver>> {
        let (store, subject) = (self.store.clone(), self.subject.clone());
        let fut = async move { store.driver_of(&subject).await };
        Reply::atomic(fut, |read, actor: &mut Self, _| {
            let driver = read?.ok_or(MobilityError::DriverNotFound)?;
            actor.state = Some((driver.clone(), Instant::now()));
            Ok(driver)
        })
    }
}

/// What a position report does once the driver's state is known: admitted at the allowed rate,
/// refused while offline, written to the geo index while available.
fn report(
    driver: &Driver,
    gate: &mut LocationGate,
    geo: &GeoIndex,
    msg: &ReportLocation,
) -> Result<Option<impl std::future::Future<Output = Answer<LocationAccepted>>>, MobilityFailure> {
    if driver.availability == Availability::Offline {
        return Err(MobilityError::DriverOffline.into());
    }
    let now = Utc::now().timestamp_millis();
    gate.admit(now)?;
    if driver.availability != Availability::Available {
        return Ok(None);
    }
    let (geo, mode, id, point) = (geo.clone(), driver.vehicle.mode, driver.id, msg.fix.point);
    Ok(Some(async move {
        geo.put(mode, id, point, now).await?;
        Ok(LocationAccepted { dispatchable: true })
    }))
}

async fn judged(
    write: Result<Option<impl std::future::Future<Output = Answer<LocationAccepted>>>, MobilityFailure>,
) -> Answer<LocationAccepted> {
    match write? {
        None => Ok(LocationAccepted { dispatchable: false }),
        Some(write) => write.await,
    }
}

impl Handle<ReportLocation> for DriverActor {
    fn handle(&mut self, msg: ReportLocation, _: &mut Ctx<Self>) -> Reply<Self, Answer<LocationAccepted>> {
        if let Some(driver) = self.current().cloned() {
            return match report(&driver, &mut self.gate, &self.geo, &msg) {
                Err(e) => Reply::Now(Err(e)),
                Ok(None) => Reply::Now(Ok(LocationAccepted { dispatchable: false })),
                Ok(Some(write)) => Reply::later(write),
            };
        }
        // The state is read, the report judged against it and written, with no other message
        // between: the gate travels with the work and comes back with the state.
        let (store, subject, geo, mut gate) = (self.store.clone(), self.subject.clone(), self.geo.clone(), self.gate);
        let work = async move {
            let driver = match store.driver_of(&subject).await {
                Ok(Some(driver)) => driver,
                Ok(None) => return (None, gate, Err(MobilityError::DriverNotFound.into())),
                Err(e) => return (None, gate, Err(e.into())),
            };
            let answer = judged(report(&driver, &mut gate, &geo, &msg)).await;
            (Some(driver), gate, answer)
        };
        Reply::atomic(work, |(driver, gate, answer), actor: &mut Self, _| {
            actor.gate = gate;
            if let Some(driver) = driver {
                actor.state = Some((driver, Instant::now()));
            }
            answer
        })
    }
}

impl Handle<super::messages::ForgetDriver> for DriverActor {
    fn handle(
        &mut self,
        _: super::messages::ForgetDriver,
        _: &mut Ctx<Self>,
    ) -> Reply<Self, Result<(), std::convert::Infallible>> {
        self.state = None;
        Reply::Now(Ok(()))
    }
}
