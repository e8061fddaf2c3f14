//! Posts through the [`SocialClient`]: text checked and sealed under the author's key, links
//! checked against the domains they name (a ride the author took or drove and that completed; an
//! ESG milestone the author reached), who sees a post applied on every read, reactions and
//! comments, and the profile and home timelines.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    client::{act, ProfileView},
    messages::{
        AddComment, CreateActivityPost, CreatePost, DeleteComment, DeletePost, EditPost, GetComment, GetFollowerIds,
        GetHome, GetHomeRelations, GetPost, GetPostsByIds, GetProfile, GetProfileById, GetReactions, GetRelation,
        GetUnfanned, ListComments, ListPosts, Lookup, React, Unreact,
    },
    Answer, SocialClient,
};
use crate::{
    adapters::social::{timelines::Entry, Comment, Hidden, Post, PostDraft, Profile, PAGE_MAX},
    domain::{
        mobility::RideState,
        privacy::{Personal, Place},
        social::{
            activity::ACTIVITY_VISIBILITY, events::PARTICIPANT_FIELD, graph, moderation, post, Activity, Link,
            Reaction, Relation, SocialError, Visibility,
        },
    },
    telemetry,
};

/// Where a post's and a comment's sealed text is kept (the row is the post's or comment's id).
pub mod fields {
    /// A post's text.
    pub const POST_BODY: &str = "social.post.body";
    /// A comment's text.
    pub const COMMENT_BODY: &str = "social.comment.body";
}

/// The namespace of activity posts' ids (each the UUIDv5 of its event's id).
const ACTIVITY_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_43a2_9c0e_4d57_8a31_52e4_c0d9_7f18);

/// A post as a reader gets it.
#[derive(Debug, Clone)]
pub struct PostView {
    /// Its id.
    pub id: Uuid,
    /// Its author's profile.
    pub author: ProfileView,
    /// The text (erased with its author).
    pub text: Personal<String>,
    /// What it links to.
    pub link: Option<Link>,
    /// Who sees it.
    pub visibility: Visibility,
    /// Reactions by kind.
    pub reactions: BTreeMap<Reaction, u64>,
    /// The reader's own reaction.
    pub my_reaction: Option<Reaction>,
    /// Comments and replies.
    pub comments: u64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Hidden by an administrator (only its author, and administrators, see it).
    pub hidden: Option<Hidden>,
}

/// A comment as a reader gets it.
#[derive(Debug, Clone)]
pub struct CommentView {
    /// Its id.
    pub id: Uuid,
    /// The post.
    pub post: Uuid,
    /// The comment it replies to.
    pub parent: Option<Uuid>,
    /// Its author's profile.
    pub author: ProfileView,
    /// The text.
    pub text: Personal<String>,
    /// Made.
    pub created_at: DateTime<Utc>,
}

/// A post as its author writes it.
#[derive(Debug, Clone)]
pub struct PostInput {
    /// 1 to 500 characters.
    pub text: String,
    /// `(kind, ref)`: `ride` and a ride's id, or `esg_milestone` and a milestone's name.
    pub link: Option<(String, String)>,
    /// Who sees it.
    pub visibility: Visibility,
}

/// What became of an activity consumed from another domain's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    /// Made into a post now.
    Made,
    /// Made into a post before (that post may have been deleted since).
    Before,
    /// Not a post: its user has no profile, was erased, or does not share that kind.
    NotShared,
}

/// Which posts of a profile the viewer related to it by `relation` sees, for a profile of
/// `visibility`: none when it does not share with them.
fn shown(visibility: Visibility, relation: &Relation) -> Vec<Visibility> {
    Visibility::ALL.into_iter().filter(|v| post::sees_post(visibility, *v, relation)).collect()
}

impl SocialClient {
    fn count_post(&self, action: &'static str) {
        self.metrics.with(|| metrics::counter!(telemetry::SOCIAL_POSTS_TOTAL, "action" => action).increment(1));
    }

    async fn seal_text(&self, subject: &str, field: &str, row: Uuid, text: &str) -> Answer<String> {
        let row = row.to_string();
        Ok(self.vault.seal(subject, Place::new(field, &row), text).await?.to_text())
    }

