//! The embedded store: the same rules as PostgreSQL's, under one lock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Act, Edge, Profile, SealedDraft, Side, SocialStoreError, Written};
use crate::{
    adapters::outbox::MemOutbox,
    domain::{
        events::DomainEvent,
        privacy::BlindIndex,
        social::{
            events::{self, Ended},
            graph, Change, FollowState, Relation, SocialError, Visibility,
        },
    },
};

/// The embedded store's contents.
#[derive(Default)]
pub struct Memory {
    pub(super) profiles: HashMap<Uuid, Profile>,
    by_owner: HashMap<BlindIndex, Uuid>,
    by_handle: HashMap<BlindIndex, Uuid>,
    /// (follower, followee) → state, since.
    pub(super) follows: BTreeMap<(Uuid, Uuid), (FollowState, DateTime<Utc>)>,
    /// (blocker, blocked) → since.
    blocks: BTreeMap<(Uuid, Uuid), DateTime<Utc>>,
    /// (muter, muted) → since.
    pub(super) mutes: BTreeMap<(Uuid, Uuid), DateTime<Utc>>,
    /// Posts by id.
    pub(super) posts: HashMap<Uuid, super::Post>,
    /// (post, reactor) → reaction, when.
    pub(super) reactions: BTreeMap<(Uuid, Uuid), (crate::domain::social::Reaction, DateTime<Utc>)>,
    /// Comments by id.
    pub(super) comments: HashMap<Uuid, super::Comment>,
    /// Events made into posts → the author's profile.
    pub(super) activity_sources: HashMap<Uuid, Uuid>,
    /// Moderation reports by id.
    pub(super) reports: HashMap<Uuid, super::Report>,
}

impl Memory {
    fn profile_mut(&mut self, id: Uuid) -> Result<&mut Profile, SocialStoreError> {
        self.profiles.get_mut(&id).ok_or(SocialStoreError::Gone)
    }

    /// The next version of `id`, taken.
    fn bump(&mut self, id: Uuid) -> i64 {
        self.profiles.get_mut(&id).map_or(0, |p| {
            p.version += 1;
            p.version
        })
    }

    fn count(&mut self, follower: Uuid, followee: Uuid, by: i64) {
        let add = |n: u64| if by >= 0 { n + by.unsigned_abs() } else { n.saturating_sub(by.unsigned_abs()) };
        if let Some(p) = self.profiles.get_mut(&followee) {
            p.followers = add(p.followers);
        }
        if let Some(p) = self.profiles.get_mut(&follower) {
            p.following = add(p.following);
        }
    }

