//! Social actors. The supervised domain actor `social` owns the graph: every change to a
//! profile or an edge reaches the store through it, and the store applies the graph's rules
//! under its locks. Handlers reach it only through the [`SocialClient`].

pub mod client;
pub mod events;
pub mod messages;
pub mod moderation;
pub mod posts;
pub mod privacy;

pub use client::SocialClient;
pub use messages::{Answer, SocialFailure};

use std::collections::BTreeMap;

use messages::{
    AddComment, AnswerRequest, Block, CreatePost, DeleteComment, DeletePost, EditPost, EraseProfile, Follow,
    GetComment, GetHome, GetPost, GetProfile, GetProfileById, GetReactions, GetRelation, ListComments, ListEdges,
    ListPosts, Lookup, Mute, PutProfile, React, Unfollow, Unreact,
};
use uuid::Uuid;

use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::social::{Comment, Edge, Post, Profile, SocialStore, Written},
    domain::social::{Change, FollowState, Reaction, Relation},
    telemetry::{self, Metrics},
};

/// Registered name of the social domain actor.
pub const NAME: &str = "social";

/// The changes to the graph counted in [`telemetry::SOCIAL_GRAPH_CHANGES_TOTAL`].
pub const CHANGES: [&str; 9] =
    ["followed", "requested", "unfollowed", "accepted", "declined", "blocked", "unblocked", "muted", "unmuted"];

/// What is counted in [`telemetry::SOCIAL_POSTS_TOTAL`].
pub const POST_ACTIONS: [&str; 7] =
    ["created", "edited", "deleted", "reacted", "unreacted", "commented", "comment_deleted"];

/// The social domain actor.
pub struct SocialDomain {
    store: SocialStore,
    metrics: Metrics,
}

impl SocialDomain {
    /// A domain actor over `store`.
    pub fn new(store: SocialStore, metrics: Metrics) -> Self {
        Self { store, metrics }
    }
}

impl Managed for SocialDomain {
    fn started(&mut self, _: &mut Ctx<Self>) {
        // Every series starts at 0, so that a rate over it is defined before the first change.
        self.metrics.with(|| {
            for change in CHANGES {
                metrics::counter!(telemetry::SOCIAL_GRAPH_CHANGES_TOTAL, "change" => change).absolute(0);
            }
            for result in ["created", "updated"] {
                metrics::counter!(telemetry::SOCIAL_PROFILES_WRITTEN_TOTAL, "result" => result).absolute(0);
            }
            for action in POST_ACTIONS {
                metrics::counter!(telemetry::SOCIAL_POSTS_TOTAL, "action" => action).absolute(0);
            }
            for timeline in ["home", "profile"] {
                metrics::counter!(telemetry::SOCIAL_TIMELINE_READS_TOTAL, "timeline" => timeline).absolute(0);
            }
            for result in ["hit", "miss", "error"] {
                metrics::counter!(telemetry::SOCIAL_TIMELINE_CACHE_TOTAL, "result" => result).absolute(0);
            }
            for kind in ["ride", "milestone"] {
                for result in ["made", "duplicate", "not_shared"] {
                    metrics::counter!(telemetry::SOCIAL_ACTIVITY_POSTS_TOTAL, "kind" => kind, "result" => result)
                        .absolute(0);
                }
            }
            for target in moderation::TARGETS {
                metrics::counter!(telemetry::SOCIAL_REPORTS_TOTAL, "target" => target).absolute(0);
            }
            for action in moderation::ACTIONS {
                metrics::counter!(telemetry::SOCIAL_MODERATION_ACTIONS_TOTAL, "action" => action).absolute(0);
            }
            let _ = metrics::histogram!(telemetry::SOCIAL_FANOUT_SIZE);
        });
    }
}

/// Each message runs its store call without holding the actor: the store's locks order the
/// changes to one profile.
macro_rules! delegate {
    ($msg:ty => $result:ty, |$store:ident, $m:ident| $body:expr) => {
        impl Handle<$msg> for SocialDomain {
            fn handle(&mut self, $m: $msg, _: &mut Ctx<Self>) -> Reply<Self, Answer<$result>> {
                let $store = self.store.clone();
                Reply::later(async move { Ok($body.await?) })
            }
        }
    };
}