    pub(super) async fn open_text(&self, field: &str, row: Uuid, sealed: &str) -> Answer<Personal<String>> {
        let row = row.to_string();
        Ok(self.vault.open_text(sealed, Place::new(field, &row)).await?)
    }

    /// The link `(kind, ref)`, checked: a ride `subject` took or drove and that completed, or an
    /// ESG milestone they reached.
    async fn checked_link(&self, subject: &str, (kind, reference): (&str, &str)) -> Answer<Link> {
        let link = Link::parse(kind, reference)?;
        let refused = |why: &str| SocialError::InvalidLink(format!("{kind} {reference}: {why}"));
        match &link {
            Link::Ride(id) => match self.links.0.ride(subject, *id).await {
                Ok(stored) if stored.ride.state == RideState::Completed => {}
                Ok(_) => return Err(refused("the ride has not completed").into()),
                Err(_) => return Err(refused("not a ride of yours").into()),
            },
            Link::EsgMilestone(name) => {
                let kg = Link::milestone_kg(name).unwrap_or(u64::MAX);
                let overview = self.links.1.overview(subject).await.map_err(|_| refused("ESG did not answer"))?;
                let avoided = overview.state.map_or(0, |s| s.totals.avoided_g);
                if avoided < kg.saturating_mul(1000) {
                    return Err(refused("a milestone you have not reached").into());
                }
            }
        }
        Ok(link)
    }

    /// `subject` posts: the post as they see it.
    pub async fn create_post(&self, subject: &str, input: PostInput, request_id: Option<String>) -> Answer<PostView> {
        post::check_text("text", &input.text)?;
        let me = self.required(subject).await?;
        let link = match &input.link {
            Some((kind, reference)) => Some(self.checked_link(subject, (kind, reference)).await?),
            None => None,
        };
        let id = Uuid::now_v7();
        let body = self.seal_text(subject, fields::POST_BODY, id, &input.text).await?;
        let participant = self.seal_text(subject, PARTICIPANT_FIELD, id, subject).await?;
        let draft = PostDraft {
            id,
            body,
            link,
            participant: Some(participant),
            visibility: input.visibility,
            fanout_max_followers: self.feeds.fanout_max_followers,
        };
        let post = self.domain.ask(CreatePost { author: me.id, draft, act: act(request_id) }).await??;
        self.count_post("created");
        self.fan_out(&post).await;
        let author = self.view(&me, None).await?;
        Ok(self.post_view(&post, author, Personal::Value(input.text), None))
    }

    /// Make `activity` into a post by its user, when their profile shares that kind: once per
    /// event, however many times it is delivered.
    pub async fn activity_post(&self, activity: &Activity, request_id: Option<String>) -> Answer<Posted> {
        let posted = self.make_activity_post(activity, request_id).await?;
        let result = match posted {
            Posted::Made => "made",
            Posted::Before => "duplicate",
            Posted::NotShared => "not_shared",
        };
        let kind = activity.kind.as_str();
        self.metrics.with(|| {
            metrics::counter!(telemetry::SOCIAL_ACTIVITY_POSTS_TOTAL, "kind" => kind, "result" => result).increment(1)
        });
        Ok(posted)
    }

