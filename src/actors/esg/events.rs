//! What ESG takes from the event bus and gives to it: it consumes mobility's completed rides,
//! each credited once to its rider, social's created posts and comments, each counted once for
//! its author, and fintech's wallet lifecycle changes, each counted once for the wallet's owner,
//! through the [`EsgClient`]; it leaves those domains' other events to whoever needs them, and
//! publishes its own through the outbox.

use futures::future::BoxFuture;

use super::{client::Credited, Answer, EsgClient, EsgFailure, NAME};
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
    let rides = Credits {
        client: client.clone(),
        decode: RideCompleted::decode,
        credit: |client, ride, request_id| Box::pin(async move { client.credit_ride(&ride, request_id).await }),
        unreadable: "rider_unreadable",
    };
    routes.consume(RIDE_COMPLETED, NAME, rides);
    routes.ignore("mobility.");
    let participations = Credits {
        client: client.clone(),
        decode: |payload| TookPart::decode(payload, took),
        credit: |client, part, request_id| Box::pin(async move { client.participate(&part, request_id).await }),
        unreadable: "participant_unreadable",
    };
    routes.consume(POST_CREATED, NAME, participations.clone());
    routes.consume(COMMENT_CREATED, NAME, participations);
    routes.ignore("social.");
    let wallets = Credits {
        client: client.clone(),
        decode: WalletChanged::decode,
        credit: |client, changed, request_id| {
            Box::pin(async move { client.wallet_changed(&changed, request_id).await })
        },
        unreadable: "owner_unreadable",
    };
    for kind in WALLET_LIFECYCLE {
        routes.consume(kind, NAME, wallets.clone());
    }
    routes.ignore(WALLET_EVENT_PREFIX);
    routes.publish(NAME);
}

/// The wallet events the governance component reads; fintech's other events (every movement of
/// money) are acknowledged as ignored from their `event-type` header, unread.
const WALLET_LIFECYCLE: [&str; 4] =
    ["fintech.wallet.opened", "fintech.wallet.frozen", "fintech.wallet.unfrozen", "fintech.wallet.closed"];

/// The participation a social event type stands for.
fn took(event_type: &str) -> Option<Took> {
    match event_type {
        POST_CREATED => Some(Took::Post),
        COMMENT_CREATED => Some(Took::Comment),
        _ => None,
    }
}

/// Credits one kind of inbound event to the subject it names: `decode` reads the message,
/// `credit` records what it read through the client, and a sealed subject that will never open
/// is dead-lettered as `unreadable`.
struct Credits<T> {
    client: EsgClient,
    decode: fn(&[u8]) -> Result<T, InboundError>,
    credit: fn(EsgClient, T, Option<String>) -> BoxFuture<'static, Answer<Credited>>,
    unreadable: &'static str,
}

impl<T> Clone for Credits<T> {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), decode: self.decode, credit: self.credit, unreadable: self.unreadable }
    }
}

impl<T: Clone + Send + Sync + 'static> EventHandler for Credits<T> {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let input = (self.decode)(record.payload.as_deref().unwrap_or_default())?;
        let request_id = record.header("request-id").map(str::to_owned);
        let (client, credit, unreadable) = (self.client.clone(), self.credit, self.unreadable);
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let credited = credit(client.clone(), input.clone(), request_id.clone());
            Box::pin(async move {
                match credited.await {
                    Ok(Credited::Recorded) => Ok(Applied::Applied),
                    Ok(Credited::Duplicate) => Ok(Applied::Duplicate),
                    Ok(Credited::Ignored) => Ok(Applied::Ignored),
                    Err(e) => failed(e, unreadable),
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
