//! Activity posts: what other domains tell of a user (a ride completed, an ESG milestone reached)
//! becomes a post by them when their profile shares that kind of activity, made once per event
//! whatever the number of deliveries. Decoded here from the events, as far as social reads them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Link, Visibility};
use crate::domain::{
    esg::events::MILESTONE_REACHED,
    events::{DomainEvent, InboundError, SCHEMA_VERSION},
    mobility::{events::RIDE_COMPLETED, Mode},
};

/// Which of its owner's activities a profile shares as posts. Nothing by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sharing {
    /// Completed rides they took.
    pub rides: bool,
    /// ESG milestones they reached.
    pub milestones: bool,
}

/// Who sees an activity post: the author's followers (within what the profile shares).
pub const ACTIVITY_VISIBILITY: Visibility = Visibility::Followers;

/// The kind of an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// A ride the user took completed.
    Ride,
    /// The user reached an ESG milestone.
    Milestone,
}

impl ActivityKind {
    /// As metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ride => "ride",
            Self::Milestone => "milestone",
        }
    }

    /// Whether `sharing` makes posts of this kind.
    pub fn shared(self, sharing: Sharing) -> bool {
        match self {
            Self::Ride => sharing.rides,
            Self::Milestone => sharing.milestones,
        }
    }
}

