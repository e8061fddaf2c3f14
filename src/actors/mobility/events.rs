//! What mobility gives to the event bus: its drivers' (and rides') events, through the outbox,
//! on its own topic.

use super::NAME;
use crate::actors::events::EventRoutes;

/// Register mobility's events.
pub fn register(routes: &mut EventRoutes) {
    routes.publish(NAME);
}
