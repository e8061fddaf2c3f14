//! The social domain's protocol: one message per intent, answered with the store's types or a
//! [`SocialFailure`].

use actix::Message;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    actors::runtime::AskError,
    adapters::{
        privacy::{VaultError, VaultFailure},
        social::{Act, Edge, SealedDraft, Side, SocialStoreError, Written},
    },
    domain::{
        privacy::BlindIndex,
        social::{Change, FollowState, Relation, SocialError},
    },
    error::code::Coded,
};

/// Why a social call got no answer it could use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SocialFailure {
    /// A rule refused it; nothing changed.
    #[error(transparent)]
    Rule(#[from] SocialError),
    /// The store failed.
    #[error(transparent)]
    Store(SocialStoreError),
    /// An actor did not answer.
    #[error(transparent)]
    Ask(#[from] AskError),
    /// The privacy vault failed.
    #[error(transparent)]
    Vault(VaultFailure),
}

impl From<SocialStoreError> for SocialFailure {
    fn from(e: SocialStoreError) -> Self {
        match e {
            SocialStoreError::Rule(rule) => Self::Rule(rule),
            other => Self::Store(other),
        }
    }
}

impl From<VaultError> for SocialFailure {
    fn from(e: VaultError) -> Self {
        Self::Vault(e.into())
    }
}

impl SocialFailure {
    fn inner(&self) -> Option<&dyn Coded> {
        match self {
            Self::Rule(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Ask(e) => Some(e),
            Self::Vault(e) => Some(e),
        }
    }
}

crate::error::code::coded_by_inner!(SocialFailure);

/// What a social message answers.
pub type Answer<T> = Result<T, SocialFailure>;

macro_rules! message {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? } -> $result:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name { $($(#[$fdoc])* pub $field: $ty),* }

        impl Message for $name {
            type Result = Answer<$result>;
        }
    };
}

message! {
    /// Make or rewrite the owner's profile: the profile, and whether it was made now.
    PutProfile {
        /// The owner's blind index.
        owner: BlindIndex,
        /// The profile, its personal fields sealed.
        draft: SealedDraft,
        /// When, and for which request.
        act: Act,
    } -> Written
}

/// How a profile is looked up.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// By its owner's blind index.
    Owner(BlindIndex),
    /// By the blind index of its handle in lower case.
    Handle(BlindIndex),
}

message! {
    /// A profile, if there is one.
    GetProfile {
        /// Whose.
        by: Lookup,
    } -> Option<crate::adapters::social::Profile>
}

message! {
    /// What links `viewer` to `target`, both ways.
    GetRelation {
        /// The viewer's profile.
        viewer: Uuid,
        /// The profile viewed.
        target: Uuid,
    } -> Relation
}

message! {
    /// Follow, or ask to.
    Follow {
        /// Who follows.
        follower: Uuid,
        /// Whom.
        followee: Uuid,
        /// When, and for which request.
        act: Act,
    } -> Change<FollowState>
}

message! {
    /// Stop following, or withdraw a request: what there was.
    Unfollow {
        /// Who follows.
        follower: Uuid,
        /// Whom.
        followee: Uuid,
        /// When, and for which request.
        act: Act,
    } -> Option<FollowState>
}

message! {
    /// Accept or decline a request to follow: whether there was one.
    AnswerRequest {
        /// The profile asked.
        owner: Uuid,
        /// Who asked.
        requester: Uuid,
        /// Accept, or decline.
        accept: bool,
        /// When, and for which request.
        act: Act,
    } -> bool
}

message! {
    /// Block or unblock: whether it changed anything.
    Block {
        /// Who blocks.
        blocker: Uuid,
        /// Whom.
        blocked: Uuid,
        /// Block, or lift the block.
        on: bool,
        /// When, and for which request.
        act: Act,
    } -> bool
}

message! {
    /// Mute or unmute: whether it changed anything.
    Mute {
        /// Who mutes.
        muter: Uuid,
        /// Whom.
        muted: Uuid,
        /// Mute, or unmute.
        on: bool,
        /// When.
        at: DateTime<Utc>,
    } -> bool
}

message! {
    /// A page of a profile's edges, latest first.
    ListEdges {
        /// Whose.
        profile: Uuid,
        /// Which.
        side: Side,
        /// The last of the previous page: (since, other profile's id).
        before: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
        /// Leave out the profiles a block stands between with this one.
        viewer: Option<Uuid>,
    } -> Vec<Edge>
}

message! {
    /// Delete the owner's profile and its edges: the profile deleted, if any.
    EraseProfile {
        /// The owner's blind index.
        owner: BlindIndex,
        /// When.
        at: DateTime<Utc>,
    } -> Option<crate::adapters::social::Profile>
}

use crate::{
    adapters::social::{Comment, Post, PostDraft},
    domain::social::{Reaction, Visibility},
};

message! {
    /// A profile by id.
    GetProfileById {
        /// Its id.
        id: Uuid,
    } -> Option<crate::adapters::social::Profile>
}

message! {
    /// Make a post.
    CreatePost {
        /// The author's profile.
        author: Uuid,
        /// The post, its text sealed.
        draft: PostDraft,
        /// When, and for which request.
        act: Act,
    } -> Post
}

message! {
    /// Make the post of an activity, once per event: `None` when the event was made into a post
    /// before.
    CreateActivityPost {
        /// The author's profile.
        author: Uuid,
        /// The event that told of the activity.
        source: Uuid,
        /// The post, its text sealed.
        draft: PostDraft,
        /// When, and for which request.
        act: Act,
    } -> Option<Post>
}

message! {
    /// A post.
    GetPost {
        /// Its id.
        id: Uuid,
    } -> Option<Post>
}

message! {
    /// Replace a post's text within its edit window.
    EditPost {
        /// Who edits (only its author may).
        author: Uuid,
        /// The post.
        id: Uuid,
        /// The new text, sealed.
        body: String,
        /// When, and for which request.
        act: Act,
    } -> Post
}

message! {
    /// Delete a post.
    DeletePost {
        /// Who deletes (only its author may).
        author: Uuid,
        /// The post.
        id: Uuid,
        /// When, and for which request.
        act: Act,
    } -> ()
}

message! {
    /// React to a post.
    React {
        /// The post.
        post: Uuid,
        /// Who reacts.
        reactor: Uuid,
        /// How.
        kind: Reaction,
        /// When, and for which request.
        act: Act,
    } -> Post
}

message! {
    /// Take a reaction back: the post after, and what the reaction was.
    Unreact {
        /// The post.
        post: Uuid,
        /// Who reacted.
        reactor: Uuid,
        /// When, and for which request.
        act: Act,
    } -> (Post, Option<Reaction>)
}

message! {
    /// The reactions a profile gave to posts.
    GetReactions {
        /// Who reacted.
        reactor: Uuid,
        /// The posts.
        posts: Vec<Uuid>,
    } -> std::collections::BTreeMap<Uuid, Reaction>
}

message! {
    /// Comment on a post, or reply to a comment.
    AddComment {
        /// The post.
        post: Uuid,
        /// The comment replied to.
        parent: Option<Uuid>,
        /// The comment's id (its text is sealed for it).
        id: Uuid,
        /// The author's profile.
        author: Uuid,
        /// The text, sealed.
        body: String,
        /// The author's subject, sealed for the event (`social.participant`).
        participant: String,
        /// When, and for which request.
        act: Act,
    } -> Comment
}

message! {
    /// A comment.
    GetComment {
        /// Its id.
        id: Uuid,
    } -> Option<Comment>
}

message! {
    /// Delete a comment and its replies.
    DeleteComment {
        /// Its id.
        id: Uuid,
        /// When, and for which request.
        act: Act,
    } -> ()
}

message! {
    /// A page of a post's comments, oldest first.
    ListComments {
        /// The post.
        post: Uuid,
        /// The last of the previous page.
        after: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
    } -> Vec<Comment>
}

message! {
    /// A page of a profile's posts of some visibilities, newest first.
    ListPosts {
        /// The author.
        author: Uuid,
        /// The visibilities shown.
        shown: Vec<Visibility>,
        /// Whether hidden posts are shown (to their author).
        with_hidden: bool,
        /// The last of the previous page.
        before: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
    } -> Vec<Post>
}

message! {
    /// A page of a profile's home timeline, newest first.
    GetHome {
        /// Whose.
        viewer: Uuid,
        /// Whether the posts others' hide are kept (to cache their entries: a reader leaves
        /// them out, and they come back when shown again).
        with_hidden: bool,
        /// The last of the previous page.
        before: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
    } -> Vec<Post>
}

message! {
    /// Every comment a profile wrote and every reaction it gave.
    GetContributions {
        /// The profile.
        author: Uuid,
    } -> crate::adapters::social::Contributions
}

message! {
    /// The active followers of a profile.
    GetFollowerIds {
        /// The profile.
        author: Uuid,
    } -> Vec<Uuid>
}

message! {
    /// Whom a profile follows (with their counts of followers) and mutes.
    GetHomeRelations {
        /// The reader.
        viewer: Uuid,
    } -> crate::adapters::social::HomeRelations
}

message! {
    /// The posts of these ids that still exist.
    GetPostsByIds {
        /// The ids.
        ids: Vec<Uuid>,
    } -> Vec<Post>
}

message! {
    /// A page of the posts of some authors that were not fanned out, newest first.
    GetUnfanned {
        /// The authors.
        authors: Vec<Uuid>,
        /// The last of the previous page.
        before: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
    } -> Vec<Post>
}

message! {
    /// Open a report (its status is ignored).
    FileReport {
        /// The report.
        report: crate::adapters::social::Report,
    } -> crate::adapters::social::Report
}

message! {
    /// A page of the reports in a status, oldest first.
    ListReports {
        /// Which.
        status: crate::domain::social::moderation::Status,
        /// The last of the previous page.
        after: Option<(DateTime<Utc>, Uuid)>,
        /// At most this many.
        limit: usize,
    } -> Vec<crate::adapters::social::Report>
}

message! {
    /// Resolve an open report.
    ResolveReport {
        /// The report.
        id: Uuid,
        /// How.
        resolution: crate::domain::social::moderation::Resolution,
        /// When.
        at: DateTime<Utc>,
    } -> crate::adapters::social::Report
}

message! {
    /// Hide a post for a reason, or show it again.
    ModeratePost {
        /// The post.
        id: Uuid,
        /// Why it is hidden; `None` shows it again.
        hide: Option<crate::domain::social::moderation::Reason>,
        /// When, and for which request.
        act: Act,
    } -> crate::adapters::social::Moderated
}

message! {
    /// Every report a profile filed, oldest first.
    GetReportsBy {
        /// The reporter's profile.
        reporter: Uuid,
    } -> Vec<crate::adapters::social::Report>
}

message! {
    /// The profiles of these ids that still exist.
    GetProfilesByIds {
        /// Their ids.
        ids: Vec<Uuid>,
    } -> Vec<crate::adapters::social::Profile>
}
