//! The one way into the social domain: REST, GraphQL and the privacy module call
//! [`SocialClient`], which checks what owners write, seals and opens their personal fields,
//! finds the profiles named, applies who may see what, and counts what changed.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    messages::{
        AnswerRequest, Block, EraseProfile, Follow, GetProfile, GetRelation, ListEdges, Lookup, Mute, PutProfile,
        Unfollow,
    },
    Answer, SocialDomain,
};
use crate::{
    actors::{esg::EsgClient, mobility::MobilityClient, runtime::ActorRef},
    adapters::{
        privacy::Vault,
        social::{Act, Edge, Profile, SealedDraft, Side, Timelines},
    },
    domain::{
        privacy::{BlindIndex, Personal, Place},
        social::{graph, Change, FollowState, Handle, ProfileDraft, Relation, Sharing, SocialError, Visibility},
    },
    telemetry::{self, Metrics},
};

/// Where each sealed field of a profile is kept (the row is the owner's blind index, so that a
/// field sealed for a profile being made opens whichever write made the row).
pub mod fields {
    /// The handle.
    pub const HANDLE: &str = "social.profile.handle";
    /// The display name.
    pub const DISPLAY_NAME: &str = "social.profile.display_name";
    /// The bio.
    pub const BIO: &str = "social.profile.bio";
    /// The avatar URL.
    pub const AVATAR_URL: &str = "social.profile.avatar_url";
}

/// A profile as its owner writes it.
#[derive(Debug, Clone)]
pub struct ProfileInput {
    /// The handle.
    pub handle: String,
    /// The display name.
    pub display_name: String,
    /// The bio.
    pub bio: Option<String>,
    /// The avatar URL.
    pub avatar_url: Option<String>,
    /// Who sees what they share.
    pub visibility: Visibility,
    /// Which of their activities become posts.
    pub sharing: Sharing,
}

/// A profile as a reader gets it: its personal fields opened (or erased).
#[derive(Debug, Clone)]
pub struct ProfileView {
    /// Its id.
    pub id: Uuid,
    /// The handle.
    pub handle: Personal<String>,
    /// The display name.
    pub display_name: Personal<String>,
    /// The bio, if any.
    pub bio: Option<Personal<String>>,
    /// The avatar URL, if any.
    pub avatar_url: Option<Personal<String>>,
    /// Who sees what they share.
    pub visibility: Visibility,
    /// Active followers.
    pub followers: u64,
    /// Profiles followed.
    pub following: u64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last written by its owner.
    pub updated_at: DateTime<Utc>,
    /// Which of its owner's activities become posts: shown to the owner only.
    pub sharing: Option<Sharing>,
    /// What links the reader to it; `None` for the reader's own.
    pub relation: Option<Relation>,
}

/// An edge of a listing, its other end opened.
#[derive(Debug, Clone)]
pub struct EdgeView {
    /// The profile at the other end.
    pub profile: ProfileView,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// The social domain's client; cheap to clone.
#[derive(Clone)]
pub struct SocialClient {
    pub(super) domain: ActorRef<SocialDomain>,
    pub(super) vault: Vault,
    pub(super) metrics: Metrics,
    /// The domains whose rides and milestones posts link to: a link is checked against them.
    pub(super) links: (MobilityClient, EsgClient),
    /// The cached home timelines, and who is fanned out to.
    pub(super) feeds: Feeds,
    /// The owners found without a profile, and when (see [`Absent`]).
    pub(super) absent: Arc<Absent>,
}

/// The owners found without a profile, each with when that was asked. An activity of theirs
/// that happened before then, less [`Absent::SKEW`] for the producers' clocks, happened while
/// they had no profile, so there was nothing to share it on: it is not shared, without asking
/// the store again. A backlog of rides of riders without a profile (most riders) costs one
/// lookup per rider instead of one per ride. A profile written through this process forgets
/// its owner here; one written through another replica is found by any activity that happened
/// after it, whose time is past the remembered one.
#[derive(Default)]
pub struct Absent {
    owners: parking_lot::Mutex<HashMap<BlindIndex, DateTime<Utc>>>,
}

impl Absent {
    /// How far the clock of an event's producer may be behind this process's.
    pub const SKEW: chrono::Duration = chrono::Duration::seconds(2);
    /// Most owners remembered; beyond it, the oldest half is forgotten.
    pub const MAX: usize = 100_000;