    async fn make_activity_post(&self, activity: &Activity, request_id: Option<String>) -> Answer<Posted> {
        if activity.subject_sealed.is_empty() {
            return Ok(Posted::NotShared);
        }
        let (field, row) = (activity.sealed_at.0, activity.sealed_at.1.as_str());
        let subject = match self.vault.open_text(&activity.subject_sealed, Place::new(field, row)).await? {
            Personal::Value(subject) => subject,
            Personal::Erased => return Ok(Posted::NotShared),
        };
        let owner = self.vault.subject_index(&subject);
        if self.absent.at(&owner, activity.at) {
            return Ok(Posted::NotShared);
        }
        let asked = Utc::now();
        let Some(me) = self.domain.ask(GetProfile { by: Lookup::Owner(owner) }).await?? else {
            self.absent.remember(owner, asked);
            return Ok(Posted::NotShared);
        };
        if !activity.kind.shared(me.sharing) {
            return Ok(Posted::NotShared);
        }
        // The post's id is derived from the event's, so that its sealed text names the same row
        // however many times the event comes.
        let id = Uuid::new_v5(&ACTIVITY_NAMESPACE, activity.event_id.as_bytes());
        let body = self.seal_text(&subject, fields::POST_BODY, id, &activity.text).await?;
        let draft = PostDraft {
            id,
            body,
            link: Some(activity.link.clone()),
            participant: None,
            visibility: ACTIVITY_VISIBILITY,
            fanout_max_followers: self.feeds.fanout_max_followers,
        };
        let msg = CreateActivityPost { author: me.id, source: activity.event_id, draft, act: act(request_id) };
        match self.domain.ask(msg).await?? {
            Some(post) => {
                self.count_post("created");
                self.fan_out(&post).await;
                Ok(Posted::Made)
            }
            None => Ok(Posted::Before),
        }
    }

    fn post_view(&self, post: &Post, author: ProfileView, text: Personal<String>, mine: Option<Reaction>) -> PostView {
        PostView {
            id: post.id,
            author,
            text,
            link: post.link.clone(),
            visibility: post.visibility,
            reactions: post.reactions.clone(),
            my_reaction: mine,
            comments: post.comments,
            created_at: post.created_at,
            edited_at: post.edited_at,
            hidden: post.hidden,
        }
    }

    /// Posts as `viewer` (a profile, if they have one) reads them, their authors opened once each.
    async fn post_views(&self, viewer: Option<&Profile>, posts: Vec<Post>) -> Answer<Vec<PostView>> {
        let ids: Vec<Uuid> = posts.iter().map(|p| p.id).collect();
        let mine = match viewer {
            Some(v) if !ids.is_empty() => self.domain.ask(GetReactions { reactor: v.id, posts: ids }).await??,
            _ => BTreeMap::new(),
        };
        // Every author of the page in one read, each opened once.
        let mut ids: Vec<Uuid> = posts.iter().map(|p| p.author).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut authors: HashMap<Uuid, ProfileView> = HashMap::with_capacity(ids.len());
        for profile in self.domain.ask(super::messages::GetProfilesByIds { ids }).await?? {
            let view = self.view(&profile, None).await?;
            authors.insert(profile.id, view);
        }
        let mut out = Vec::with_capacity(posts.len());
        for post in posts {
            // An author erased meanwhile takes their posts along.
            let Some(author) = authors.get(&post.author).cloned() else { continue };
            let text = self.open_text(fields::POST_BODY, post.id, &post.body).await?;
            out.push(self.post_view(&post, author, text, mine.get(&post.id).copied()));
        }
        Ok(out)
    }

    /// The post `id` if `subject` sees it, with its author's profile and the viewer's profile.
    pub(super) async fn visible_post(&self, subject: &str, id: Uuid) -> Answer<(Post, Profile, Option<Profile>)> {
        let not_found = || SocialError::PostNotFound(id);
        let post = self.domain.ask(GetPost { id }).await??.ok_or_else(not_found)?;
        let author = self.domain.ask(GetProfileById { id: post.author }).await??.ok_or_else(not_found)?;
        let me = self.own(subject).await?;
        let relation = match &me {
            Some(me) => self.domain.ask(GetRelation { viewer: me.id, target: author.id }).await??,
            None => Relation::default(),
        };
        if !post::sees_post(author.visibility, post.visibility, &relation)
            || !moderation::sees_hidden(post.hidden.is_some(), relation.own)
        {
            return Err(not_found().into());
        }
        Ok((post, author, me))
    }

    /// The post `id` as `subject` sees it (not found when they may not).
    pub async fn post(&self, subject: &str, id: Uuid) -> Answer<PostView> {
        let (post, _, me) = self.visible_post(subject, id).await?;
        let mut views = self.post_views(me.as_ref(), vec![post]).await?;
        views.pop().ok_or_else(|| SocialError::PostNotFound(id).into())
    }