/// One activity, as the event that told of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The event's id: a post is made once per event.
    pub event_id: Uuid,
    /// Its kind.
    pub kind: ActivityKind,
    /// The user, sealed under their own key (empty when they were erased).
    pub subject_sealed: String,
    /// Where it was sealed: the field and the row its producer sealed it for.
    pub sealed_at: (&'static str, String),
    /// What the post links to.
    pub link: Link,
    /// The post's text.
    pub text: String,
    /// When it happened.
    pub at: DateTime<Utc>,
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

#[derive(Deserialize)]
struct MilestoneWire {
    #[serde(default)]
    subject: String,
    activity: Uuid,
    milestone: String,
}

impl Activity {
    /// Decode `mobility.ride.completed` (the rider is sealed for the ride, field
    /// `mobility.ride.rider`) or `esg.milestone.reached` (the subject is sealed for the activity
    /// that reached it, field `esg.subject`), of the schema version this service reads.
    pub fn decode(payload: &[u8]) -> Result<Self, InboundError> {
        let event: DomainEvent =
            serde_json::from_slice(payload).map_err(|e| InboundError::Malformed(format!("not an event: {e}")))?;
        if event.schema_version != SCHEMA_VERSION {
            return Err(InboundError::SchemaVersion {
                got: u64::from(event.schema_version),
                reads: u64::from(SCHEMA_VERSION),
            });
        }
        let malformed = |what: &str, e: serde_json::Error| InboundError::Malformed(format!("{what}: {e}"));
        match event.event_type.as_str() {
            RIDE_COMPLETED => {
                let wire: RideWire = serde_json::from_value(event.data).map_err(|e| malformed("ride", e))?;
                let mode = Mode::parse(&wire.mode).map_err(|e| InboundError::Malformed(e.to_string()))?;
                let distance_m = wire
                    .distance_m
                    .ok_or_else(|| InboundError::Malformed("a completed ride without distance_m".into()))?;
                Ok(Self {
                    event_id: event.id,
                    kind: ActivityKind::Ride,
                    subject_sealed: wire.rider,
                    sealed_at: ("mobility.ride.rider", wire.ride.to_string()),
                    link: Link::Ride(wire.ride),
                    text: ride_text(mode, distance_m),
                    at: event.occurred_at,
                })
            }
            MILESTONE_REACHED => {
                let wire: MilestoneWire = serde_json::from_value(event.data).map_err(|e| malformed("milestone", e))?;
                let kg = Link::milestone_kg(&wire.milestone)
                    .ok_or_else(|| InboundError::Malformed(format!("unknown milestone `{}`", wire.milestone)))?;
                Ok(Self {
                    event_id: event.id,
                    kind: ActivityKind::Milestone,
                    subject_sealed: wire.subject,
                    sealed_at: ("esg.subject", wire.activity.to_string()),
                    link: Link::EsgMilestone(wire.milestone),
                    text: format!("Reached a milestone: {kg} kg of CO2e avoided."),
                    at: event.occurred_at,
                })
            }
            other => Err(InboundError::UnknownType(other.to_owned())),
        }
    }
}

/// The text of a completed ride's post.
fn ride_text(mode: Mode, distance_m: u64) -> String {
    let by = match mode {
        Mode::Car => "by car",
        Mode::EvCar => "by electric car",
        Mode::Motorbike => "by motorbike",
        Mode::Bike => "by bike",
        Mode::Scooter => "by scooter",
        Mode::Van => "by van",
    };
    let km = distance_m as f64 / 1000.0;
    format!("Completed a {km:.1} km ride {by}.")
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::domain::social::post;

    fn event(kind: &str, data: Value, version: u32) -> Vec<u8> {
        let e = DomainEvent {
            id: Uuid::now_v7(),
            event_type: kind.into(),
            schema_version: version,
            domain: "x".into(),
            aggregate_id: "k".into(),
            seq: 1,
            request_id: None,
            occurred_at: Utc::now(),
            data,
        };
        serde_json::to_vec(&e).unwrap()
    }

    #[test]
    fn rides_and_milestones_decode_into_posts_that_pass_the_rules_of_posts() {
        let ride = Uuid::now_v7();
        let data = json!({"ride": ride, "rider": "sealed", "mode": "ev_car", "distance_m": 12_345, "fare": 900});
        let a = Activity::decode(&event(RIDE_COMPLETED, data, 1)).unwrap();
        assert_eq!((a.kind, &a.link, a.subject_sealed.as_str()), (ActivityKind::Ride, &Link::Ride(ride), "sealed"));
        assert_eq!(a.sealed_at, ("mobility.ride.rider", ride.to_string()));
        assert_eq!(a.text, "Completed a 12.3 km ride by electric car.");
        post::check_text("text", &a.text).unwrap();

        let activity = Uuid::now_v7();
        let data = json!({"subject": "s", "activity": activity, "milestone": "avoided_10_kg", "avoided_kg": 10});
        let m = Activity::decode(&event(MILESTONE_REACHED, data, 1)).unwrap();
        assert_eq!((m.kind, m.link), (ActivityKind::Milestone, Link::EsgMilestone("avoided_10_kg".into())));
        assert_eq!(m.sealed_at, ("esg.subject", activity.to_string()));
        post::check_text("text", &m.text).unwrap();
    }

    #[test]
    fn anything_else_says_why_it_cannot_be_a_post() {
        let reason = |kind: &str, data: Value, version: u32| Activity::decode(&event(kind, data, version)).unwrap_err();
        let ride = json!({"ride": Uuid::now_v7(), "mode": "bike", "distance_m": 1});
        assert_eq!(reason(RIDE_COMPLETED, ride, 2).reason(), "schema_version");
        assert_eq!(reason(RIDE_COMPLETED, json!({"ride": Uuid::now_v7(), "mode": "bike"}), 1).reason(), "malformed");
        assert_eq!(
            reason(RIDE_COMPLETED, json!({"ride": 1, "mode": "bike", "distance_m": 1}), 1).reason(),
            "malformed"
        );
        let unknown = json!({"subject": "s", "activity": Uuid::now_v7(), "milestone": "avoided_7_kg"});
        assert_eq!(reason(MILESTONE_REACHED, unknown, 1).reason(), "malformed");
        let no_row = json!({"subject": "s", "milestone": "avoided_10_kg"});
        assert_eq!(reason(MILESTONE_REACHED, no_row, 1).reason(), "malformed");
        assert_eq!(reason("esg.score.updated", json!({}), 1), InboundError::UnknownType("esg.score.updated".into()));
        assert!(Activity::decode(b"nope").is_err());
    }

    #[test]
    fn only_the_kinds_a_profile_shares_become_posts() {
        let none = Sharing::default();
        let rides = Sharing { rides: true, ..none };
        assert!(!ActivityKind::Ride.shared(none) && !ActivityKind::Milestone.shared(none));
        assert!(ActivityKind::Ride.shared(rides) && !ActivityKind::Milestone.shared(rides));
        assert!(ActivityKind::Milestone.shared(Sharing { milestones: true, ..none }));
    }
}
