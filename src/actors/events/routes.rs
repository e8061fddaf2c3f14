//! Event routing: each domain registers, in one place, the inbound event types it consumes
//! (type -> handler) and that it publishes events through the outbox. The consumer hands every
//! inbound message to the handlers of its type (one per domain that consumes it: mobility's
//! completed rides go to ESG and to social); a type nobody registered goes to the dead-letter
//! topic. The relay creates and publishes to the topic of every domain that publishes.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{adapters::bus::InRecord, domain::events::InboundError};

/// How an attempt to apply an inbound event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The change was made.
    Applied,
    /// The event had been applied before; nothing changed.
    Duplicate,
    /// Nothing in it is for this domain (e.g. about a subject since erased); nothing changed.
    Ignored,
    /// A rule of the domain refused it: it goes to the dead-letter topic.
    Refused(InboundError),
}

/// One attempt to apply a decoded event: it queues the change to the owning actor before it
/// returns, and its future says how the change ended, or `Err` with the reason of a failure that
/// may pass (an actor or a store unavailable) so that the consumer tries again.
pub type Attempt = Box<dyn Fn() -> BoxFuture<'static, Result<Applied, &'static str>> + Send + Sync>;

/// A domain's handler of one inbound event type.
pub trait EventHandler: Send + Sync + 'static {
    /// Decode one message into the attempt that applies it, or say why it can never be applied.
    fn prepare(&self, record: &InRecord) -> Result<Attempt, InboundError>;
}

/// A registered handler.
#[derive(Clone)]
pub struct Route {
    /// The event type.
    pub event_type: &'static str,
    /// The domain that consumes it: the `actor` label of its metrics.
    pub domain: &'static str,
    /// The handler.
    pub handler: Arc<dyn EventHandler>,
}

/// Every domain's event registrations.
#[derive(Clone, Default)]
pub struct EventRoutes {
    routes: Vec<Route>,
    publishers: Vec<&'static str>,
    ignored: Vec<&'static str>,
}

impl EventRoutes {
    /// `domain` consumes events of `event_type` with `handler`.
    pub fn consume(&mut self, event_type: &'static str, domain: &'static str, handler: impl EventHandler) {
        self.routes.push(Route { event_type, domain, handler: Arc::new(handler) });
    }

    /// Events whose type starts with `prefix` and that no route consumes are acknowledged and
    /// counted as ignored rather than dead-lettered: a domain consuming a few types of another
    /// domain's topic says so for the rest of that topic.
    pub fn ignore(&mut self, prefix: &'static str) {
        if !self.ignored.contains(&prefix) {
            self.ignored.push(prefix);
        }
    }

    /// Whether an event of `event_type`, which no route consumes, is acknowledged as ignored.
    pub fn ignores(&self, event_type: &str) -> bool {
        self.ignored.iter().any(|p| event_type.starts_with(p))
    }

    /// `domain` publishes its events through the outbox, on its own topic.
    pub fn publish(&mut self, domain: &'static str) {
        if !self.publishers.contains(&domain) {
            self.publishers.push(domain);
        }
    }

    /// The domains that publish.
    pub fn publishers(&self) -> &[&'static str] {
        &self.publishers
    }

    /// Every route.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes of `record`, in the order the domains registered: by its `event-type` header,
    /// or the `type` field of its JSON body. With a single route nothing is read here: its
    /// handler checks the type as it decodes.
    pub fn route(&self, record: &InRecord) -> Result<Vec<Route>, InboundError> {
        if let [only] = self.routes.as_slice() {
            return Ok(vec![only.clone()]);
        }
        let event_type = match record.header("event-type") {
            Some(t) => t.to_owned(),
            None => peek_type(record.payload.as_deref().unwrap_or_default())?,
        };
        let routes: Vec<Route> = self.routes.iter().filter(|r| r.event_type == event_type).cloned().collect();
        if routes.is_empty() {
            return Err(InboundError::UnknownType(event_type));
        }
        Ok(routes)
    }
}

/// The `type` of a JSON event, without decoding the rest.
fn peek_type(payload: &[u8]) -> Result<String, InboundError> {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        event_type: String,
    }
    serde_json::from_slice::<Typed>(payload)
        .map(|t| t.event_type)
        .map_err(|e| InboundError::Malformed(format!("no event type: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuses(&'static str);

    impl EventHandler for Refuses {
        fn prepare(&self, _: &InRecord) -> Result<Attempt, InboundError> {
            Err(InboundError::Malformed(self.0.into()))
        }
    }

    fn record(payload: &str, event_type: Option<&str>) -> InRecord {
        InRecord {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            key: None,
            payload: Some(payload.as_bytes().to_vec()),
            headers: event_type.map(|t| vec![("event-type".to_owned(), t.as_bytes().to_vec())]).unwrap_or_default(),
            timestamp_ms: None,
        }
    }

    #[test]
    fn events_go_to_the_handler_of_their_type_and_unknown_types_nowhere() {
        let mut routes = EventRoutes::default();
        routes.consume("a.done", "a", Refuses("a"));
        routes.consume("b.done", "b", Refuses("b"));
        let domain = |r: &InRecord| routes.route(r).map(|r| r.iter().map(|r| r.domain).collect::<Vec<_>>().join(","));
        assert_eq!(domain(&record(r#"{"type": "b.done", "x": 1}"#, None)), Ok("b".into()));
        assert_eq!(domain(&record("{}", Some("a.done"))), Ok("a".into()));
        assert_eq!(domain(&record(r#"{"type": "c.done"}"#, None)), Err(InboundError::UnknownType("c.done".into())));
        assert_eq!(domain(&record("not json", None)).map_err(|e| e.reason()), Err("malformed"));
    }

    #[test]
    fn the_rest_of_a_topic_consumed_in_part_is_ignored_and_nothing_else() {
        let mut routes = EventRoutes::default();
        routes.consume("a.done", "a", Refuses("a"));
        routes.consume("b.x.done", "b", Refuses("b"));
        routes.ignore("b.");
        assert!(routes.ignores("b.y.started") && !routes.ignores("c.done") && !routes.ignores("bx.done"));
        let route = routes.route(&record(r#"{"type": "b.y.started"}"#, None));
        assert_eq!(route.map(|r| r.len()), Err(InboundError::UnknownType("b.y.started".into())));
    }

    #[test]
    fn a_type_two_domains_consume_goes_to_both_in_the_order_they_registered() {
        let mut routes = EventRoutes::default();
        routes.consume("a.done", "b", Refuses("b"));
        routes.consume("c.done", "c", Refuses("c"));
        routes.consume("a.done", "a", Refuses("a"));
        let found = routes.route(&record(r#"{"type": "a.done"}"#, None)).unwrap();
        assert_eq!(found.iter().map(|r| r.domain).collect::<Vec<_>>(), ["b", "a"]);
    }

    #[test]
    fn publishers_are_listed_once() {
        let mut routes = EventRoutes::default();
        routes.publish("fintech");
        routes.publish("mobility");
        routes.publish("fintech");
        assert_eq!(routes.publishers(), &["fintech", "mobility"]);
    }
}