    /// Whether `owner` was known to have no profile when something that happened `at` happened.
    pub fn at(&self, owner: &BlindIndex, at: DateTime<Utc>) -> bool {
        self.owners.lock().get(owner).is_some_and(|asked| at < *asked - Self::SKEW)
    }

    /// `owner` had no profile when asked at `asked`.
    pub fn remember(&self, owner: BlindIndex, asked: DateTime<Utc>) {
        let mut owners = self.owners.lock();
        if owners.len() >= Self::MAX {
            let mut times: Vec<DateTime<Utc>> = owners.values().copied().collect();
            let (_, median, _) = times.select_nth_unstable(owners.len() / 2);
            let median = *median;
            owners.retain(|_, t| *t > median);
        }
        let at = owners.entry(owner).or_insert(asked);
        *at = (*at).max(asked);
    }

    /// `owner` has a profile now.
    pub fn forget(&self, owner: &BlindIndex) {
        self.owners.lock().remove(owner);
    }
}

/// The cached home timelines and fan-out on write.
#[derive(Clone)]
pub struct Feeds {
    /// Where the timelines are.
    pub timelines: Timelines,
    /// A post by an author with more active followers is merged on read instead.
    pub fanout_max_followers: u64,
}

/// A profile's personal fields, opened: handle, display name, bio, avatar URL.
type Opened = (Personal<String>, Personal<String>, Option<Personal<String>>, Option<Personal<String>>);

fn view_of(
    profile: &Profile,
    (handle, display_name, bio, avatar_url): Opened,
    relation: Option<Relation>,
) -> ProfileView {
    ProfileView {
        id: profile.id,
        handle,
        display_name,
        bio,
        avatar_url,
        visibility: profile.visibility,
        followers: profile.followers,
        following: profile.following,
        created_at: profile.created_at,
        updated_at: profile.updated_at,
        sharing: None,
        relation,
    }
}

pub(super) fn act(request_id: Option<String>) -> Act {
    Act { request_id, at: Utc::now() }
}

impl SocialClient {
    /// A client of `domain`, sealing and opening personal fields through `vault`, checking the
    /// rides and milestones posts link to with `links`.
    pub fn new(
        (domain, vault, metrics): (ActorRef<SocialDomain>, Vault, Metrics),
        links: (MobilityClient, EsgClient),
        feeds: Feeds,
    ) -> Self {
        Self { domain, vault, metrics, links, feeds, absent: Arc::default() }
    }

    /// Drop the cached timelines of `readers` (what they follow changed): rebuilt when next read.
    pub(super) async fn forget_timelines(&self, readers: &[Uuid]) {
        if let Err(e) = self.feeds.timelines.forget(readers).await {
            tracing::warn!(error = %e, "cannot drop cached timelines; they are rebuilt when they expire");
        }
    }

    /// The domain actor.
    pub fn actor(&self) -> &ActorRef<SocialDomain> {
        &self.domain
    }

    pub(super) fn count(&self, change: &'static str) {
        self.metrics.with(|| metrics::counter!(telemetry::SOCIAL_GRAPH_CHANGES_TOTAL, "change" => change).increment(1));
    }

    pub(super) async fn seal(&self, subject: &str, owner: &BlindIndex, field: &str, value: &str) -> Answer<String> {
        if value.is_empty() {
            return Ok(String::new());
        }
        let row = owner.hex();
        Ok(self.vault.seal(subject, Place::new(field, &row), value).await?.to_text())
    }

    pub(super) async fn open(&self, profile: &Profile, field: &str, sealed: &str) -> Answer<Option<Personal<String>>> {
        if sealed.is_empty() {
            return Ok(None);
        }
        let row = profile.owner.hex();
        Ok(Some(self.vault.open_text(sealed, Place::new(field, &row)).await?))
    }

    /// `profile` as a reader related to it by `relation` (`None`: its owner) gets it.
    pub async fn view(&self, profile: &Profile, relation: Option<Relation>) -> Answer<ProfileView> {
        let handle = self.open(profile, fields::HANDLE, &profile.handle).await?.unwrap_or(Personal::Erased);
        let display_name =
            self.open(profile, fields::DISPLAY_NAME, &profile.display_name).await?.unwrap_or(Personal::Erased);
        let bio = self.open(profile, fields::BIO, &profile.bio).await?;
        let avatar_url = self.open(profile, fields::AVATAR_URL, &profile.avatar_url).await?;
        Ok(view_of(profile, (handle, display_name, bio, avatar_url), relation))
    }

