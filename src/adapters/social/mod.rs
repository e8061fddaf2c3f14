//! Social's storage: profiles and the graph between them, in PostgreSQL (or process memory in
//! the embedded mode). A profile's owner is named by their blind index only; their display name,
//! bio and avatar arrive sealed. Every change to the graph runs in one transaction under locks
//! on both profiles' rows (taken in id order), reads the [`Relation`] there, lets the domain's
//! rule decide, and queues its events in the outbox, so that two replicas never count a follow
//! twice or follow across a block made meanwhile.

mod memory;
mod memory_moderation;
mod memory_posts;
pub mod moderation;
mod pg_moderation;
mod pg_posts;
mod postgres;
mod posts;
pub mod timelines;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

pub use memory::Memory;
pub use moderation::{Moderated, Report};
pub use posts::{Comment, Contributions, Hidden, HomeRelations, Post, PostDraft};
pub use timelines::Timelines;

use super::{
    outbox::MemOutbox,
    postgres::{PgPool, PostgresError},
};
use crate::{
    domain::{
        privacy::BlindIndex,
        social::{Change, FollowState, Handle, Relation, Sharing, SocialError, Visibility},
    },
    error::code::{Coded, ErrorCode},
};

/// The store failed or a rule refused; nothing changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SocialStoreError {
    /// A rule of the graph refused the change, as read under the locks.
    #[error(transparent)]
    Rule(#[from] SocialError),
    /// A profile named is gone (deleted meanwhile).
    #[error("the profile is gone")]
    Gone,
    /// PostgreSQL did not answer, or refused.
    #[error("the social store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not read back.
    #[error("a stored {0} does not read back")]
    Corrupt(&'static str),
}

impl From<PostgresError> for SocialStoreError {
    fn from(e: PostgresError) -> Self {
        Self::Unavailable(e.kind().into())
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for SocialStoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        PostgresError::from(e).into()
    }
}

impl From<tokio_postgres::Error> for SocialStoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        tracing::warn!(error = ?e, "social store statement failed");
        PostgresError::from(e).into()
    }
}

impl Coded for SocialStoreError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Rule(e) => e.code(),
            Self::Gone => ErrorCode::ProfileNotFound,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Corrupt(_) => ErrorCode::Internal,
        }
    }

    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        match self {
            Self::Rule(e) => e.extensions(),
            _ => serde_json::Map::new(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, Self::Unavailable(_)).then_some(Duration::from_secs(1))
    }
}

/// A profile as stored: its personal fields sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its id.
    pub id: Uuid,
    /// The owner's blind index.
    pub owner: BlindIndex,
    /// Sealed handle, as its owner wrote it.
    pub handle: String,
    /// The blind index of the handle in lower case.
    pub handle_index: BlindIndex,
    /// Sealed display name.
    pub display_name: String,
    /// Sealed bio, empty for none.
    pub bio: String,
    /// Sealed avatar URL, empty for none.
    pub avatar_url: String,
    /// Who sees what its owner shares.
    pub visibility: Visibility,
    /// Which of its owner's activities become posts.
    pub sharing: Sharing,
    /// Active followers.
    pub followers: u64,
    /// Profiles it follows (active).
    pub following: u64,
    /// Events keyed by it so far.
    pub version: i64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last written by its owner.
    pub updated_at: DateTime<Utc>,
}

/// A profile as its owner wrote it, personal fields sealed ("" for none).
#[derive(Debug, Clone)]
pub struct SealedDraft {
    /// The handle, to name it in a refusal.
    pub handle: Handle,
    /// The handle, sealed.
    pub handle_sealed: String,
    /// The blind index of the handle in lower case.
    pub handle_index: BlindIndex,
    /// Sealed display name.
    pub display_name: String,
    /// Sealed bio, or "".
    pub bio: String,
    /// Sealed avatar URL, or "".
    pub avatar_url: String,
    /// Visibility.
    pub visibility: Visibility,
    /// Which of the owner's activities become posts.
    pub sharing: Sharing,
}

/// A profile written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The profile.
    pub profile: Profile,
    /// Whether it was made now.
    pub created: bool,
    /// The profiles whose requests were accepted because a private profile stopped being private.
    pub accepted: Vec<Uuid>,
}

/// Which edges of a profile a listing walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Who follows it.
    Followers,
    /// Whom it follows.
    Following,
    /// Who asked to follow it and waits.
    Requests,
    /// Whom it blocks.
    Blocked,
    /// Whom it mutes.
    Muted,
}

impl Side {
    /// The listing's name, as scopes and logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Followers => "followers",
            Side::Following => "following",
            Side::Requests => "requests",
            Side::Blocked => "blocked",
            Side::Muted => "muted",
        }
    }
}

/// One edge of a listing: the profile at its other end, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The other profile.
    pub profile: Profile,
    /// Since when the edge is in its state.
    pub since: DateTime<Utc>,
}