    /// `subject` edits their post `id` within its edit window.
    pub async fn edit_post(&self, subject: &str, id: Uuid, text: &str, request_id: Option<String>) -> Answer<PostView> {
        post::check_text("text", text)?;
        let me = self.required(subject).await?;
        let body = self.seal_text(subject, fields::POST_BODY, id, text).await?;
        let post = self.domain.ask(EditPost { author: me.id, id, body, act: act(request_id) }).await??;
        self.count_post("edited");
        let mut views = self.post_views(Some(&me), vec![post]).await?;
        views.pop().ok_or_else(|| SocialError::PostNotFound(id).into())
    }

    /// `subject` deletes their post `id`.
    pub async fn delete_post(&self, subject: &str, id: Uuid, request_id: Option<String>) -> Answer<()> {
        let me = self.required(subject).await?;
        self.domain.ask(DeletePost { author: me.id, id, act: act(request_id) }).await??;
        self.count_post("deleted");
        Ok(())
    }

    /// `subject` reacts to the post `id`, which they see.
    pub async fn react(&self, subject: &str, id: Uuid, kind: Reaction, request_id: Option<String>) -> Answer<PostView> {
        let (_, _, me) = self.visible_post(subject, id).await?;
        let me = me.ok_or(SocialError::ProfileRequired)?;
        let post = self.domain.ask(React { post: id, reactor: me.id, kind, act: act(request_id) }).await??;
        self.count_post("reacted");
        let mut views = self.post_views(Some(&me), vec![post]).await?;
        views.pop().ok_or_else(|| SocialError::PostNotFound(id).into())
    }

    /// `subject` takes their reaction to the post `id` back: what it was.
    pub async fn unreact(&self, subject: &str, id: Uuid, request_id: Option<String>) -> Answer<Option<Reaction>> {
        let (_, _, me) = self.visible_post(subject, id).await?;
        let me = me.ok_or(SocialError::ProfileRequired)?;
        let (_, was) = self.domain.ask(Unreact { post: id, reactor: me.id, act: act(request_id) }).await??;
        if was.is_some() {
            self.count_post("unreacted");
        }
        Ok(was)
    }

    /// `subject` comments on the post `id`, which they see, or replies to its comment `parent`.
    pub async fn comment(
        &self,
        subject: &str,
        (id, parent): (Uuid, Option<Uuid>),
        text: &str,
        request_id: Option<String>,
    ) -> Answer<CommentView> {
        post::check_text("text", text)?;
        let (_, _, me) = self.visible_post(subject, id).await?;
        let me = me.ok_or(SocialError::ProfileRequired)?;
        let comment_id = Uuid::now_v7();
        let body = self.seal_text(subject, fields::COMMENT_BODY, comment_id, text).await?;
        let participant = self.seal_text(subject, PARTICIPANT_FIELD, comment_id, subject).await?;
        let msg =
            AddComment { post: id, parent, id: comment_id, author: me.id, body, participant, act: act(request_id) };
        let comment = self.domain.ask(msg).await??;
        self.count_post("commented");
        let author = self.view(&me, None).await?;
        Ok(comment_view(&comment, author, Personal::Value(text.to_owned())))
    }

    /// `subject` deletes the comment `id`: theirs, or one on their post.
    pub async fn delete_comment(&self, subject: &str, id: Uuid, request_id: Option<String>) -> Answer<()> {
        let me = self.required(subject).await?;
        let not_found = || SocialError::PostNotFound(id);
        let comment: Comment = self.domain.ask(GetComment { id }).await??.ok_or_else(not_found)?;
        let post = self.domain.ask(GetPost { id: comment.post }).await??.ok_or_else(not_found)?;
        if comment.author != me.id && post.author != me.id {
            return Err(SocialError::NotAuthor.into());
        }
        self.domain.ask(DeleteComment { id, act: act(request_id) }).await??;
        self.count_post("comment_deleted");
        Ok(())
    }

