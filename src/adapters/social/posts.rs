//! Posts, reactions and comments in the social store: the types, and the store's methods that
//! dispatch to PostgreSQL ([`super::pg_posts`]) or the embedded store. A post's changes lock its
//! row; its counts (reactions by kind, comments) move with the rows they count, in the same
//! transaction, with the post's events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{pg_posts, Act, Profile, SocialStore, SocialStoreError};
use crate::domain::social::{moderation::Reason, Link, Reaction, Visibility};

/// A post as stored: its text sealed under its author's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Its id.
    pub id: Uuid,
    /// The author's profile.
    pub author: Uuid,
    /// Sealed text.
    pub body: String,
    /// What it links to.
    pub link: Option<Link>,
    /// Who sees it (within what its author's profile shares).
    pub visibility: Visibility,
    /// Reactions by kind.
    pub reactions: BTreeMap<Reaction, u64>,
    /// Comments and replies.
    pub comments: u64,
    /// Written into its author's followers' cached timelines (the author had at most the
    /// fan-out's most followers when it was made).
    pub fanned_out: bool,
    /// Events keyed by it so far.
    pub version: i64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Hidden by an administrator: seen by its author only.
    pub hidden: Option<Hidden>,
}

/// When and why an administrator hid a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hidden {
    /// Hidden since.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: Reason,
}

/// A post as its author writes it, the text sealed.
#[derive(Debug, Clone)]
pub struct PostDraft {
    /// Its id (chosen before, since the text is sealed for it).
    pub id: Uuid,
    /// Sealed text.
    pub body: String,
    /// What it links to.
    pub link: Option<Link>,
    /// Its author's subject sealed for its creation event ([`PARTICIPANT_FIELD`]), when they
    /// wrote it: none for a post made of their activity.
    ///
    /// [`PARTICIPANT_FIELD`]: crate::domain::social::events::PARTICIPANT_FIELD
    pub participant: Option<String>,
    /// Who sees it.
    pub visibility: Visibility,
    /// Above this many active followers of its author, it is not written into their cached
    /// timelines.
    pub fanout_max_followers: u64,
}

/// Whom a reader follows (active), with each one's count of active followers, and whom they
/// mute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HomeRelations {
    /// Followed profiles and their counts of followers.
    pub followed: std::collections::HashMap<Uuid, u64>,
    /// Muted profiles.
    pub muted: std::collections::HashSet<Uuid>,
}

/// Every comment a profile wrote, and every reaction it gave (post, kind, when).
pub type Contributions = (Vec<Comment>, Vec<(Uuid, Reaction, DateTime<Utc>)>);

/// A comment, or a reply to one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its id.
    pub id: Uuid,
    /// The post.
    pub post: Uuid,
    /// The comment it replies to, if it is a reply.
    pub parent: Option<Uuid>,
    /// The author's profile.
    pub author: Uuid,
    /// Sealed text.
    pub body: String,
    /// Made.
    pub created_at: DateTime<Utc>,
}