/// Who changes the graph, and why (for the events).
#[derive(Debug, Clone)]
pub struct Act {
    /// The request that caused it.
    pub request_id: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A page of edges: at most this many.
pub const PAGE_MAX: usize = 100;

/// Either store, chosen at start-up.
#[derive(Clone)]
pub enum SocialStore {
    /// PostgreSQL.
    Postgres(PgPool),
    /// Process memory: nothing survives the process. Events go to the in-process outbox.
    Memory(Arc<Mutex<Memory>>, MemOutbox),
}

impl SocialStore {
    /// A store in process memory, writing its events to `outbox`.
    pub fn memory(outbox: MemOutbox) -> Self {
        Self::Memory(Arc::default(), outbox)
    }

    /// Make or rewrite the profile of `owner`: the profile, and whether it was made now. A
    /// handle another profile has, in any case, is refused. A private profile made public or
    /// followers-only accepts the requests waiting on it.
    pub async fn put_profile(
        &self,
        owner: &BlindIndex,
        draft: &SealedDraft,
        act: &Act,
    ) -> Result<Written, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::put_profile(pool, owner, draft, act).await,
            Self::Memory(m, outbox) => m.lock().put_profile(owner, draft, act, outbox),
        }
    }

    /// The profile of `owner`.
    pub async fn by_owner(&self, owner: &BlindIndex) -> Result<Option<Profile>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::by_owner(pool, owner).await,
            Self::Memory(m, _) => Ok(m.lock().by_owner(owner)),
        }
    }

    /// The profile whose handle's blind index (of its lower-case form) is `index`.
    pub async fn by_handle(&self, index: &BlindIndex) -> Result<Option<Profile>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::by_handle(pool, index).await,
            Self::Memory(m, _) => Ok(m.lock().by_handle(index)),
        }
    }

    /// What links `viewer` to `target`, both ways.
    pub async fn relation(&self, viewer: Uuid, target: Uuid) -> Result<Relation, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::relation(pool, viewer, target).await,
            Self::Memory(m, _) => Ok(m.lock().relation(viewer, target)),
        }
    }

    /// `follower` follows `followee`, or asks to (a private profile), as the graph's rule decides.
    pub async fn follow(
        &self,
        follower: Uuid,
        followee: Uuid,
        act: &Act,
    ) -> Result<Change<FollowState>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::follow(pool, follower, followee, act).await,
            Self::Memory(m, outbox) => m.lock().follow(follower, followee, act, outbox),
        }
    }

    /// `follower` stops following `followee`, or withdraws their request: what there was.
    pub async fn unfollow(
        &self,
        follower: Uuid,
        followee: Uuid,
        act: &Act,
    ) -> Result<Option<FollowState>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::unfollow(pool, follower, followee, act).await,
            Self::Memory(m, outbox) => Ok(m.lock().unfollow(follower, followee, act, outbox)),
        }
    }

    /// `owner` accepts or declines the request of `requester`: whether there was one.
    pub async fn answer(
        &self,
        owner: Uuid,
        requester: Uuid,
        accept: bool,
        act: &Act,
    ) -> Result<bool, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::answer(pool, owner, requester, accept, act).await,
            Self::Memory(m, outbox) => Ok(m.lock().answer(owner, requester, accept, act, outbox)),
        }
    }

    /// `blocker` blocks (`on`) or unblocks `blocked`: whether it changed anything. A block ends
    /// the follows and requests between them, both ways.
    pub async fn block(&self, blocker: Uuid, blocked: Uuid, on: bool, act: &Act) -> Result<bool, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::block(pool, blocker, blocked, on, act).await,
            Self::Memory(m, outbox) => m.lock().block(blocker, blocked, on, act, outbox),
        }
    }

    /// `muter` mutes (`on`) or unmutes `muted`: whether it changed anything. Private: no event.
    pub async fn mute(&self, muter: Uuid, muted: Uuid, on: bool, at: DateTime<Utc>) -> Result<bool, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::mute(pool, muter, muted, on, at).await,
            Self::Memory(m, _) => m.lock().mute(muter, muted, on, at),
        }
    }

    /// A page of the edges of `profile` on `side`, latest first, after `before` (the last of the
    /// previous page: since, other profile's id), at most `limit`; without the profiles a block
    /// stands between with `viewer`, when given.
    pub async fn edges(
        &self,
        profile: Uuid,
        side: Side,
        (before, limit): (Option<(DateTime<Utc>, Uuid)>, usize),
        viewer: Option<Uuid>,
    ) -> Result<Vec<Edge>, SocialStoreError> {
        let limit = limit.min(PAGE_MAX + 1);
        match self {
            Self::Postgres(pool) => postgres::edges(pool, profile, side, (before, limit), viewer).await,
            Self::Memory(m, _) => Ok(m.lock().edges(profile, side, (before, limit), viewer)),
        }
    }

    /// Delete the profile of `owner` and every edge it has, the counts of the profiles at their
    /// other ends made right: the profile deleted, if there was one.
    pub async fn erase(&self, owner: &BlindIndex, at: DateTime<Utc>) -> Result<Option<Profile>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => postgres::erase(pool, owner, at).await,
            Self::Memory(m, outbox) => Ok(m.lock().erase(owner, at, outbox)),
        }
    }
}
