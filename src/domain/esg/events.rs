//! ESG's side of the event bus: the completed rides it credits (decoded from mobility's events)
//! and the events it publishes through the outbox to `beryl.esg.events`, keyed by the subject's
//! blind index, naming the subject only sealed under their own key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ActivityType, Score, WalletChange};
use crate::domain::{
    events::{DomainEvent, InboundError, SCHEMA_VERSION},
    fintech::MovementKind,
    mobility::{events::RIDE_COMPLETED, Mode},
};

/// The domain, and so the topic, of ESG's events.
pub const DOMAIN: &str = "esg";
/// `esg.score.updated`.
pub const SCORE_UPDATED: &str = "esg.score.updated";
/// `esg.milestone.reached`.
pub const MILESTONE_REACHED: &str = "esg.milestone.reached";

/// Kilograms of CO2e avoided in all that mark a milestone, each reached once.
pub const MILESTONES_KG: [u64; 5] = [1, 10, 100, 500, 1_000];

/// The milestones (kg) first passed when a subject's avoided total goes from `before_g` to
/// `after_g` grams: order-independent, since a milestone is reached once whichever activity
/// crosses it.
pub fn milestones_passed(before_g: u64, after_g: u64) -> Vec<u64> {
    MILESTONES_KG.into_iter().filter(|kg| before_g < kg * 1000 && after_g >= kg * 1000).collect()
}

/// A completed ride as ESG credits it.
#[derive(Debug, Clone, PartialEq)]
pub struct RideCompleted {
    /// The event's id: the activity's id, so that a redelivered event is recorded once.
    pub event_id: Uuid,
    /// The ride.
    pub ride: Uuid,
    /// The rider, sealed under their key (empty when the rider was erased).
    pub rider_sealed: String,
    /// The vehicle's mode.
    pub mode: Mode,
    /// Distance driven, metres.
    pub distance_m: u64,
    /// When it completed.
    pub completed_at: DateTime<Utc>,
}

impl RideCompleted {
    /// The activity type it is credited as.
    pub fn kind(&self) -> ActivityType {
        ActivityType::of_ride(self.mode)
    }
}

#[derive(Deserialize)]
struct RideWire {
    ride: Uuid,
    #[serde(default)]
    rider: String,
    mode: String,
    #[serde(default)]
    distance_m: Option<u64>,
}

/// The envelope of an inbound event of a type `accepts` reads (what it makes of the type), of
/// the schema version this service reads.
fn envelope<T>(payload: &[u8], accepts: impl Fn(&str) -> Option<T>) -> Result<(DomainEvent, T), InboundError> {
    let event: DomainEvent =
        serde_json::from_slice(payload).map_err(|e| InboundError::Malformed(format!("not an event: {e}")))?;
    let Some(kind) = accepts(&event.event_type) else {
        return Err(InboundError::UnknownType(event.event_type));
    };
    if event.schema_version != SCHEMA_VERSION {
        return Err(InboundError::SchemaVersion {
            got: u64::from(event.schema_version),
            reads: u64::from(SCHEMA_VERSION),
        });
    }
    Ok((event, kind))
}

impl RideCompleted {
    /// Decode one of mobility's events: only `mobility.ride.completed` of the schema version
    /// this service reads, with a distance.
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        let (event, ()) = envelope(payload, |t| (t == RIDE_COMPLETED).then_some(()))?;
        let wire: RideWire =
            serde_json::from_value(event.data).map_err(|e| InboundError::Malformed(format!("ride: {e}")))?;
        let mode = Mode::parse(&wire.mode).map_err(|e| InboundError::Malformed(e.to_string()))?;
        let distance_m =
            wire.distance_m.ok_or_else(|| InboundError::Malformed("a completed ride without distance_m".into()))?;
        Ok(Self {
            event_id: event.id,
            ride: wire.ride,
            rider_sealed: wire.rider,
            mode,
            distance_m,
            completed_at: event.occurred_at,
        })
    }
}

/// How a subject took part in the community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Took {
    /// Wrote a post.
    Post,
    /// Wrote a comment.
    Comment,
}

impl Took {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Comment => "comment",
        }
    }

    /// The kind stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Post, Self::Comment].into_iter().find(|t| t.as_str() == s)
    }
}

/// A post or a comment someone wrote, from the social domain's events, as ESG counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct TookPart {
    /// The event's id: the participation's id, so that a redelivered event is recorded once.
    pub event_id: Uuid,
    /// Post or comment.
    pub kind: Took,
    /// The post's or the comment's id: the row the author's subject is sealed for.
    pub row: Uuid,
    /// The author's subject, sealed under their key (empty when not given: nothing to count).
    pub participant_sealed: String,
    /// When they wrote it.
    pub at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct TookPartWire {
    post: Uuid,
    #[serde(default)]
    comment: Option<Uuid>,
    #[serde(default)]
    participant: String,
}

