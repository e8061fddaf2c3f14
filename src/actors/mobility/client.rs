//! The one way into the mobility domain: REST, GraphQL and (for rides) the event consumer call
//! [`MobilityClient`], which sends the domain actor its messages, counts business operations and
//! answers typed results.

use super::{
    Answer, GetDriver, LocationAccepted, MobilityDomain, MobilityFailure, PutDriver, QuoteAnswer, ReportLocation,
    RequestQuote, SetAvailability,
};
use crate::{
    actors::{fintech::FintechClient, runtime::ActorRef},
    domain::{
        fintech::{Currency, FintechError, Wallet, WalletId, WalletStatus},
        mobility::{Availability, Driver, DriverId, Fix, MobilityError, Mode, Point, Vehicle},
    },
    telemetry::{self, Metrics},
};

/// The mobility domain's client; cheap to clone.
#[derive(Clone)]
pub struct MobilityClient {
    domain: ActorRef<MobilityDomain>,
    fintech: FintechClient,
    metrics: Metrics,
}

impl MobilityClient {
    /// A client of `domain`, checking wallets through `fintech`.
    pub fn new(domain: ActorRef<MobilityDomain>, fintech: FintechClient, metrics: Metrics) -> Self {
        Self { domain, fintech, metrics }
    }

    /// `wallet`, checked to be `subject`'s and open; another's is not found.
    async fn own_wallet(&self, subject: &str, wallet: WalletId) -> Answer<Wallet> {
        let found = self.fintech.wallet(wallet, false).await?.filter(|w| w.owned_by(subject));
        let found = found.ok_or(FintechError::WalletNotFound(wallet))?;
        if found.status == WalletStatus::Closed {
            return Err(FintechError::WalletClosed(wallet).into());
        }
        Ok(found)
    }

    /// The domain actor.
    pub fn actor(&self) -> &ActorRef<MobilityDomain> {
        &self.domain
    }

    fn count<T>(&self, operation: &'static str, result: &Answer<T>) {
        let status = match result {
            Ok(_) => "applied",
            Err(MobilityFailure::Rule(_)) => "refused",
            Err(_) => "failed",
        };
        self.metrics.with(|| {
            metrics::counter!(telemetry::BUSINESS_OPERATIONS_TOTAL, "domain" => "mobility", "operation" => operation, "status" => status)
                .increment(1)
        });
    }

    /// Create `subject`'s driver profile or change its vehicle and wallet; `true` when created.
    pub async fn put_driver(&self, subject: &str, vehicle: Vehicle, wallet: WalletId) -> Answer<(Driver, bool)> {
        self.own_wallet(subject, wallet).await?;
        let msg = PutDriver { subject: subject.to_owned(), vehicle, wallet };
        let result = self.domain.ask(msg).await.map_err(MobilityFailure::from).and_then(|r| r);
        self.count("put_driver", &result);
        result
    }

    /// The id of `subject`'s driver profile, if they have one (no driver actor is started).
    pub async fn driver_id(&self, subject: &str) -> Answer<Option<DriverId>> {
        self.domain.ask(super::FindDriver { subject: subject.to_owned() }).await?
    }

    /// `subject`'s driver profile.
    pub async fn driver(&self, subject: &str) -> Answer<Driver> {
        self.domain.ask(GetDriver { subject: subject.to_owned() }).await?
    }

    /// Take `subject` online (available) or offline.
    pub async fn set_availability(&self, subject: &str, to: Availability) -> Answer<Driver> {
        let msg = SetAvailability { subject: subject.to_owned(), to };
        let result = self.domain.ask(msg).await.map_err(MobilityFailure::from).and_then(|r| r);
        self.count("set_availability", &result);
        result
    }

