//! Social actors. The supervised domain actor `social` owns the graph: every change to a
//! profile or an edge reaches the store through it, and the store applies the graph's rules
//! under its locks. Handlers reach it only through the [`SocialClient`].

pub mod client;
pub mod events;
pub mod messages;
pub mod privacy;

pub use client::SocialClient;
pub use messages::{Answer, SocialFailure};

use messages::{
    AnswerRequest, Block, EraseProfile, Follow, GetProfile, GetRelation, ListEdges, Lookup, Mute, PutProfile, Unfollow,
};

use crate::{
    actors::runtime::{Ctx, Handle, Managed, Reply},
    adapters::social::{Edge, Profile, SocialStore, Written},
    domain::social::{Change, FollowState, Relation},
    telemetry::{self, Metrics},
};

/// Registered name of the social domain actor.
pub const NAME: &str = "social";

/// The changes to the graph counted in [`telemetry::SOCIAL_GRAPH_CHANGES_TOTAL`].
pub const CHANGES: [&str; 9] =
    ["followed", "requested", "unfollowed", "accepted", "declined", "blocked", "unblocked", "muted", "unmuted"];

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
