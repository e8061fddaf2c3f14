//! What social takes from the event bus and gives to it: it makes mobility's completed rides and
//! ESG's milestones into posts by the users whose profiles share them (each event once, through
//! the [`SocialClient`]), leaves the other events of those topics to whoever needs them, and
//! publishes its own through the outbox to `beryl.social.events`.

use futures::future::BoxFuture;

use super::{posts::Posted, SocialClient, SocialFailure, NAME};
use crate::{
    actors::events::{Applied, Attempt, EventHandler, EventRoutes},
    adapters::bus::InRecord,
    domain::{
        esg::events::MILESTONE_REACHED, events::InboundError, mobility::events::RIDE_COMPLETED, social::Activity,
    },
    error::code::ErrorCode,
};

/// Register social's events.
pub fn register(routes: &mut EventRoutes, client: &SocialClient) {
    routes.consume(RIDE_COMPLETED, NAME, ActivityPosts { client: client.clone() });
    routes.consume(MILESTONE_REACHED, NAME, ActivityPosts { client: client.clone() });
    routes.ignore("mobility.");
    routes.ignore("esg.");
    routes.publish(NAME);
}

/// Makes activities into posts.
struct ActivityPosts {
    client: SocialClient,
}

impl EventHandler for ActivityPosts {
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError> {
        let activity = Activity::decode(record.payload.as_deref().unwrap_or_default())?;
        let request_id = record.header("request-id").map(str::to_owned);
        let client = self.client.clone();
        Ok(Box::new(move || -> BoxFuture<'static, Result<Applied, &'static str>> {
            let (client, activity, request_id) = (client.clone(), activity.clone(), request_id.clone());
            Box::pin(async move {
                match client.activity_post(&activity, request_id).await {
                    Ok(Posted::Made) => Ok(Applied::Applied),
                    Ok(Posted::Before) => Ok(Applied::Duplicate),
                    Ok(Posted::NotShared) => Ok(Applied::Ignored),
                    Err(SocialFailure::Store(_)) => Err("social_unavailable"),
                    Err(SocialFailure::Vault(v)) if v.code == ErrorCode::PrivacyUnavailable => {
                        Err("privacy_unavailable")
                    }
                    // A user field that does not open (damaged, or not sealed where the event
                    // says) never will: the event goes to the dead-letter topic.
                    Err(SocialFailure::Vault(v)) => {
                        Ok(Applied::Refused(InboundError::Refused { reason: "subject_unreadable", detail: v.detail }))
                    }
                    Err(SocialFailure::Rule(e)) => {
                        Ok(Applied::Refused(InboundError::Refused { reason: "social_refused", detail: e.to_string() }))
                    }
                    Err(_) => Err("actor_unavailable"),
                }
            })
        }))
    }
}