    /// `subject`'s position report.
    pub async fn report_location(&self, subject: &str, fix: Fix) -> Answer<LocationAccepted> {
        let result = self
            .domain
            .ask(ReportLocation { subject: subject.to_owned(), fix })
            .await
            .map_err(MobilityFailure::from)
            .and_then(|r| r);
        let outcome = match &result {
            Ok(LocationAccepted { dispatchable: true }) => "indexed",
            Ok(LocationAccepted { dispatchable: false }) => "on_ride",
            Err(MobilityFailure::Rule(MobilityError::DriverOffline)) => "offline",
            Err(MobilityFailure::Rule(MobilityError::LocationTooFrequent { .. })) => "too_frequent",
            Err(_) => "failed",
        };
        self.metrics
            .with(|| metrics::counter!(telemetry::MOBILITY_LOCATION_REPORTS_TOTAL, "outcome" => outcome).increment(1));
        result
    }

    /// Request a ride from `quote`, its fare held on `wallet`.
    pub async fn request_ride(
        &self,
        subject: &str,
        quote: uuid::Uuid,
        wallet: WalletId,
        key: crate::domain::idempotency::IdempotencyKey,
    ) -> Answer<super::RideAnswer> {
        let msg = super::RequestRide { subject: subject.to_owned(), quote, wallet, key };
        let result = self.domain.ask(msg).await.map_err(MobilityFailure::from).and_then(|r| r);
        self.count("request_ride", &result);
        result
    }

    /// `subject`'s action on `ride`.
    pub async fn act(
        &self,
        subject: &str,
        ride: uuid::Uuid,
        command: super::RideCommand,
        key: crate::domain::idempotency::IdempotencyKey,
    ) -> Answer<super::RideAnswer> {
        let driver = self.driver_id(subject).await?;
        let operation = match &command {
            super::RideCommand::Accept => "accept_ride",
            super::RideCommand::Decline => "decline_ride",
            super::RideCommand::Arrive => "arrive_ride",
            super::RideCommand::Start => "start_ride",
            super::RideCommand::Complete { .. } => "complete_ride",
            super::RideCommand::Cancel { .. } => "cancel_ride",
            super::RideCommand::Rate { .. } => "rate_ride",
        };
        let msg = super::ActOnRide { ride, subject: subject.to_owned(), driver, command, key: Some(key) };
        let result = self.domain.ask(msg).await.map_err(MobilityFailure::from).and_then(|r| r);
        self.count(operation, &result);
        result
    }

    /// The ride `ride`, for one of its parties.
    pub async fn ride(
        &self,
        subject: &str,
        ride: uuid::Uuid,
    ) -> Answer<crate::adapters::mobility::ride_store::StoredRide> {
        let driver = self.driver_id(subject).await?;
        self.domain.ask(super::GetRide { ride, subject: subject.to_owned(), driver }).await?
    }

    /// A page of `subject`'s rides in `role`, newest first.
    pub async fn rides(
        &self,
        subject: &str,
        role: super::Role,
        before: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)>,
        limit: usize,
    ) -> Answer<Vec<crate::adapters::mobility::ride_store::StoredRide>> {
        self.domain.ask(super::ListRides { subject: subject.to_owned(), role, before, limit }).await?
    }

    /// `subject` was erased: their live driver actor drops its state.
    pub async fn forget_driver(&self, subject: &str) -> Answer<()> {
        self.domain
            .ask(super::ForgetDriver { subject: subject.to_owned() })
            .await?
            .unwrap_or_else(|never| match never {});
        Ok(())
    }

    /// A quote for `subject`'s trip.
    pub async fn quote(
        &self,
        subject: &str,
        pickup: Point,
        dropoff: Point,
        mode: Mode,
        currency: Currency,
    ) -> Answer<QuoteAnswer> {
        let msg = RequestQuote { subject: subject.to_owned(), pickup, dropoff, mode, currency };
        let result = self.domain.ask(msg).await.map_err(MobilityFailure::from).and_then(|r| r);
        self.count("quote", &result);
        result
    }
}
