//! What ESG takes from the event bus and gives to it: it consumes mobility's completed rides,
//! each credited once to its rider through the [`EsgClient`], leaves mobility's other events to
//! whoever needs them, and publishes its own through the outbox.

use futures::future::BoxFuture;

use super::{client::Credited, EsgClient, EsgFailure, NAME};
use crate::{
    actors::events::{Applied, Attempt, EventHandler, EventRoutes},
    adapters::bus::InRecord,
    domain::{esg::RideCompleted, events::InboundError, mobility::events::RIDE_COMPLETED},
    error::code::ErrorCode,
};

/// Register ESG's events.
pub fn register(routes: &mut EventRoutes, client: &EsgClient) {
    routes.consume(RIDE_COMPLETED, NAME, RidesCompleted { client: client.clone() });
    routes.ignore("mobility.");
    routes.publish(NAME);
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
                    Err(EsgFailure::Store(_)) => Err("esg_unavailable"),
                    Err(EsgFailure::Adapter(_)) => Err("emissions_unavailable"),
                    Err(EsgFailure::Vault(v)) if v.code == ErrorCode::PrivacyUnavailable => Err("privacy_unavailable"),
                    // A rider field that does not open (not sealed by mobility, or damaged) never
                    // will: the event goes to the dead-letter topic rather than holding its
                    // partition.
                    Err(EsgFailure::Vault(v)) => {
                        Ok(Applied::Refused(InboundError::Refused { reason: "rider_unreadable", detail: v.detail }))
                    }
                    Err(EsgFailure::Rule(e)) => {
                        Ok(Applied::Refused(InboundError::Refused { reason: "esg_refused", detail: e.to_string() }))
                    }
                    Err(_) => Err("actor_unavailable"),
                }
            })
        }))
    }
}
