//! Event-bus actors: the outbox relay, which publishes every committed domain event, and the
//! event consumer, which applies inbound events through the actors that own their aggregates.
//! Both run in the `worker` and `all` roles.

pub mod consumer;
pub mod relay;

pub use consumer::EventConsumer;
pub use relay::OutboxRelay;
