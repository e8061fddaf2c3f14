//! Social's events, published through the outbox to `beryl.social.events`. They name profiles by
//! id only (never a handle or a name, which are personal data), and each is keyed by the profile
//! whose version it carries.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{FollowState, Visibility};
use crate::domain::events::{DomainEvent, SCHEMA_VERSION};

/// Where the author's subject is sealed in a post's or a comment's creation event (`participant`,
/// the row being the post's or the comment's id), for ESG to count their participation.
pub const PARTICIPANT_FIELD: &str = "social.participant";

/// The domain, and so the topic, of social's events.
pub const DOMAIN: &str = "social";
/// A profile was made.
pub const PROFILE_CREATED: &str = "social.profile.created";
/// A profile's handle, name, bio, avatar or visibility changed.
pub const PROFILE_UPDATED: &str = "social.profile.updated";
/// A profile was deleted with its owner's personal data.
pub const PROFILE_DELETED: &str = "social.profile.deleted";
/// Someone follows a profile now (at once, or their request was accepted).
pub const FOLLOW_CREATED: &str = "social.follow.created";
/// Someone asked to follow a private profile.
pub const FOLLOW_REQUESTED: &str = "social.follow.requested";
/// A follow or a request ended (unfollowed, declined, or undone by a block).
pub const FOLLOW_REMOVED: &str = "social.follow.removed";
/// A profile blocked another.
pub const BLOCK_CREATED: &str = "social.block.created";
/// A block was lifted.
pub const BLOCK_REMOVED: &str = "social.block.removed";

/// Why a follow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The follower unfollowed, or withdrew their request.
    Unfollowed,
    /// The owner declined the request.
    Declined,
    /// One blocked the other.
    Blocked,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unfollowed => "unfollowed",
            Self::Declined => "declined",
            Self::Blocked => "blocked",
        }
    }
}

fn event(kind: &str, key: Uuid, seq: i64, request_id: Option<String>, at: DateTime<Utc>, data: Value) -> DomainEvent {
    DomainEvent {
        id: Uuid::now_v7(),
        event_type: kind.to_owned(),
        schema_version: SCHEMA_VERSION,
        domain: DOMAIN.to_owned(),
        aggregate_id: key.to_string(),
        seq,
        request_id,
        occurred_at: at,
        data,
    }
}

/// A profile made (`created`) or changed, at its version `seq`.
pub fn profile_written(
    profile: Uuid,
    visibility: Visibility,
    created: bool,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let kind = if created { PROFILE_CREATED } else { PROFILE_UPDATED };
    event(kind, profile, seq, request_id, at, json!({ "profile": profile, "visibility": visibility.as_str() }))
}

/// A profile deleted, at its last version `seq`.
pub fn profile_deleted(profile: Uuid, seq: i64, at: DateTime<Utc>) -> DomainEvent {
    event(PROFILE_DELETED, profile, seq, None, at, json!({ "profile": profile }))
}

/// `follower` follows `followee` now, or asked to: keyed by the followee, at its version `seq`.
pub fn followed(
    follower: Uuid,
    followee: Uuid,
    state: FollowState,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let kind = match state {
        FollowState::Active => FOLLOW_CREATED,
        FollowState::Pending => FOLLOW_REQUESTED,
    };
    event(kind, followee, seq, request_id, at, json!({ "follower": follower, "followee": followee }))
}

/// The follow (or request, `state`) of `follower` to `followee` ended: keyed by the followee.
pub fn unfollowed(
    (follower, followee): (Uuid, Uuid),
    state: FollowState,
    why: Ended,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let data = json!({ "follower": follower, "followee": followee, "was": state.as_str(), "reason": why.as_str() });
    event(FOLLOW_REMOVED, followee, seq, request_id, at, data)
}

/// `blocker` blocked (`on`) or unblocked `blocked`: keyed by the blocker, at its version `seq`.
pub fn block(
    (blocker, blocked): (Uuid, Uuid),
    on: bool,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let kind = if on { BLOCK_CREATED } else { BLOCK_REMOVED };
    event(kind, blocker, seq, request_id, at, json!({ "blocker": blocker, "blocked": blocked }))
}

/// A post was made.
pub const POST_CREATED: &str = "social.post.created";
/// A post's text was edited.
pub const POST_UPDATED: &str = "social.post.updated";
/// A post was deleted.
pub const POST_DELETED: &str = "social.post.deleted";
/// Someone reacted to a post.
pub const REACTION_CREATED: &str = "social.reaction.created";
/// Someone took their reaction back.
pub const REACTION_REMOVED: &str = "social.reaction.removed";
/// Someone commented on a post, or replied to a comment.
pub const COMMENT_CREATED: &str = "social.comment.created";
/// A comment was deleted, with its replies.
pub const COMMENT_DELETED: &str = "social.comment.deleted";
/// An administrator hid a post (`reason` says why): only its author sees it now.
pub const POST_HIDDEN: &str = "social.post.hidden";
/// An administrator showed a hidden post again.
pub const POST_UNHIDDEN: &str = "social.post.unhidden";

/// An event of the post `post` (its text is never in it), keyed by the post, at its version
/// `seq`; `data` says what happened besides the post's id.
pub fn on_post(
    kind: &str,
    post: Uuid,
    mut data: serde_json::Map<String, Value>,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    data.insert("post".into(), json!(post));
    event(kind, post, seq, request_id, at, Value::Object(data))
}

/// The event of a moderator hiding (`hide`: why) or showing again the post `post` of `author`, at
/// the post's version `seq`.
pub fn post_moderated(
    (post, author): (Uuid, Uuid),
    hide: Option<super::moderation::Reason>,
    seq: i64,
    request_id: Option<String>,
    at: DateTime<Utc>,
) -> DomainEvent {
    let mut data = serde_json::Map::from_iter([("author".to_owned(), json!(author))]);
    let kind = match hide {
        Some(reason) => {
            data.insert("reason".into(), json!(reason.as_str()));
            POST_HIDDEN
        }
        None => POST_UNHIDDEN,
    };
    on_post(kind, post, data, seq, request_id, at)
}

/// What a post's creation says of it: its author (and, for a post they wrote rather than one made
/// of their activity, their subject sealed under their key), visibility and link.
pub fn post_data(
    (author, participant): (Uuid, Option<&str>),
    visibility: Visibility,
    link: Option<&super::Link>,
) -> serde_json::Map<String, Value> {
    let mut data = serde_json::Map::new();
    data.insert("author".into(), json!(author));
    if let Some(sealed) = participant {
        data.insert("participant".into(), json!(sealed));
    }
    data.insert("visibility".into(), json!(visibility.as_str()));
    if let Some(link) = link {
        data.insert("link".into(), json!({ "kind": link.kind(), "ref": link.reference() }));
    }
    data
}
