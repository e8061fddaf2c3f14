//! What social gives to the event bus: its own events, published through the outbox to
//! `beryl.social.events`. It consumes nothing yet.

use super::NAME;
use crate::actors::events::EventRoutes;

/// Register social's events.
pub fn register(routes: &mut EventRoutes) {
    routes.publish(NAME);
}