delegate!(PutProfile => Written, |store, m| store.put_profile(&m.owner, &m.draft, &m.act));
delegate!(GetRelation => Relation, |store, m| store.relation(m.viewer, m.target));
delegate!(Follow => Change<FollowState>, |store, m| store.follow(m.follower, m.followee, &m.act));
delegate!(Unfollow => Option<FollowState>, |store, m| store.unfollow(m.follower, m.followee, &m.act));
delegate!(AnswerRequest => bool, |store, m| store.answer(m.owner, m.requester, m.accept, &m.act));
delegate!(Block => bool, |store, m| store.block(m.blocker, m.blocked, m.on, &m.act));
delegate!(Mute => bool, |store, m| store.mute(m.muter, m.muted, m.on, m.at));
delegate!(ListEdges => Vec<Edge>, |store, m| store.edges(m.profile, m.side, (m.before, m.limit), m.viewer));
delegate!(EraseProfile => Option<Profile>, |store, m| store.erase(&m.owner, m.at));
delegate!(GetProfileById => Option<Profile>, |store, m| store.by_id(m.id));
delegate!(messages::GetProfilesByIds => Vec<Profile>, |store, m| store.by_ids(&m.ids));
delegate!(CreatePost => Post, |store, m| store.create_post(m.author, &m.draft, &m.act));
delegate!(messages::CreateActivityPost => Option<Post>, |store, m| store.create_activity_post(m.author, m.source, &m.draft, &m.act));
delegate!(GetPost => Option<Post>, |store, m| store.post(m.id));
delegate!(EditPost => Post, |store, m| store.edit_post(m.author, m.id, &m.body, &m.act));
delegate!(DeletePost => (), |store, m| store.delete_post(m.author, m.id, &m.act));
delegate!(React => Post, |store, m| store.react(m.post, m.reactor, m.kind, &m.act));
delegate!(Unreact => (Post, Option<Reaction>), |store, m| store.unreact(m.post, m.reactor, &m.act));
delegate!(GetReactions => BTreeMap<Uuid, Reaction>, |store, m| store.reactions_of(m.reactor, &m.posts));
delegate!(AddComment => Comment, |store, m| store.comment((m.post, m.parent), (m.id, m.author), (&m.body, &m.participant), &m.act));
delegate!(GetComment => Option<Comment>, |store, m| store.comment_by_id(m.id));
delegate!(DeleteComment => (), |store, m| store.delete_comment(m.id, &m.act));
delegate!(ListComments => Vec<Comment>, |store, m| store.comments(m.post, m.after, m.limit));
delegate!(ListPosts => Vec<Post>, |store, m| store.posts_by((m.author, &m.shown, m.with_hidden), m.before, m.limit));
delegate!(GetHome => Vec<Post>, |store, m| store.home((m.viewer, m.with_hidden), m.before, m.limit));
delegate!(messages::GetFollowerIds => Vec<Uuid>, |store, m| store.follower_ids(m.author));
delegate!(messages::GetHomeRelations => crate::adapters::social::HomeRelations, |store, m| store.home_relations(m.viewer));
delegate!(messages::GetPostsByIds => Vec<Post>, |store, m| store.posts_by_ids(&m.ids));
delegate!(messages::GetUnfanned => Vec<Post>, |store, m| store.unfanned_posts(&m.authors, m.before, m.limit));
delegate!(messages::GetContributions => crate::adapters::social::Contributions, |store, m| store.contributions(m.author));
delegate!(messages::FileReport => crate::adapters::social::Report, |store, m| store.report(&m.report));
delegate!(messages::ListReports => Vec<crate::adapters::social::Report>, |store, m| store.reports(m.status, m.after, m.limit));
delegate!(messages::GetReportsBy => Vec<crate::adapters::social::Report>, |store, m| store.reports_by(m.reporter));
delegate!(messages::ResolveReport => crate::adapters::social::Report, |store, m| store.resolve_report(m.id, m.resolution, m.at));
delegate!(messages::ModeratePost => crate::adapters::social::Moderated, |store, m| store.moderate_post(m.id, m.hide, &m.act));

impl Handle<GetProfile> for SocialDomain {
    fn handle(&mut self, msg: GetProfile, _: &mut Ctx<Self>) -> Reply<Self, Answer<Option<Profile>>> {
        let store = self.store.clone();
        Reply::later(async move {
            Ok(match &msg.by {
                Lookup::Owner(owner) => store.by_owner(owner).await?,
                Lookup::Handle(index) => store.by_handle(index).await?,
            })
        })
    }
}