    pub(super) fn put_profile(
        &mut self,
        owner: &BlindIndex,
        draft: &SealedDraft,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Written, SocialStoreError> {
        let key = draft.handle_index;
        let existing = self.by_owner.get(owner).copied();
        if let Some(holder) = self.by_handle.get(&key) {
            if Some(*holder) != existing {
                return Err(SocialError::HandleTaken(draft.handle.as_str().to_owned()).into());
            }
        }
        let mut events = Vec::new();
        let mut accepted = Vec::new();
        let (id, created) = match existing {
            Some(id) => {
                let p = self.profile_mut(id)?;
                let (old_key, was_private) = (p.handle_index, p.visibility == Visibility::Private);
                p.handle.clone_from(&draft.handle_sealed);
                p.handle_index = draft.handle_index;
                p.display_name.clone_from(&draft.display_name);
                p.bio.clone_from(&draft.bio);
                p.avatar_url.clone_from(&draft.avatar_url);
                p.visibility = draft.visibility;
                p.sharing = draft.sharing;
                p.updated_at = act.at;
                self.by_handle.remove(&old_key);
                self.by_handle.insert(key, id);
                let seq = self.bump(id);
                events.push(events::profile_written(id, draft.visibility, false, seq, act.request_id.clone(), act.at));
                if was_private && draft.visibility != Visibility::Private {
                    let (followers, followed) = self.accept_all(id, act);
                    accepted = followers;
                    events.extend(followed);
                }
                (id, false)
            }
            None => {
                let id = Uuid::now_v7();
                let profile = Profile {
                    id,
                    owner: *owner,
                    handle: draft.handle_sealed.clone(),
                    handle_index: draft.handle_index,
                    display_name: draft.display_name.clone(),
                    bio: draft.bio.clone(),
                    avatar_url: draft.avatar_url.clone(),
                    visibility: draft.visibility,
                    sharing: draft.sharing,
                    followers: 0,
                    following: 0,
                    version: 1,
                    created_at: act.at,
                    updated_at: act.at,
                };
                self.profiles.insert(id, profile);
                self.by_owner.insert(*owner, id);
                self.by_handle.insert(key, id);
                events.push(events::profile_written(id, draft.visibility, true, 1, act.request_id.clone(), act.at));
                (id, true)
            }
        };
        outbox.append(act.at, events);
        Ok(Written { profile: self.profiles[&id].clone(), created, accepted })
    }

    /// Accept every request waiting on `owner`: their events.
    fn accept_all(&mut self, owner: Uuid, act: &Act) -> (Vec<Uuid>, Vec<DomainEvent>) {
        let waiting: Vec<Uuid> = self
            .follows
            .iter()
            .filter(|((_, followee), (state, _))| *followee == owner && *state == FollowState::Pending)
            .map(|((follower, _), _)| *follower)
            .collect();
        let mut out = Vec::new();
        let waiting_ids = waiting.clone();
        for follower in waiting {
            self.follows.insert((follower, owner), (FollowState::Active, act.at));
            self.count(follower, owner, 1);
            let seq = self.bump(owner);
            out.push(events::followed(follower, owner, FollowState::Active, seq, act.request_id.clone(), act.at));
        }
        (waiting_ids, out)
    }

    pub(super) fn by_owner(&self, owner: &BlindIndex) -> Option<Profile> {
        self.by_owner.get(owner).and_then(|id| self.profiles.get(id)).cloned()
    }

    pub(super) fn by_handle(&self, index: &BlindIndex) -> Option<Profile> {
        self.by_handle.get(index).and_then(|id| self.profiles.get(id)).cloned()
    }

    pub(super) fn relation(&self, viewer: Uuid, target: Uuid) -> Relation {
        Relation {
            own: viewer == target,
            following: self.follows.get(&(viewer, target)).map(|(s, _)| *s),
            followed_by: self.follows.get(&(target, viewer)).map(|(s, _)| *s),
            blocking: self.blocks.contains_key(&(viewer, target)),
            blocked_by: self.blocks.contains_key(&(target, viewer)),
            muting: self.mutes.contains_key(&(viewer, target)),
        }
    }

    fn both(&self, a: Uuid, b: Uuid) -> Result<(), SocialStoreError> {
        if self.profiles.contains_key(&a) && self.profiles.contains_key(&b) {
            Ok(())
        } else {
            Err(SocialStoreError::Gone)
        }
    }

    pub(super) fn follow(
        &mut self,
        follower: Uuid,
        followee: Uuid,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Change<FollowState>, SocialStoreError> {
        self.both(follower, followee)?;
        let visibility = self.profiles[&followee].visibility;
        let change = graph::follow(visibility, &self.relation(follower, followee))?;
        if let Change::New(state) = change {
            self.follows.insert((follower, followee), (state, act.at));
            if state == FollowState::Active {
                self.count(follower, followee, 1);
            }
            let seq = self.bump(followee);
            outbox
                .append(act.at, vec![events::followed(follower, followee, state, seq, act.request_id.clone(), act.at)]);
        }
        Ok(change)
    }

    fn end(&mut self, follower: Uuid, followee: Uuid, why: Ended, act: &Act) -> Option<DomainEvent> {
        let (state, _) = self.follows.remove(&(follower, followee))?;
        if state == FollowState::Active {
            self.count(follower, followee, -1);
        }
        let seq = self.bump(followee);
        Some(events::unfollowed((follower, followee), state, why, seq, act.request_id.clone(), act.at))
    }

    pub(super) fn unfollow(
        &mut self,
        follower: Uuid,
        followee: Uuid,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Option<FollowState> {
        let state = self.follows.get(&(follower, followee)).map(|(s, _)| *s)?;
        let event = self.end(follower, followee, Ended::Unfollowed, act)?;
        outbox.append(act.at, vec![event]);
        Some(state)
    }

    pub(super) fn answer(&mut self, owner: Uuid, requester: Uuid, accept: bool, act: &Act, outbox: &MemOutbox) -> bool {
        if self.follows.get(&(requester, owner)).map(|(s, _)| *s) != Some(FollowState::Pending) {
            return false;
        }
        let event = if accept {
            self.follows.insert((requester, owner), (FollowState::Active, act.at));
            self.count(requester, owner, 1);
            let seq = self.bump(owner);
            Some(events::followed(requester, owner, FollowState::Active, seq, act.request_id.clone(), act.at))
        } else {
            self.end(requester, owner, Ended::Declined, act)
        };
        outbox.append(act.at, event.into_iter().collect());
        true
    }

    pub(super) fn block(
        &mut self,
        blocker: Uuid,
        blocked: Uuid,
        on: bool,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<bool, SocialStoreError> {
        self.both(blocker, blocked)?;
        graph::not_own(&self.relation(blocker, blocked))?;
        let mut out = Vec::new();
        if on {
            if self.blocks.contains_key(&(blocker, blocked)) {
                return Ok(false);
            }
            self.blocks.insert((blocker, blocked), act.at);
            out.extend(self.end(blocker, blocked, Ended::Blocked, act));
            out.extend(self.end(blocked, blocker, Ended::Blocked, act));
        } else if self.blocks.remove(&(blocker, blocked)).is_none() {
            return Ok(false);
        }
        let seq = self.bump(blocker);
        out.push(events::block((blocker, blocked), on, seq, act.request_id.clone(), act.at));
        outbox.append(act.at, out);
        Ok(true)
    }

    pub(super) fn mute(
        &mut self,
        muter: Uuid,
        muted: Uuid,
        on: bool,
        at: DateTime<Utc>,
    ) -> Result<bool, SocialStoreError> {
        self.both(muter, muted)?;
        graph::not_own(&self.relation(muter, muted))?;
        Ok(if on {
            self.mutes.insert((muter, muted), at).is_none()
        } else {
            self.mutes.remove(&(muter, muted)).is_some()
        })
    }

    pub(super) fn edges(
        &self,
        profile: Uuid,
        side: Side,
        (before, limit): (Option<(DateTime<Utc>, Uuid)>, usize),
        viewer: Option<Uuid>,
    ) -> Vec<Edge> {
        let follows = |active: bool, of_followee: bool| {
            self.follows
                .iter()
                .filter(move |((follower, followee), (state, _))| {
                    (*state == FollowState::Active) == active
                        && if of_followee { *followee == profile } else { *follower == profile }
                })
                .map(move |((follower, followee), (_, since))| {
                    (if of_followee { *follower } else { *followee }, *since)
                })
        };
        let mut found: Vec<(Uuid, DateTime<Utc>)> = match side {
            Side::Followers => follows(true, true).collect(),
            Side::Following => follows(true, false).collect(),
            Side::Requests => follows(false, true).collect(),
            Side::Blocked => {
                self.blocks.iter().filter(|((b, _), _)| *b == profile).map(|((_, o), at)| (*o, *at)).collect()
            }
            Side::Muted => {
                self.mutes.iter().filter(|((m, _), _)| *m == profile).map(|((_, o), at)| (*o, *at)).collect()
            }
        };
        found.sort_by_key(|e| std::cmp::Reverse((e.1, e.0)));
        found
            .into_iter()
            .filter(|(id, since)| before.is_none_or(|(at, last)| (*since, *id) < (at, last)))
            .filter(|(id, _)| viewer.is_none_or(|v| !self.relation(v, *id).blocked()))
            .filter_map(|(id, since)| self.profiles.get(&id).map(|p| Edge { profile: p.clone(), since }))
            .take(limit)
            .collect()
    }

    pub(super) fn erase(&mut self, owner: &BlindIndex, at: DateTime<Utc>, outbox: &MemOutbox) -> Option<Profile> {
        let id = self.by_owner.remove(owner)?;
        let edges: Vec<((Uuid, Uuid), FollowState)> =
            self.follows.iter().filter(|((a, b), _)| *a == id || *b == id).map(|(k, (s, _))| (*k, *s)).collect();
        for ((follower, followee), state) in edges {
            self.follows.remove(&(follower, followee));
            if state == FollowState::Active {
                self.count(follower, followee, -1);
            }
        }
        self.blocks.retain(|(a, b), _| *a != id && *b != id);
        self.mutes.retain(|(a, b), _| *a != id && *b != id);
        self.erase_posts_of(id);
        self.erase_reports_of(id);
        self.activity_sources.retain(|_, author| *author != id);
        let profile = self.profiles.remove(&id)?;
        self.by_handle.remove(&profile.handle_index);
        outbox.append(at, vec![events::profile_deleted(id, profile.version + 1, at)]);
        Some(profile)
    }
}
