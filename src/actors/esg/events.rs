//! What ESG takes from the event bus and gives to it: it consumes mobility's completed rides,
//! each credited once to its rider, social's created posts and comments, each counted once for
//! its author, and fintech's wallet lifecycle changes, each counted once for the wallet's owner,
//! through the [`EsgClient`]; it leaves those domains' other events to whoever needs them, and
//! publishes its own through the outbox.

use futures::future::BoxFuture;

use super::{client::Credited, EsgClient, EsgFailure, NAME};
use crate::{
    actors::events::{Applied, Attempt, EventHandler, EventRoutes},
    adapters::bus::InRecord,
    domain::{
        esg::{events::WALLET_EVENT_PREFIX, RideCompleted, Took, TookPart, WalletChanged},
        events::InboundError,
        mobility::events::RIDE_COMPLETED,
        social::events::{COMMENT_CREATED, POST_CREATED},
    },
    error::code::ErrorCode,
};

/// Register ESG's events.
pub fn register(routes: &mut EventRoutes, client: &EsgClient) {
    routes.consume(RIDE_COMPLETED, NAME, RidesCompleted { client: client.clone() });
    routes.ignore("mobility.");
    routes.consume(POST_CREATED, NAME, Participations { client: client.clone() });
    routes.consume(COMMENT_CREATED, NAME, Participations { client: client.clone() });
    routes.ignore("social.");
    for kind in WALLET_LIFECYCLE {
        routes.consume(kind, NAME, WalletChanges { client: client.clone() });
    }
    routes.ignore(WALLET_EVENT_PREFIX);
    routes.publish(NAME);
}

/// Counts posts and comments for their authors.
struct Participations {
    client: EsgClient,
}

/// The participation a social event type stands for.
fn took(event_type: &str) -> Option<Took> {
    match event_type {
        POST_CREATED => Some(Took::Post),
        COMMENT_CREATED => Some(Took::Comment),
        _ => None,
    }
}

impl EventHandler for Participations {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let part = TookPart::decode(record.payload.as_deref().unwrap_or_default(), took)?;
        let request_id = record.header("request-id").map(str::to_owned);
        let client = self.client.clone();
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let (client, part, request_id) = (client.clone(), part.clone(), request_id.clone());
            Box::pin(async move {
                match client.participate(&part, request_id).await {
                    Ok(Credited::Recorded) => Ok(Applied::Applied),
                    Ok(Credited::Duplicate) => Ok(Applied::Duplicate),
                    Ok(Credited::Ignored) => Ok(Applied::Ignored),
                    Err(e) => failed(e, "participant_unreadable"),
                }
            })
        }))
    }
}

/// The wallet events the governance component reads; fintech's other events (every movement of
/// money) are acknowledged as ignored from their `event-type` header, unread.
const WALLET_LIFECYCLE: [&str; 4] =
    ["fintech.wallet.opened", "fintech.wallet.frozen", "fintech.wallet.unfrozen", "fintech.wallet.closed"];

/// Counts wallets' lifecycle changes for their owners.
struct WalletChanges {
    client: EsgClient,
}

impl EventHandler for WalletChanges {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let changed = WalletChanged::decode(record.payload.as_deref().unwrap_or_default())?;
        let request_id = record.header("request-id").map(str::to_owned);
        let client = self.client.clone();
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let (client, changed, request_id) = (client.clone(), changed.clone(), request_id.clone());
            Box::pin(async move {
                match client.wallet_changed(&changed, request_id).await {
                    Ok(Credited::Recorded) => Ok(Applied::Applied),
                    Ok(Credited::Duplicate) => Ok(Applied::Duplicate),
                    Ok(Credited::Ignored) => Ok(Applied::Ignored),
                    Err(e) => failed(e, "owner_unreadable"),
                }
            })
        }))
    }
}

/// What a failure to credit an event makes of it: tried again when it may pass, dead-lettered
/// (as `unreadable`) when the sealed subject it names will never open.
fn failed(e: EsgFailure, unreadable: &'static str) -> Result<Applied, &'static str> {
    match e {
        EsgFailure::Store(_) => Err("esg_unavailable"),
        EsgFailure::Adapter(_) => Err("emissions_unavailable"),
        EsgFailure::Vault(v) if v.code == ErrorCode::PrivacyUnavailable => Err("privacy_unavailable"),
        // A subject field that does not open (not sealed by its domain, or damaged) never will:
        // the event goes to the dead-letter topic rather than holding its partition.
        EsgFailure::Vault(v) => Ok(Applied::Refused(InboundError::Refused { reason: unreadable, detail: v.detail })),
        EsgFailure::Rule(e) => {
            Ok(Applied::Refused(InboundError::Refused { reason: "esg_refused", detail: e.to_string() }))
        }
        _ => Err("actor_unavailable"),
    }
}

/// Credits completed rides.
struct RidesCompleted {
    client: EsgClient,
}

impl EventHandler for RidesCompleted {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let ride = RideCompleted::decode(record.payload.as_deref().unwrap_or_default())?;
        let request_id = record.header("request-id").map(str::to_owned);
        let client = self.client.clone();
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let (client, ride, request_id) = (client.clone(), ride.clone(), request_id.clone());
            Box::pin(async move {
                match client.credit_ride(&ride, request_id).await {
                    Ok(Credited::Recorded) => Ok(Applied::Applied),
                    Ok(Credited::Duplicate) => Ok(Applied::Duplicate),
                    Ok(Credited::Ignored) => Ok(Applied::Ignored),
                    Err(e) => failed(e, "rider_unreadable"),
                }
            })
        }))
    }
}