impl SocialStore {
    /// The profile of id `id`.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<Profile>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::by_id(pool, id).await,
            Self::Memory(m, _) => Ok(m.lock().by_id(id)),
        }
    }

    /// The profiles of these ids that still exist.
    pub async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<Profile>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::by_ids(pool, ids).await,
            Self::Memory(m, _) => {
                let m = m.lock();
                Ok(ids.iter().filter_map(|id| m.by_id(*id)).collect())
            }
        }
    }

    /// Make a post by `author`.
    pub async fn create_post(&self, author: Uuid, draft: &PostDraft, act: &Act) -> Result<Post, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::create_post(pool, author, draft, act).await,
            Self::Memory(m, outbox) => m.lock().create_post(author, draft, act, outbox),
        }
    }

    /// Make the post of an activity by `author`, once per event `source`: `None` when that event
    /// was made into a post before (one since deleted included).
    pub async fn create_activity_post(
        &self,
        author: Uuid,
        source: Uuid,
        draft: &PostDraft,
        act: &Act,
    ) -> Result<Option<Post>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::create_activity_post(pool, author, source, draft, act).await,
            Self::Memory(m, outbox) => m.lock().create_activity_post(author, source, draft, act, outbox),
        }
    }

    /// The post `id`.
    pub async fn post(&self, id: Uuid) -> Result<Option<Post>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::post(pool, id).await,
            Self::Memory(m, _) => Ok(m.lock().post(id)),
        }
    }

    /// Replace the text of `author`'s post `id` within its edit window.
    pub async fn edit_post(&self, author: Uuid, id: Uuid, body: &str, act: &Act) -> Result<Post, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::edit_post(pool, author, id, body, act).await,
            Self::Memory(m, outbox) => m.lock().edit_post(author, id, body, act, outbox),
        }
    }

    /// Delete `author`'s post `id`, its reactions and comments.
    pub async fn delete_post(&self, author: Uuid, id: Uuid, act: &Act) -> Result<(), SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::delete_post(pool, author, id, act).await,
            Self::Memory(m, outbox) => m.lock().delete_post(author, id, act, outbox),
        }
    }

    /// `reactor` reacts to `post` with `kind`: refused when they reacted already.
    pub async fn react(&self, post: Uuid, reactor: Uuid, kind: Reaction, act: &Act) -> Result<Post, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::react(pool, post, reactor, kind, act).await,
            Self::Memory(m, outbox) => m.lock().react(post, reactor, kind, act, outbox),
        }
    }

    /// `reactor` takes their reaction to `post` back: what it was.
    pub async fn unreact(
        &self,
        post: Uuid,
        reactor: Uuid,
        act: &Act,
    ) -> Result<(Post, Option<Reaction>), SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::unreact(pool, post, reactor, act).await,
            Self::Memory(m, outbox) => m.lock().unreact(post, reactor, act, outbox),
        }
    }

    /// The reactions `reactor` gave to `posts`.
    pub async fn reactions_of(
        &self,
        reactor: Uuid,
        posts: &[Uuid],
    ) -> Result<BTreeMap<Uuid, Reaction>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::reactions_of(pool, reactor, posts).await,
            Self::Memory(m, _) => Ok(m.lock().reactions_of(reactor, posts)),
        }
    }

    /// `author` comments on `post`, or replies to its comment `parent` (one level deep), as the
    /// comment `id` with the sealed text `body`; its event names the author's subject sealed as
    /// `participant`.
    pub async fn comment(
        &self,
        (post, parent): (Uuid, Option<Uuid>),
        (id, author): (Uuid, Uuid),
        sealed: (&str, &str),
        act: &Act,
    ) -> Result<Comment, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::comment(pool, (post, parent), (id, author), sealed, act).await,
            Self::Memory(m, outbox) => m.lock().comment((post, parent), (id, author), sealed, act, outbox),
        }
    }

    /// The comment `id`.
    pub async fn comment_by_id(&self, id: Uuid) -> Result<Option<Comment>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::comment_by_id(pool, id).await,
            Self::Memory(m, _) => Ok(m.lock().comment_by_id(id)),
        }
    }

    /// Delete the comment `id` (and its replies).
    pub async fn delete_comment(&self, id: Uuid, act: &Act) -> Result<(), SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::delete_comment(pool, id, act).await,
            Self::Memory(m, outbox) => m.lock().delete_comment(id, act, outbox),
        }
    }

    /// Every comment `author` wrote, oldest first, and every reaction they gave (post, kind,
    /// when): what an export holds besides their posts.
    pub async fn contributions(&self, author: Uuid) -> Result<Contributions, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::contributions(pool, author).await,
            Self::Memory(m, _) => Ok(m.lock().contributions(author)),
        }
    }

    /// A page of `post`'s comments and replies, oldest first, after `after`, at most `limit`.
    pub async fn comments(
        &self,
        post: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Comment>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::comments(pool, post, after, limit).await,
            Self::Memory(m, _) => Ok(m.lock().comments(post, after, limit)),
        }
    }

    /// A page of `author`'s posts of the visibilities `shown`, hidden ones only `with_hidden`,
    /// newest first, after `before`.
    pub async fn posts_by(
        &self,
        (author, shown, with_hidden): (Uuid, &[Visibility], bool),
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Post>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::posts_by(pool, (author, shown, with_hidden), before, limit).await,
            Self::Memory(m, _) => Ok(m.lock().posts_by((author, shown, with_hidden), before, limit)),
        }
    }

    /// A page of the posts of `authors` that were not written into their followers' cached
    /// timelines and that followers see (not private, not hidden), newest first, after `before`.
    pub async fn unfanned_posts(
        &self,
        authors: &[Uuid],
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Post>, SocialStoreError> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Postgres(pool) => pg_posts::unfanned_posts(pool, authors, before, limit).await,
            Self::Memory(m, _) => Ok(m.lock().unfanned_posts(authors, before, limit)),
        }
    }

    /// The active followers of `author`.
    pub async fn follower_ids(&self, author: Uuid) -> Result<Vec<Uuid>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::follower_ids(pool, author).await,
            Self::Memory(m, _) => Ok(m.lock().follower_ids(author)),
        }
    }

    /// The posts of these ids that still exist.
    pub async fn posts_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Post>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::posts_by_ids(pool, ids).await,
            Self::Memory(m, _) => Ok(ids.iter().filter_map(|id| m.lock().post(*id)).collect()),
        }
    }

    /// Whom `viewer` follows (active) and whom they mute: what decides which posts of their home
    /// timeline they see.
    pub async fn home_relations(&self, viewer: Uuid) -> Result<HomeRelations, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::home_relations(pool, viewer).await,
            Self::Memory(m, _) => Ok(m.lock().home_relations(viewer)),
        }
    }

    /// A page of `viewer`'s home timeline, newest first, after `before`: their own posts, and
    /// those the profiles they follow share with followers or everyone and that are not hidden
    /// (unless `with_hidden`), without the profiles they mute.
    pub async fn home(
        &self,
        (viewer, with_hidden): (Uuid, bool),
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Result<Vec<Post>, SocialStoreError> {
        match self {
            Self::Postgres(pool) => pg_posts::home(pool, (viewer, with_hidden), before, limit).await,
            Self::Memory(m, _) => Ok(m.lock().home((viewer, with_hidden), before, limit)),
        }
    }
}
