//! The mobility domain's protocol: one message per intent, answered with the domain's types or a
//! [`MobilityFailure`].

use crate::{
    actors::{fintech::CallError, runtime::AskError},
    adapters::{external::AdapterError, mobility::StoreError},
    domain::{
        fintech::{Currency, FintechError, WalletId},
        mobility::{Availability, Driver, DriverId, Fix, MobilityError, Mode, Point, Quote, Vehicle},
    },
    error::code::Coded,
};

/// Why a mobility call got no answer it could use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MobilityFailure {
    /// A rule refused it; nothing changed.
    #[error(transparent)]
    Rule(#[from] MobilityError),
    /// The store, the geo index or the vault failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An external adapter (routing) gave no answer.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// An actor did not answer.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// A wallet named cannot be used (not the caller's, closed, ...).
    #[error(transparent)]
    Wallet(#[from] FintechError),
    /// The ledger did not answer.
    #[error(transparent)]
    Ledger(#[from] CallError),
    /// The idempotency key cannot be used for this request.
    #[error(transparent)]
    Idempotency(#[from] crate::domain::idempotency::IdempotencyError),
    /// Another change of the same driver or ride kept winning the race.
    #[error("the change kept conflicting with concurrent changes")]
    Contended,
}

impl MobilityFailure {
    fn inner(&self) -> Option<&dyn Coded> {
        match self {
            Self::Rule(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Adapter(e) => Some(e),
            Self::Ask(e) => Some(e),
            Self::Wallet(e) => Some(e),
            Self::Ledger(e) => Some(e),
            Self::Idempotency(e) => Some(e),
            Self::Contended => None,
        }
    }
}

crate::error::code::coded_by_inner!(MobilityFailure);

/// What a mobility message answers.
pub type Answer<T> = Result<T, MobilityFailure>;

/// Create the caller's driver profile, or change its vehicle and wallet.
#[derive(Debug, Clone)]
pub struct PutDriver {
    /// The driver's subject.
    pub subject: String,
    /// The vehicle.
    pub vehicle: Vehicle,
    /// The wallet credited with the driver's share of each fare.
    pub wallet: WalletId,
}

impl actix::Message for PutDriver {
    type Result = Answer<(Driver, bool)>;
}

/// The caller's driver profile.
#[derive(Debug, Clone)]
pub struct GetDriver {
    /// The driver's subject.
    pub subject: String,
}

impl actix::Message for GetDriver {
    type Result = Answer<Driver>;
}

/// Go online (available) or offline.
#[derive(Debug, Clone)]
pub struct SetAvailability {
    /// The driver's subject.
    pub subject: String,
    /// `available` or `offline`.
    pub to: Availability,
}

impl actix::Message for SetAvailability {
    type Result = Answer<Driver>;
}

/// A driver's position report.
#[derive(Debug, Clone)]
pub struct ReportLocation {
    /// The driver's subject.
    pub subject: String,
    /// Where the driver is.
    pub fix: Fix,
}

/// What a position report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationAccepted {
    /// Whether the driver can be offered rides from there (available, rather than on a ride).
    pub dispatchable: bool,
}

impl actix::Message for ReportLocation {
    type Result = Answer<LocationAccepted>;
}

/// A price and a route for a trip.
#[derive(Debug, Clone)]
pub struct RequestQuote {
    /// The rider's subject.
    pub subject: String,
    /// Where the ride starts.
    pub pickup: Point,
    /// Where it ends.
    pub dropoff: Point,
    /// How.
    pub mode: Mode,
    /// The currency of the wallet that will pay.
    pub currency: Currency,
}

impl actix::Message for RequestQuote {
    type Result = Answer<QuoteAnswer>;
}

/// A quote with where its figures came from.
#[derive(Debug, Clone, PartialEq)]
pub struct QuoteAnswer {
    /// The quote, kept for the ride that uses it.
    pub quote: Quote,
    /// Whether the route is an estimate (the routing provider could not be asked).
    pub route_estimated: bool,
    /// Where the route came from (`provider`, `cache`, `simulator`, `fallback`).
    pub route_source: String,
    /// Where the CO2e factor came from, when there is an estimate.
    pub co2e_source: Option<String>,
}

/// The subject was erased: their live driver actor drops the state it holds.
#[derive(Debug, Clone)]
pub struct ForgetDriver {
    /// The driver's subject.
    pub subject: String,
}

impl actix::Message for ForgetDriver {
    type Result = Result<(), std::convert::Infallible>;
}

/// Recompute the drivers gauge from the store.
#[derive(Debug, Clone, Copy)]
pub struct CountDrivers;

impl actix::Message for CountDrivers {
    type Result = Answer<()>;
}

/// The id of the driver profile of a subject, if they have one: read from the store, with no
/// driver actor started and nothing opened.
#[derive(Debug, Clone)]
pub struct FindDriver {
    /// The subject.
    pub subject: String,
}

impl actix::Message for FindDriver {
    type Result = Answer<Option<DriverId>>;
}