    /// Make or rewrite `subject`'s profile: it, and whether it was made now.
    pub async fn put_profile(
        &self,
        subject: &str,
        input: ProfileInput,
        request_id: Option<String>,
    ) -> Answer<(ProfileView, bool)> {
        let draft = ProfileDraft::new(
            &input.handle,
            &input.display_name,
            input.bio.as_deref(),
            input.avatar_url.as_deref(),
            input.visibility,
        )?;
        let owner = self.vault.subject_index(subject);
        let sealed = SealedDraft {
            handle: draft.handle.clone(),
            handle_sealed: self.seal(subject, &owner, fields::HANDLE, draft.handle.as_str()).await?,
            handle_index: self.handle_index(&draft.handle),
            display_name: self.seal(subject, &owner, fields::DISPLAY_NAME, &draft.display_name).await?,
            bio: self.seal(subject, &owner, fields::BIO, &draft.bio).await?,
            avatar_url: self.seal(subject, &owner, fields::AVATAR_URL, &draft.avatar_url).await?,
            visibility: draft.visibility,
            sharing: input.sharing,
        };
        let written = self.domain.ask(PutProfile { owner, draft: sealed, act: act(request_id) }).await??;
        self.absent.forget(&owner);
        if !written.accepted.is_empty() {
            self.forget_timelines(&written.accepted).await;
        }
        let (profile, created) = (written.profile, written.created);
        self.metrics.with(|| {
            let result = if created { "created" } else { "updated" };
            metrics::counter!(telemetry::SOCIAL_PROFILES_WRITTEN_TOTAL, "result" => result).increment(1);
            metrics::counter!(telemetry::SOCIAL_GRAPH_CHANGES_TOTAL, "change" => "accepted")
                .increment(written.accepted.len() as u64);
        });
        // What the owner just wrote, rather than opening it again.
        let some = |s: &str| (!s.is_empty()).then(|| Personal::Value(s.to_owned()));
        let opened = (
            Personal::Value(draft.handle.as_str().to_owned()),
            Personal::Value(draft.display_name.clone()),
            some(&draft.bio),
            some(&draft.avatar_url),
        );
        let view = ProfileView { sharing: Some(profile.sharing), ..view_of(&profile, opened, None) };
        Ok((view, created))
    }

    /// The blind index a handle is found by, whatever its case.
    fn handle_index(&self, handle: &Handle) -> BlindIndex {
        self.vault.blind_index(fields::HANDLE, &handle.key())
    }

    /// The profile of `subject`, if they made one.
    pub async fn own(&self, subject: &str) -> Answer<Option<Profile>> {
        let owner = self.vault.subject_index(subject);
        self.domain.ask(GetProfile { by: Lookup::Owner(owner) }).await?
    }

    /// The profile of `subject`: refused when they have none.
    pub(super) async fn required(&self, subject: &str) -> Answer<Profile> {
        self.own(subject).await?.ok_or_else(|| SocialError::ProfileRequired.into())
    }

    /// `subject`'s own profile.
    pub async fn my_profile(&self, subject: &str) -> Answer<ProfileView> {
        let profile = self.required(subject).await?;
        let view = self.view(&profile, None).await?;
        Ok(ProfileView { sharing: Some(profile.sharing), ..view })
    }

    /// The profile of `handle`, and what links `viewer` (if they have a profile) to it: not found
    /// when no profile has the handle, and when a block stands between them.
    pub(super) async fn target(&self, viewer: Option<&Profile>, handle: &str) -> Answer<(Profile, Relation)> {
        let profile = self.by_handle(handle).await?;
        let not_found = || SocialError::ProfileNotFound(handle.to_owned());
        let relation = match viewer {
            Some(v) => self.domain.ask(GetRelation { viewer: v.id, target: profile.id }).await??,
            None => Relation::default(),
        };
        if !graph::sees_profile(&relation) {
            return Err(not_found().into());
        }
        Ok((profile, relation))
    }

    /// The profile of `handle` as `subject` sees it.
    pub async fn profile(&self, subject: &str, handle: &str) -> Answer<ProfileView> {
        let viewer = self.own(subject).await?;
        let (profile, relation) = self.target(viewer.as_ref(), handle).await?;
        self.view(&profile, (!relation.own).then_some(relation)).await
    }

