//! Posts, reactions and comments in the embedded store: the same rules as PostgreSQL's, under
//! the store's one lock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Act, Comment, Contributions, HomeRelations, Memory, Post, PostDraft, Profile, SocialStoreError};
use crate::{
    adapters::outbox::MemOutbox,
    domain::social::{events, post, FollowState, Reaction, SocialError, Visibility},
};

fn newest_first(posts: &mut [Post]) {
    posts.sort_by_key(|p| std::cmp::Reverse((p.created_at, p.id)));
}

fn page(mut posts: Vec<Post>, before: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Vec<Post> {
    newest_first(&mut posts);
    posts.into_iter().filter(|p| before.is_none_or(|b| (p.created_at, p.id) < b)).take(limit).collect()
}

impl Memory {
    pub(super) fn by_id(&self, id: Uuid) -> Option<Profile> {
        self.profiles.get(&id).cloned()
    }

    pub(super) fn post_mut(&mut self, id: Uuid) -> Result<&mut Post, SocialStoreError> {
        self.posts.get_mut(&id).ok_or_else(|| SocialError::PostNotFound(id).into())
    }

    pub(super) fn create_post(
        &mut self,
        author: Uuid,
        draft: &PostDraft,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Post, SocialStoreError> {
        let Some(followers) = self.profiles.get(&author).map(|p| p.followers) else {
            return Err(SocialStoreError::Gone);
        };
        if self.posts.contains_key(&draft.id) {
            return Err(SocialStoreError::Corrupt("post id used twice"));
        }
        let post = Post {
            id: draft.id,
            author,
            body: draft.body.clone(),
            link: draft.link.clone(),
            visibility: draft.visibility,
            reactions: BTreeMap::new(),
            comments: 0,
            fanned_out: followers <= draft.fanout_max_followers,
            version: 1,
            created_at: act.at,
            edited_at: None,
            hidden: None,
        };
        let data = events::post_data((author, draft.participant.as_deref()), draft.visibility, draft.link.as_ref());
        outbox.append(
            act.at,
            vec![events::on_post(events::POST_CREATED, post.id, data, 1, act.request_id.clone(), act.at)],
        );
        self.posts.insert(post.id, post.clone());
        Ok(post)
    }

    pub(super) fn create_activity_post(
        &mut self,
        author: Uuid,
        source: Uuid,
        draft: &PostDraft,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Option<Post>, SocialStoreError> {
        if self.activity_sources.contains_key(&source) {
            return Ok(None);
        }
        let post = self.create_post(author, draft, act, outbox)?;
        self.activity_sources.insert(source, author);
        Ok(Some(post))
    }

    pub(super) fn post(&self, id: Uuid) -> Option<Post> {
        self.posts.get(&id).cloned()
    }

    pub(super) fn edit_post(
        &mut self,
        author: Uuid,
        id: Uuid,
        body: &str,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Post, SocialStoreError> {
        let p = self.post_mut(id)?;
        if p.author != author {
            return Err(SocialError::NotAuthor.into());
        }
        post::may_edit(p.created_at, act.at)?;
        p.body = body.to_owned();
        p.edited_at = Some(act.at);
        p.version += 1;
        let event =
            events::on_post(events::POST_UPDATED, id, Default::default(), p.version, act.request_id.clone(), act.at);
        let edited = p.clone();
        outbox.append(act.at, vec![event]);
        Ok(edited)
    }

    pub(super) fn delete_post(
        &mut self,
        author: Uuid,
        id: Uuid,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<(), SocialStoreError> {
        let p = self.posts.get(&id).ok_or(SocialError::PostNotFound(id))?;
        if p.author != author {
            return Err(SocialError::NotAuthor.into());
        }
        let version = p.version + 1;
        self.posts.remove(&id);
        self.reactions.retain(|(post, _), _| *post != id);
        self.comments.retain(|_, c| c.post != id);
        self.reports.retain(|_, r| r.target_post != Some(id));
        let data = serde_json::Map::from_iter([("author".to_owned(), json!(author))]);
        outbox.append(
            act.at,
            vec![events::on_post(events::POST_DELETED, id, data, version, act.request_id.clone(), act.at)],
        );
        Ok(())
    }

    pub(super) fn react(
        &mut self,
        id: Uuid,
        reactor: Uuid,
        kind: Reaction,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Post, SocialStoreError> {
        self.post_mut(id)?;
        if !self.profiles.contains_key(&reactor) {
            return Err(SocialStoreError::Gone);
        }
        if self.reactions.contains_key(&(id, reactor)) {
            return Err(SocialError::AlreadyReacted.into());
        }
        self.reactions.insert((id, reactor), (kind, act.at));
        let p = self.post_mut(id)?;
        *p.reactions.entry(kind).or_default() += 1;
        p.version += 1;
        let after = p.clone();
        let data = serde_json::Map::from_iter([
            ("reactor".to_owned(), json!(reactor)),
            ("kind".to_owned(), json!(kind.as_str())),
        ]);
        outbox.append(
            act.at,
            vec![events::on_post(events::REACTION_CREATED, id, data, after.version, act.request_id.clone(), act.at)],
        );
        Ok(after)
    }

    pub(super) fn unreact(
        &mut self,
        id: Uuid,
        reactor: Uuid,
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<(Post, Option<Reaction>), SocialStoreError> {
        self.post_mut(id)?;
        let Some((kind, _)) = self.reactions.remove(&(id, reactor)) else {
            return Ok((self.posts[&id].clone(), None));
        };
        let p = self.post_mut(id)?;
        uncount(p, kind);
        p.version += 1;
        let after = p.clone();
        let data = serde_json::Map::from_iter([
            ("reactor".to_owned(), json!(reactor)),
            ("kind".to_owned(), json!(kind.as_str())),
        ]);
        outbox.append(
            act.at,
            vec![events::on_post(events::REACTION_REMOVED, id, data, after.version, act.request_id.clone(), act.at)],
        );
        Ok((after, Some(kind)))
    }

    pub(super) fn reactions_of(&self, reactor: Uuid, posts: &[Uuid]) -> BTreeMap<Uuid, Reaction> {
        posts.iter().filter_map(|p| self.reactions.get(&(*p, reactor)).map(|(k, _)| (*p, *k))).collect()
    }

    pub(super) fn comment(
        &mut self,
        (post, parent): (Uuid, Option<Uuid>),
        (id, author): (Uuid, Uuid),
        (body, participant): (&str, &str),
        act: &Act,
        outbox: &MemOutbox,
    ) -> Result<Comment, SocialStoreError> {
        self.post_mut(post)?;
        if let Some(parent) = parent {
            let p = self.comments.get(&parent).filter(|c| c.post == post).ok_or(SocialError::PostNotFound(parent))?;
            if p.parent.is_some() {
                return Err(SocialError::ThreadTooDeep.into());
            }
        }
        if !self.profiles.contains_key(&author) {
            return Err(SocialStoreError::Gone);
        }
        if self.comments.contains_key(&id) {
            return Err(SocialStoreError::Corrupt("comment id used twice"));
        }
        let comment = Comment { id, post, parent, author, body: body.to_owned(), created_at: act.at };
        self.comments.insert(comment.id, comment.clone());
        let p = self.post_mut(post)?;
        p.comments += 1;
        p.version += 1;
        let version = p.version;
        let mut data = serde_json::Map::from_iter([
            ("comment".to_owned(), json!(comment.id)),
            ("author".to_owned(), json!(author)),
            ("participant".to_owned(), json!(participant)),
        ]);
        if let Some(parent) = parent {
            data.insert("parent".into(), json!(parent));
        }
        outbox.append(
            act.at,
            vec![events::on_post(events::COMMENT_CREATED, post, data, version, act.request_id.clone(), act.at)],
        );
        Ok(comment)
    }

    pub(super) fn contributions(&self, author: Uuid) -> Contributions {
        let mut comments: Vec<Comment> = self.comments.values().filter(|c| c.author == author).cloned().collect();
        comments.sort_by_key(|c| (c.created_at, c.id));
        let mut reactions: Vec<(Uuid, Reaction, DateTime<Utc>)> = self
            .reactions
            .iter()
            .filter(|((_, r), _)| *r == author)
            .map(|((post, _), (kind, at))| (*post, *kind, *at))
            .collect();
        reactions.sort_by_key(|(post, _, at)| (*at, *post));
        (comments, reactions)
    }

    pub(super) fn unfanned_posts(
        &self,
        authors: &[Uuid],
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Vec<Post> {
        let posts = self
            .posts
            .values()
            .filter(|p| authors.contains(&p.author) && !p.fanned_out && p.visibility != Visibility::Private)
            .filter(|p| p.hidden.is_none())
            .cloned()
            .collect();
        page(posts, before, limit)
    }

    pub(super) fn follower_ids(&self, author: Uuid) -> Vec<Uuid> {
        self.follows
            .iter()
            .filter(|((_, followee), (state, _))| *followee == author && *state == FollowState::Active)
            .map(|((follower, _), _)| *follower)
            .collect()
    }

    pub(super) fn home_relations(&self, viewer: Uuid) -> HomeRelations {
        let followed = self
            .follows
            .iter()
            .filter(|((follower, _), (state, _))| *follower == viewer && *state == FollowState::Active)
            .map(|((_, followee), _)| (*followee, self.profiles.get(followee).map_or(0, |p| p.followers)))
            .collect();
        let muted = self.mutes.keys().filter(|(m, _)| *m == viewer).map(|(_, muted)| *muted).collect();
        HomeRelations { followed, muted }
    }

    pub(super) fn comment_by_id(&self, id: Uuid) -> Option<Comment> {
        self.comments.get(&id).cloned()
    }

    pub(super) fn delete_comment(&mut self, id: Uuid, act: &Act, outbox: &MemOutbox) -> Result<(), SocialStoreError> {
        let post = self.comments.get(&id).ok_or(SocialError::PostNotFound(id))?.post;
        let before = self.comments.len();
        self.comments.retain(|cid, c| *cid != id && c.parent != Some(id));
        let gone = (before - self.comments.len()) as u64;
        let p = self.post_mut(post)?;
        p.comments = p.comments.saturating_sub(gone);
        p.version += 1;
        let version = p.version;
        let data = serde_json::Map::from_iter([("comment".to_owned(), json!(id)), ("removed".to_owned(), json!(gone))]);
        outbox.append(
            act.at,
            vec![events::on_post(events::COMMENT_DELETED, post, data, version, act.request_id.clone(), act.at)],
        );
        Ok(())
    }

    pub(super) fn comments(&self, post: Uuid, after: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Vec<Comment> {
        let mut found: Vec<Comment> = self
            .comments
            .values()
            .filter(|c| c.post == post && after.is_none_or(|a| (c.created_at, c.id) > a))
            .cloned()
            .collect();
        found.sort_by_key(|c| (c.created_at, c.id));
        found.truncate(limit);
        found
    }

    pub(super) fn posts_by(
        &self,
        (author, shown, with_hidden): (Uuid, &[Visibility], bool),
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Vec<Post> {
        let posts = self
            .posts
            .values()
            .filter(|p| p.author == author && shown.contains(&p.visibility) && (with_hidden || p.hidden.is_none()))
            .cloned()
            .collect();
        page(posts, before, limit)
    }

    pub(super) fn home(
        &self,
        (viewer, with_hidden): (Uuid, bool),
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Vec<Post> {
        let follows =
            |author: Uuid| self.follows.get(&(viewer, author)).is_some_and(|(s, _)| *s == FollowState::Active);
        let posts = self
            .posts
            .values()
            .filter(|p| {
                p.author == viewer
                    || (p.visibility != Visibility::Private && (with_hidden || p.hidden.is_none()) && follows(p.author))
            })
            .filter(|p| !self.mutes.contains_key(&(viewer, p.author)))
            .cloned()
            .collect();
        page(posts, before, limit)
    }

    /// The profile `id` is being erased: its posts go with their reactions and comments, and
    /// others' posts lose its reactions and comments (and the replies to them).
    pub(super) fn erase_posts_of(&mut self, id: Uuid) {
        let own: Vec<Uuid> = self.posts.values().filter(|p| p.author == id).map(|p| p.id).collect();
        for post in &own {
            self.posts.remove(post);
        }
        self.reactions.retain(|(post, _), _| !own.contains(post));
        self.comments.retain(|_, c| !own.contains(&c.post));
        let theirs: Vec<((Uuid, Uuid), Reaction)> =
            self.reactions.iter().filter(|((_, r), _)| *r == id).map(|(k, (kind, _))| (*k, *kind)).collect();
        for ((post, reactor), kind) in theirs {
            self.reactions.remove(&(post, reactor));
            if let Some(p) = self.posts.get_mut(&post) {
                uncount(p, kind);
            }
        }
        let by_them: Vec<Uuid> = self.comments.values().filter(|c| c.author == id).map(|c| c.id).collect();
        let gone: Vec<(Uuid, Uuid)> = self
            .comments
            .values()
            .filter(|c| c.author == id || c.parent.is_some_and(|p| by_them.contains(&p)))
            .map(|c| (c.id, c.post))
            .collect();
        for (comment, post) in gone {
            self.comments.remove(&comment);
            if let Some(p) = self.posts.get_mut(&post) {
                p.comments = p.comments.saturating_sub(1);
            }
        }
    }
}

fn uncount(p: &mut Post, kind: Reaction) {
    if let Some(n) = p.reactions.get_mut(&kind) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            p.reactions.remove(&kind);
        }
    }
}