impl TookPart {
    /// Decode one of social's events of the schema version this service reads: only those
    /// `kind_of` names (a post's or a comment's creation; social's types are its own).
    pub fn decode(payload: &[u8], kind_of: impl Fn(&str) -> Option<Took>) -> Result<Self, InboundError> {
        let (event, kind) = envelope(payload, kind_of)?;
        let wire: TookPartWire =
            serde_json::from_value(event.data).map_err(|e| InboundError::Malformed(format!("{kind:?}: {e}")))?;
        let row = match kind {
            Took::Post => wire.post,
            Took::Comment => {
                wire.comment.ok_or_else(|| InboundError::Malformed("a created comment without its id".into()))?
            }
        };
        Ok(Self { event_id: event.id, kind, row, participant_sealed: wire.participant, at: event.occurred_at })
    }
}

/// A change of a wallet's lifecycle (opened, frozen, unfrozen, closed), from fintech's events, as
/// the governance component counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct WalletChanged {
    /// The event's id.
    pub event_id: Uuid,
    /// The wallet, the change's place in its journal, and what it did: one change per wallet and
    /// sequence number, however many times it is delivered.
    pub change: WalletChange,
    /// The wallet's owner, sealed under their key for the wallet
    /// ([`OWNER_FIELD`](crate::domain::fintech::OWNER_FIELD)); empty when
    /// the event carries none (the owner was erased): nothing to count.
    pub owner_sealed: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

impl WalletChanged {
    /// Decode one of fintech's wallet events of the schema version this service reads: only the
    /// lifecycle changes (`fintech.wallet.opened`, `.frozen`, `.unfrozen`, `.closed`).
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        let (event, kind) = envelope(payload, |t| {
            t.strip_prefix(WALLET_EVENT_PREFIX).and_then(MovementKind::parse).filter(|k| k.is_lifecycle())
        })?;
        let wallet = Uuid::parse_str(&event.aggregate_id)
            .map_err(|_| InboundError::Malformed(format!("wallet id `{}`", event.aggregate_id)))?;
        let owner_sealed = match event.data.get("owner") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(InboundError::Malformed(format!("owner: {other}"))),
        };
        Ok(Self {
            event_id: event.id,
            change: WalletChange { wallet, seq: event.seq, kind },
            owner_sealed,
            at: event.occurred_at,
        })
    }
}

/// The type of every wallet event, before its kind.
pub const WALLET_EVENT_PREFIX: &str = "fintech.wallet.";

/// The body of `esg.score.updated`.
#[derive(Debug, Clone, Serialize)]
struct ScoreData<'a> {
    subject: &'a str,
    activity: Uuid,
    method_version: &'a str,
    as_of: chrono::NaiveDate,
    total: u8,
    components: &'a [super::method::Component],
    avoided_g: u64,
    co2e_g: u64,
}

/// The event of a subject's new score; `subject_sealed` names them sealed under their key for
/// the activity that made the change (field `esg.subject`, row `activity`), `key` is their blind
/// index in hex (the message key), `seq` the subject's version.
#[allow(clippy::too_many_arguments)]
pub fn score_updated(
    key: &str,
    (subject_sealed, activity): (&str, Uuid),
    score: &Score,
    avoided_g: u64,
    co2e_g: u64,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let data = ScoreData {
        subject: subject_sealed,
        activity,
        method_version: &score.method_version,
        as_of: score.as_of,
        total: score.total,
        components: &score.components,
        avoided_g,
        co2e_g,
    };
    event(SCORE_UPDATED, key, seq, request_id, at, serde_json::to_value(data).unwrap_or_else(|_| json!({})))
}

/// The event of a subject passing the milestone of `kg` avoided with the activity `activity`
/// (for which the subject is sealed).
pub fn milestone_reached(
    key: &str,
    (subject_sealed, activity): (&str, Uuid),
    kg: u64,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let data = json!({
        "subject": subject_sealed,
        "activity": activity,
        "milestone": format!("avoided_{kg}_kg"),
        "avoided_kg": kg,
    });
    event(MILESTONE_REACHED, key, seq, request_id, at, data)
}