    /// `subject` follows the profile of `handle`, or asks to: the state, new or as it was.
    pub async fn follow(&self, subject: &str, handle: &str, request_id: Option<String>) -> Answer<Change<FollowState>> {
        // Found whatever stands between them: following across a block is refused as such, by
        // the rule the store applies.
        let target = self.by_handle(handle).await?;
        let me = self.required(subject).await?;
        let change = self.domain.ask(Follow { follower: me.id, followee: target.id, act: act(request_id) }).await??;
        if let Change::New(state) = change {
            self.count(if state == FollowState::Active { "followed" } else { "requested" });
            if state == FollowState::Active {
                self.forget_timelines(&[me.id]).await;
            }
        }
        Ok(change)
    }

    /// `subject` stops following the profile of `handle`, or withdraws their request: what there
    /// was.
    pub async fn unfollow(
        &self,
        subject: &str,
        handle: &str,
        request_id: Option<String>,
    ) -> Answer<Option<FollowState>> {
        let profile = self.by_handle(handle).await?;
        let me = self.required(subject).await?;
        let ended = self.domain.ask(Unfollow { follower: me.id, followee: profile.id, act: act(request_id) }).await??;
        if ended.is_some() {
            self.count("unfollowed");
        }
        Ok(ended)
    }

    /// The profile of `handle`, whatever stands between it and the caller (to undo an edge).
    pub(super) async fn by_handle(&self, handle: &str) -> Answer<Profile> {
        let index = self.handle_index(&Handle::parse(handle)?);
        let not_found = || SocialError::ProfileNotFound(handle.to_owned());
        Ok(self.domain.ask(GetProfile { by: Lookup::Handle(index) }).await??.ok_or_else(not_found)?)
    }

    /// `subject` accepts or declines the request of the profile of `handle` to follow them.
    pub async fn answer_request(
        &self,
        subject: &str,
        handle: &str,
        accept: bool,
        request_id: Option<String>,
    ) -> Answer<()> {
        let requester = self.by_handle(handle).await?;
        let me = self.required(subject).await?;
        let msg = AnswerRequest { owner: me.id, requester: requester.id, accept, act: act(request_id) };
        if !self.domain.ask(msg).await?? {
            return Err(SocialError::RequestNotFound(handle.to_owned()).into());
        }
        if accept {
            self.forget_timelines(&[requester.id]).await;
        }
        self.count(if accept { "accepted" } else { "declined" });
        Ok(())
    }

    /// `subject` blocks (`on`) or unblocks the profile of `handle`: whether it changed anything.
    pub async fn block(&self, subject: &str, handle: &str, on: bool, request_id: Option<String>) -> Answer<bool> {
        let other = self.by_handle(handle).await?;
        let me = self.required(subject).await?;
        let changed = self.domain.ask(Block { blocker: me.id, blocked: other.id, on, act: act(request_id) }).await??;
        if changed {
            self.count(if on { "blocked" } else { "unblocked" });
            self.forget_timelines(&[me.id, other.id]).await;
        }
        Ok(changed)
    }

    /// `subject` mutes (`on`) or unmutes the profile of `handle`: whether it changed anything.
    pub async fn mute(&self, subject: &str, handle: &str, on: bool) -> Answer<bool> {
        let other = self.by_handle(handle).await?;
        let me = self.required(subject).await?;
        let changed = self.domain.ask(Mute { muter: me.id, muted: other.id, on, at: Utc::now() }).await??;
        if changed {
            self.count(if on { "muted" } else { "unmuted" });
        }
        Ok(changed)
    }

