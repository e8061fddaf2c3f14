//! Event-bus actors: the outbox relay, which publishes every committed domain event, and the
//! event consumer, which applies inbound events through the handlers their domains registered
//! (and so through the actors that own their aggregates). Both run in the `worker` and `all`
//! roles.

pub mod consumer;
pub mod relay;
pub mod routes;

pub use consumer::EventConsumer;
pub use relay::OutboxRelay;
pub use routes::{Applied, Attempt, EventHandler, EventRoutes};