fn event(kind: &str, key: &str, seq: i64, request_id: Option<String>, at: DateTime<Utc>, data: Value) -> DomainEvent {
    DomainEvent {
        id: Uuid::now_v7(),
        event_type: kind.to_owned(),
        schema_version: SCHEMA_VERSION,
        domain: DOMAIN.to_owned(),
        aggregate_id: key.to_owned(),
        seq,
        request_id,
        occurred_at: at,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(data: Value, kind: &str, version: u32) -> Vec<u8> {
        let e = DomainEvent {
            id: Uuid::now_v7(),
            event_type: kind.into(),
            schema_version: version,
            domain: "mobility".into(),
            aggregate_id: "r".into(),
            seq: 5,
            request_id: None,
            occurred_at: Utc::now(),
            data,
        };
        serde_json::to_vec(&e).unwrap()
    }

    #[test]
    fn a_post_or_a_comment_decodes_with_its_row_and_anything_else_says_why_not() {
        let kind_of = |t: &str| match t {
            "s.post" => Some(Took::Post),
            "s.comment" => Some(Took::Comment),
            _ => None,
        };
        let (post, comment) = (Uuid::now_v7(), Uuid::now_v7());
        let data = json!({"post": post, "author": Uuid::nil(), "participant": "sealed", "visibility": "public"});
        let p = TookPart::decode(&completed(data.clone(), "s.post", 1), kind_of).unwrap();
        assert_eq!((p.kind, p.row, p.participant_sealed.as_str()), (Took::Post, post, "sealed"));
        let data = json!({"post": post, "comment": comment, "author": Uuid::nil(), "participant": "sealed"});
        let c = TookPart::decode(&completed(data, "s.comment", 1), kind_of).unwrap();
        assert_eq!((c.kind, c.row), (Took::Comment, comment));
        // An activity post names no participant: decoded, with nothing to count.
        let auto = TookPart::decode(&completed(json!({"post": post}), "s.post", 1), kind_of).unwrap();
        assert!(auto.participant_sealed.is_empty());
        let other = TookPart::decode(&completed(json!({"post": post}), "s.reaction", 1), kind_of);
        assert_eq!(other, Err(InboundError::UnknownType("s.reaction".into())));
        let no_id = TookPart::decode(&completed(json!({"post": post}), "s.comment", 1), kind_of).unwrap_err();
        assert_eq!(no_id.reason(), "malformed");
        let version = TookPart::decode(&completed(json!({"post": post}), "s.post", 2), kind_of).unwrap_err();
        assert_eq!(version.reason(), "schema_version");
    }

    #[test]
    fn a_wallet_lifecycle_change_decodes_and_a_money_movement_is_not_one() {
        let wallet = Uuid::now_v7();
        let event = |kind: &str, data: Value, version: u32| {
            let e = DomainEvent {
                id: Uuid::now_v7(),
                event_type: format!("fintech.wallet.{kind}"),
                schema_version: version,
                domain: "fintech".into(),
                aggregate_id: wallet.to_string(),
                seq: 4,
                request_id: None,
                occurred_at: Utc::now(),
                data,
            };
            serde_json::to_vec(&e).unwrap()
        };
        let frozen = WalletChanged::decode(&event("frozen", json!({"owner": "sealed", "amount": 0}), 1)).unwrap();
        assert_eq!(frozen.change, WalletChange { wallet, seq: 4, kind: MovementKind::Frozen });
        assert_eq!(frozen.owner_sealed, "sealed");
        let erased = WalletChanged::decode(&event("closed", json!({"amount": 0}), 1)).unwrap();
        assert!(erased.owner_sealed.is_empty());
        let money = WalletChanged::decode(&event("transfer_out", json!({"amount": -5}), 1));
        assert_eq!(money, Err(InboundError::UnknownType("fintech.wallet.transfer_out".into())));
        assert_eq!(WalletChanged::decode(&event("opened", json!({}), 2)).unwrap_err().reason(), "schema_version");
        assert_eq!(WalletChanged::decode(&event("opened", json!({"owner": 5}), 1)).unwrap_err().reason(), "malformed");
    }

    #[test]
    fn a_completed_ride_decodes_and_anything_else_says_why_not() {
        let ride = Uuid::now_v7();
        let data = json!({"ride": ride, "rider": "sealed", "state": "completed", "mode": "bike", "distance_m": 4200});
        let decoded = RideCompleted::decode(&completed(data.clone(), RIDE_COMPLETED, 1)).unwrap();
        assert_eq!((decoded.ride, decoded.distance_m, decoded.kind()), (ride, 4200, ActivityType::RideBike));
        assert_eq!(decoded.rider_sealed, "sealed");
        let other = RideCompleted::decode(&completed(data.clone(), "mobility.ride.started", 1));
        assert_eq!(other, Err(InboundError::UnknownType("mobility.ride.started".into())));
        let version = RideCompleted::decode(&completed(data, RIDE_COMPLETED, 9)).unwrap_err();
        assert_eq!(version.reason(), "schema_version");
        let no_distance = json!({"ride": ride, "mode": "car"});
        assert_eq!(
            RideCompleted::decode(&completed(no_distance, RIDE_COMPLETED, 1)).unwrap_err().reason(),
            "malformed"
        );
        let bad_mode = json!({"ride": ride, "mode": "rocket", "distance_m": 1});
        assert_eq!(RideCompleted::decode(&completed(bad_mode, RIDE_COMPLETED, 1)).unwrap_err().reason(), "malformed");
        assert_eq!(RideCompleted::decode(b"[1]").unwrap_err().reason(), "malformed");
    }

    #[test]
    fn each_milestone_is_passed_once_whatever_the_steps() {
        assert_eq!(milestones_passed(0, 999), Vec::<u64>::new());
        assert_eq!(milestones_passed(0, 1_000), vec![1]);
        assert_eq!(milestones_passed(1_000, 10_500), vec![10]);
        assert_eq!(milestones_passed(0, 2_000_000), vec![1, 10, 100, 500, 1_000]);
        // However a total is reached, the milestones passed on the way are the same.
        let steps = [(0, 700, 12_000, 12_001), (0, 12_001, 12_001, 12_001)];
        for (a, b, c, d) in steps {
            let mut all = milestones_passed(a, b);
            all.extend(milestones_passed(b, c));
            all.extend(milestones_passed(c, d));
            assert_eq!(all, vec![1, 10]);
        }
    }
}