    /// A page of the followers or following (`side`) of the profile of `handle` (the caller's
    /// own with `None`), or of the caller's requests, blocks or mutes: latest first, after
    /// `before`, at most `limit`. Another's network is shown to whom its visibility allows.
    pub async fn edges(
        &self,
        subject: &str,
        handle: Option<&str>,
        side: Side,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<EdgeView>> {
        let me = match handle {
            None => Some(self.required(subject).await?),
            Some(handle) => {
                Handle::parse(handle)?;
                self.own(subject).await?
            }
        };
        let viewer = me.as_ref().map(|p| p.id);
        let profile = match (handle, me) {
            (None, Some(me)) => me,
            (Some(handle), me) => {
                let (profile, relation) = self.target(me.as_ref(), handle).await?;
                let own_only = matches!(side, Side::Requests | Side::Blocked | Side::Muted);
                if (own_only && !relation.own) || !graph::sees_shared(profile.visibility, &relation) {
                    return Err(SocialError::NotVisible.into());
                }
                profile
            }
            (None, None) => return Err(SocialError::ProfileRequired.into()),
        };
        // The caller's own blocks list the profiles they block: not filtered by them.
        let viewer = if side == Side::Blocked { None } else { viewer };
        let edges: Vec<Edge> =
            self.domain.ask(ListEdges { profile: profile.id, side, before, limit, viewer }).await??;
        let mut out = Vec::with_capacity(edges.len());
        for edge in edges {
            out.push(EdgeView { profile: self.view(&edge.profile, None).await?, since: edge.since });
        }
        Ok(out)
    }

    /// The handles at the other end of `subject`'s edges on `side`, latest first, each with
    /// since when: every page, for an export.
    pub async fn all_handles(&self, subject: &str, side: Side) -> Answer<Vec<(Personal<String>, DateTime<Utc>)>> {
        let Some(me) = self.own(subject).await? else { return Ok(Vec::new()) };
        let (mut out, mut before) = (Vec::new(), None);
        loop {
            let page = self
                .domain
                .ask(ListEdges { profile: me.id, side, before, limit: crate::adapters::social::PAGE_MAX, viewer: None })
                .await??;
            let full = page.len() == crate::adapters::social::PAGE_MAX;
            before = page.last().map(|e| (e.since, e.profile.id));
            for edge in page {
                let handle = self.open(&edge.profile, fields::HANDLE, &edge.profile.handle).await?;
                out.push((handle.unwrap_or(Personal::Erased), edge.since));
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Delete `subject`'s profile and its edges (erasure): the profile deleted, if any.
    pub async fn erase(&self, subject: &str) -> Answer<Option<Profile>> {
        let owner = self.vault.subject_index(subject);
        let erased = self.domain.ask(EraseProfile { owner, at: Utc::now() }).await??;
        if let Some(profile) = &erased {
            self.forget_timelines(&[profile.id]).await;
        }
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(n: u8) -> BlindIndex {
        BlindIndex([n; 32])
    }

    #[test]
    fn an_owner_found_without_a_profile_answers_for_what_happened_before_then_less_the_skew() {
        let absent = Absent::default();
        let asked = Utc::now();
        absent.remember(owner(1), asked);
        assert!(absent.at(&owner(1), asked - Absent::SKEW - chrono::Duration::seconds(1)));
        // Within the producers' clock skew of the question, or after it: asked again.
        assert!(!absent.at(&owner(1), asked - Absent::SKEW + chrono::Duration::seconds(1)));
        assert!(!absent.at(&owner(1), asked + chrono::Duration::seconds(1)));
        assert!(!absent.at(&owner(2), asked - chrono::Duration::days(1)));
        // A later answer moves the time on; an earlier one does not move it back.
        absent.remember(owner(1), asked + chrono::Duration::minutes(1));
        absent.remember(owner(1), asked - chrono::Duration::minutes(1));
        assert!(absent.at(&owner(1), asked + chrono::Duration::seconds(30)));
        // A profile written here: asked again, whenever the activity happened.
        absent.forget(&owner(1));
        assert!(!absent.at(&owner(1), asked - chrono::Duration::days(1)));
    }

    #[test]
    fn beyond_its_bound_the_oldest_half_is_forgotten() {
        let absent = Absent::default();
        let start = Utc::now() - chrono::Duration::days(1);
        for i in 0..Absent::MAX {
            let mut index = [0u8; 32];
            index[..8].copy_from_slice(&(i as u64).to_le_bytes());
            absent.remember(BlindIndex(index), start + chrono::Duration::seconds(i as i64));
        }
        absent.remember(owner(255), Utc::now());
        let kept = absent.owners.lock().len();
        assert!(kept <= Absent::MAX / 2 + 1, "{kept} kept");
        assert!(absent.at(&owner(255), Utc::now() - chrono::Duration::hours(1)));
        let mut oldest = [0u8; 32];
        oldest[..8].copy_from_slice(&0u64.to_le_bytes());
        assert!(!absent.at(&BlindIndex(oldest), start - chrono::Duration::hours(1)));
    }
}