    /// A page of the comments on the post `id`, which `subject` sees, oldest first.
    pub async fn comments(
        &self,
        subject: &str,
        id: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<CommentView>> {
        let (_, _, me) = self.visible_post(subject, id).await?;
        let found = self.domain.ask(ListComments { post: id, after, limit }).await??;
        // Every author of the page in one read, each opened, and their relation to the reader
        // asked, once: a comment by someone a block stands between with the reader is left out.
        let mut ids: Vec<Uuid> = found.iter().map(|c| c.author).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut authors: HashMap<Uuid, ProfileView> = HashMap::with_capacity(ids.len());
        for author in self.domain.ask(super::messages::GetProfilesByIds { ids }).await?? {
            if let Some(me) = &me {
                let relation = self.domain.ask(GetRelation { viewer: me.id, target: author.id }).await??;
                if !graph::sees_profile(&relation) {
                    continue;
                }
            }
            let view = self.view(&author, None).await?;
            authors.insert(author.id, view);
        }
        let mut out = Vec::with_capacity(found.len());
        for comment in found {
            // An author erased meanwhile, or one the reader does not see, takes their comments along.
            let Some(view) = authors.get(&comment.author) else { continue };
            let text = self.open_text(fields::COMMENT_BODY, comment.id, &comment.body).await?;
            out.push(comment_view(&comment, view.clone(), text));
        }
        Ok(out)
    }

    /// A page of the posts of the profile of `handle` that `subject` sees, newest first.
    pub async fn profile_posts(
        &self,
        subject: &str,
        handle: &str,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<PostView>> {
        let me = self.own(subject).await?;
        let (profile, relation) = self.target(me.as_ref(), handle).await?;
        if !graph::sees_shared(profile.visibility, &relation) {
            return Err(SocialError::NotVisible.into());
        }
        let shown = shown(profile.visibility, &relation);
        let msg = ListPosts { author: profile.id, shown, with_hidden: relation.own, before, limit };
        let posts = self.domain.ask(msg).await??;
        self.count_read("profile");
        self.post_views(me.as_ref(), posts).await
    }

    /// Write `post` into the cached timelines of its author and, when it was fanned out and its
    /// author's followers see it, of their active followers. A timeline Redis could not take is
    /// dropped, to be rebuilt from PostgreSQL when next read.
    async fn fan_out(&self, post: &Post) {
        let mut readers = vec![post.author];
        if post.fanned_out && post.visibility != Visibility::Private {
            match self.domain.ask(GetFollowerIds { author: post.author }).await {
                Ok(Ok(followers)) => readers.extend(followers),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot list the followers to fan a post out to"),
                Err(e) => tracing::warn!(error = %e, "cannot list the followers to fan a post out to"),
            }
        }
        let entry = (post.created_at.timestamp_micros(), post.id);
        self.metrics.with(|| metrics::histogram!(telemetry::SOCIAL_FANOUT_SIZE).record(readers.len() as f64));
        if let Err(e) = self.feeds.timelines.push(&readers, entry).await {
            tracing::warn!(error = %e, timelines = readers.len(), "fan-out failed; the timelines are dropped");
            self.forget_timelines(&readers).await;
        }
    }

    /// A page of `subject`'s home timeline, newest first: their own posts and those of the
    /// profiles they follow that they see, without the profiles they mute.
    pub async fn home(
        &self,
        subject: &str,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: usize,
    ) -> Answer<Vec<PostView>> {
        let me = self.required(subject).await?;
        let posts = self.home_posts(&me, before, limit).await?;
        self.count_read("home");
        self.post_views(Some(&me), posts).await
    }

    fn count_cache(&self, result: &'static str) {
        self.metrics
            .with(|| metrics::counter!(telemetry::SOCIAL_TIMELINE_CACHE_TOTAL, "result" => result).increment(1));
    }

    /// The posts of a page of `me`'s home timeline: the cached timeline (rebuilt from PostgreSQL
    /// when missing) merged with the posts of the followed authors that were not fanned out, each
    /// checked against what PostgreSQL holds now; past the cached length, or when Redis fails,
    /// straight from PostgreSQL.
    async fn home_posts(&self, me: &Profile, before: Option<(DateTime<Utc>, Uuid)>, limit: usize) -> Answer<Vec<Post>> {
        let from_store = |before, limit| GetHome { viewer: me.id, with_hidden: false, before, limit };
        let relations = self.domain.ask(GetHomeRelations { viewer: me.id }).await??;
        let big: Vec<Uuid> = relations
            .followed
            .iter()
            .filter(|(author, followers)| {
                **followers > self.feeds.fanout_max_followers && !relations.muted.contains(author)
            })
            .map(|(author, _)| *author)
            .collect();
        let sees = |p: &Post| {
            p.author == me.id
                || (p.visibility != Visibility::Private
                    && p.hidden.is_none()
                    && relations.followed.contains_key(&p.author)
                    && !relations.muted.contains(&p.author))
        };
        let to_entry = |at: DateTime<Utc>, id: Uuid| (at.timestamp_micros(), id);
        let timelines = &self.feeds.timelines;
        let mut cursor: Option<Entry> = before.map(|(at, id)| to_entry(at, id));
        // The first cached entries (the read also says whether the timeline exists and is at its
        // full length), or the whole of a timeline rebuilt now.
        let mut rebuilt: Option<Vec<Entry>> = None;
        let mut first: Option<Vec<Entry>> = None;
        let mut full;
        match timelines.read(me.id, cursor, limit + 8).await {
            Ok(Some((entries, at_length))) => {
                self.count_cache("hit");
                first = Some(entries);
                full = at_length;
            }
            Ok(None) => {
                self.count_cache("miss");
                let length = timelines.length();
                // Hidden posts keep their entries: readers leave them out until they are shown.
                let rebuild = GetHome { viewer: me.id, with_hidden: true, before: None, limit: length };
                let posts = self.domain.ask(rebuild).await??;
                let entries: Vec<Entry> = posts.iter().map(|p| to_entry(p.created_at, p.id)).collect();
                if let Err(e) = timelines.rebuild(me.id, &entries).await {
                    tracing::warn!(error = %e, "cannot cache a rebuilt timeline");
                }
                full = entries.len() >= length;
                rebuilt = Some(entries);
            }
            Err(_) => {
                self.count_cache("error");
                return self.domain.ask(from_store(before, limit)).await?;
            }
        }
        let mut out: Vec<Post> = Vec::with_capacity(limit);
        let mut cursor_at = before;
        loop {
            let n = limit - out.len() + 8;
            let cached: Vec<Entry> = match (&rebuilt, first.take()) {
                (Some(entries), _) => {
                    entries.iter().filter(|e| cursor.is_none_or(|c| **e < c)).take(n).copied().collect()
                }
                (None, Some(entries)) => entries,
                (None, None) => match timelines.read(me.id, cursor, n).await {
                    Ok(Some((entries, _))) => entries,
                    // Dropped or failing meanwhile: the rest from PostgreSQL.
                    _ => {
                        full = true;
                        Vec::new()
                    }
                },
            };
            let unfanned = self.domain.ask(GetUnfanned { authors: big.clone(), before: cursor_at, limit: n }).await??;
            let cache_done = cached.len() < n;
            let unfanned_done = unfanned.len() < n;
            // Complete down to the higher of the two streams' last entries.
            let frontier = [
                (!cache_done).then(|| cached.last().copied()).flatten(),
                (!unfanned_done).then(|| unfanned.last().map(|p| to_entry(p.created_at, p.id))).flatten(),
            ]
            .into_iter()
            .flatten()
            .max();
            let mut merged: BTreeMap<Entry, Option<Post>> = BTreeMap::new();
            for e in &cached {
                merged.insert(*e, None);
            }
            for p in unfanned {
                merged.insert(to_entry(p.created_at, p.id), Some(p));
            }
            let kept: Vec<(Entry, Option<Post>)> =
                merged.into_iter().rev().filter(|(e, _)| frontier.is_none_or(|f| *e >= f)).collect();
            let wanted: Vec<Uuid> = kept.iter().filter(|(_, p)| p.is_none()).map(|(e, _)| e.1).collect();
            let mut fetched: HashMap<Uuid, Post> = if wanted.is_empty() {
                HashMap::new()
            } else {
                self.domain.ask(GetPostsByIds { ids: wanted }).await??.into_iter().map(|p| (p.id, p)).collect()
            };
            for (entry, post) in kept {
                cursor = Some(entry);
                let post = post.or_else(|| fetched.remove(&entry.1));
                if let Some(post) = post {
                    cursor_at = Some((post.created_at, post.id));
                    if sees(&post) {
                        out.push(post);
                        if out.len() == limit {
                            return Ok(out);
                        }
                    }
                }
            }
            if let Some((micros, id)) = cursor {
                if cursor_at.is_none_or(|(at, pid)| (at.timestamp_micros(), pid) != (micros, id)) {
                    cursor_at = chrono::TimeZone::timestamp_micros(&Utc, micros).single().map(|at| (at, id));
                }
            }
            if cache_done && unfanned_done {
                // A timeline at its full length may have lost older posts: the rest from PostgreSQL.
                if full {
                    let rest = self.domain.ask(from_store(cursor_at, limit - out.len())).await??;
                    out.extend(rest);
                }
                return Ok(out);
            }
        }
    }

    /// Everything `subject` wrote and gave, for an export: their posts (all of them, their text
    /// opened, hidden ones marked), their comments, their reactions and the reports they filed.
    pub async fn contributions_of(&self, subject: &str) -> Answer<serde_json::Value> {
        use serde_json::json;
        let Some(me) = self.own(subject).await? else { return Ok(json!({})) };
        let mut posts = Vec::new();
        let mut before = None;
        loop {
            let page = self
                .domain
                .ask(ListPosts {
                    author: me.id,
                    shown: Visibility::ALL.to_vec(),
                    with_hidden: true,
                    before,
                    limit: PAGE_MAX,
                })
                .await??;
            let full = page.len() == PAGE_MAX;
            before = page.last().map(|p| (p.created_at, p.id));
            for post in page {
                let text = self.open_text(fields::POST_BODY, post.id, &post.body).await?;
                posts.push(json!({
                    "id": post.id,
                    "text": text,
                    "link": post.link,
                    "visibility": post.visibility,
                    "reactions": post.reactions.iter().map(|(k, n)| (k.as_str(), *n)).collect::<BTreeMap<_, _>>(),
                    "comments": post.comments,
                    "created_at": post.created_at,
                    "edited_at": post.edited_at,
                    "hidden": post.hidden.map(|h| json!({ "at": h.at, "reason": h.reason.as_str() })),
                }));
            }
            if !full {
                break;
            }
        }
        let (comments, reactions) = self.domain.ask(super::messages::GetContributions { author: me.id }).await??;
        let mut written = Vec::with_capacity(comments.len());
        for c in comments {
            let text = self.open_text(fields::COMMENT_BODY, c.id, &c.body).await?;
            written.push(
                json!({ "id": c.id, "post": c.post, "parent": c.parent, "text": text, "created_at": c.created_at }),
            );
        }
        let given: Vec<serde_json::Value> = reactions
            .into_iter()
            .map(|(post, kind, at)| json!({ "post": post, "kind": kind.as_str(), "created_at": at }))
            .collect();
        let filed: Vec<serde_json::Value> = self
            .domain
            .ask(super::messages::GetReportsBy { reporter: me.id })
            .await??
            .into_iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "profile": r.target_profile,
                    "post": r.target_post,
                    "reason": r.reason.as_str(),
                    "status": r.status.as_str(),
                    "created_at": r.created_at,
                    "resolved_at": r.resolved_at,
                })
            })
            .collect();
        Ok(json!({ "posts": posts, "comments": written, "reactions": given, "reports": filed }))
    }

    fn count_read(&self, timeline: &'static str) {
        self.metrics
            .with(|| metrics::counter!(telemetry::SOCIAL_TIMELINE_READS_TOTAL, "timeline" => timeline).increment(1));
    }
}

fn comment_view(comment: &Comment, author: ProfileView, text: Personal<String>) -> CommentView {
    CommentView {
        id: comment.id,
        post: comment.post,
        parent: comment.parent,
        author,
        text,
        created_at: comment.created_at,
    }
}
