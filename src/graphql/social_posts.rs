//! Social posts over GraphQL: posts, reactions, comments and the timelines, through the same
//! client, rules and error codes as the REST API.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    caller::Caller,
    social::{SocialProfile, VisibilityValue},
};
use crate::{
    actors::social::posts::{CommentView, PostInput, PostView},
    adapters::social::{Hidden, PAGE_MAX},
    domain::social::{moderation::Reason, Link, Reaction},
    error::{AppError, ErrorCode},
    http::{guard::Group, paging::Page, state::AppState},
};

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

pub(super) fn request_id() -> Option<String> {
    crate::telemetry::current_request_id().map(|r| r.as_str().to_owned())
}

pub(super) fn id_of(raw: &str, field: &'static str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw).ok().ok_or_else(|| {
        AppError::client(ErrorCode::InvalidParameter, format!("{field} is not a UUID")).with("field", field)
    })
}

/// A reaction.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ReactionKind")]
pub enum ReactionValue {
    /// 👍
    Like,
    /// ❤️
    Love,
    /// 🎉
    Celebrate,
    /// 🌱
    Support,
}

impl From<ReactionValue> for Reaction {
    fn from(r: ReactionValue) -> Self {
        match r {
            ReactionValue::Like => Self::Like,
            ReactionValue::Love => Self::Love,
            ReactionValue::Celebrate => Self::Celebrate,
            ReactionValue::Support => Self::Support,
        }
    }
}

/// What a post links to.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PostLinkKind")]
pub enum LinkKindValue {
    /// A ride the author took or drove, completed.
    Ride,
    /// An ESG milestone the author reached.
    EsgMilestone,
}

/// A link to write.
#[derive(InputObject)]
#[graphql(name = "PostLinkInput")]
pub struct LinkInput {
    /// The kind.
    pub kind: LinkKindValue,
    /// The ride's id, or the milestone's name.
    #[graphql(name = "ref")]
    pub reference: String,
}

/// A post to make.
#[derive(InputObject)]
#[graphql(name = "PostInput")]
pub struct PostWrite {
    /// 1 to 500 characters.
    pub text: String,
    /// What it links to.
    pub link: Option<LinkInput>,
    /// Who sees it (default PUBLIC).
    pub visibility: Option<VisibilityValue>,
}

/// A link.
#[derive(SimpleObject)]
#[graphql(name = "PostLink")]
pub struct PostLink {
    /// `ride` or `esg_milestone`.
    pub kind: String,
    /// The ride's id, or the milestone's name.
    #[graphql(name = "ref")]
    pub reference: String,
}

/// A count of one reaction.
#[derive(SimpleObject)]
#[graphql(name = "ReactionCount")]
pub struct ReactionCount {
    /// The reaction.
    pub kind: String,
    /// How many.
    pub count: i64,
}

/// A post.
#[derive(SimpleObject)]
#[graphql(name = "Post")]
pub struct PostObject {
    /// Its id.
    pub id: ID,
    /// Its author.
    pub author: SocialProfile,
    /// The text; null once its author was erased.
    pub text: Option<String>,
    /// What it links to.
    pub link: Option<PostLink>,
    /// Who sees it.
    pub visibility: VisibilityValue,
    /// Reactions by kind.
    pub reactions: Vec<ReactionCount>,
    /// The caller's reaction.
    pub my_reaction: Option<String>,
    /// Comments and replies.
    pub comments: i64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Hidden by a moderator, when it is: then only its author sees it.
    pub hidden: Option<PostHidden>,
}

impl From<&PostView> for PostObject {
    fn from(p: &PostView) -> Self {
        Self {
            id: ID(p.id.to_string()),
            author: SocialProfile::from(&p.author),
            text: p.text.value().cloned(),
            link: p.link.as_ref().map(|l: &Link| PostLink { kind: l.kind().to_owned(), reference: l.reference() }),
            visibility: p.visibility.into(),
            reactions: p
                .reactions
                .iter()
                .map(|(k, n)| ReactionCount {
                    kind: k.as_str().to_owned(),
                    count: i64::try_from(*n).unwrap_or(i64::MAX),
                })
                .collect(),
            my_reaction: p.my_reaction.map(|r| r.as_str().to_owned()),
            comments: i64::try_from(p.comments).unwrap_or(i64::MAX),
            created_at: p.created_at,
            edited_at: p.edited_at,
            hidden: p.hidden.as_ref().map(PostHidden::from),
        }
    }
}

/// A comment.
#[derive(SimpleObject)]
#[graphql(name = "Comment")]
pub struct CommentObject {
    /// Its id.
    pub id: ID,
    /// The post.
    pub post: ID,
    /// The comment it replies to.
    pub parent: Option<ID>,
    /// Its author.
    pub author: SocialProfile,
    /// The text.
    pub text: Option<String>,
    /// Made.
    pub created_at: DateTime<Utc>,
}

impl From<&CommentView> for CommentObject {
    fn from(c: &CommentView) -> Self {
        Self {
            id: ID(c.id.to_string()),
            post: ID(c.post.to_string()),
            parent: c.parent.map(|p| ID(p.to_string())),
            author: SocialProfile::from(&c.author),
            text: c.text.value().cloned(),
            created_at: c.created_at,
        }
    }
}

/// A page of posts.
#[derive(SimpleObject)]
#[graphql(name = "PostPage")]
pub struct PostPage {
    /// Newest first.
    pub items: Vec<PostObject>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of comments.
#[derive(SimpleObject)]
#[graphql(name = "CommentPage")]
pub struct CommentPage {
    /// Oldest first.
    pub items: Vec<CommentObject>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

fn post_page(page: &Page, found: Vec<PostView>) -> Result<PostPage> {
    let (found, next_cursor) = page.finish(found, |p| (p.created_at, p.id)).map_err(|e| e.extend())?;
    Ok(PostPage { items: found.iter().map(PostObject::from).collect(), next_cursor })
}

/// Social posts' queries.
#[derive(Default)]
pub struct SocialPostQuery;

#[Object]
impl SocialPostQuery {
    /// A post the caller sees (scope `social:read`).
    async fn post(&self, ctx: &Context<'_>, id: ID) -> Result<PostObject> {
        let caller = Caller::of(ctx)?;
        caller.read("post", "social:read").await.map_err(|e| e.extend())?;
        let id = id_of(&id, "id").map_err(|e| e.extend())?;
        let post = state(ctx)?
            .actors
            .social
            .post(&caller.principal.subject, id)
            .await
            .map_err(|e| AppError::from(e).extend())?;
        Ok(PostObject::from(&post))
    }

    /// The comments on a post the caller sees, oldest first (scope `social:read`).
    async fn post_comments(
        &self,
        ctx: &Context<'_>,
        id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<CommentPage> {
        let caller = Caller::of(ctx)?;
        caller.read("postComments", "social:read").await.map_err(|e| e.extend())?;
        let id = id_of(&id, "id").map_err(|e| e.extend())?;
        let state = state(ctx)?;
        let post = id.to_string();
        let scope = ["social.comments", &caller.principal.subject, &post];
        let page = state
            .cursors
            .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
            .map_err(|e| e.extend())?;
        let found = state
            .actors
            .social
            .comments(&caller.principal.subject, id, page.after, page.fetch())
            .await
            .map_err(|e| AppError::from(e).extend())?;
        let (found, next_cursor) = page.finish(found, |c| (c.created_at, c.id)).map_err(|e| e.extend())?;
        Ok(CommentPage { items: found.iter().map(CommentObject::from).collect(), next_cursor })
    }

    /// The posts of the profile of `handle` the caller sees, newest first (scope `social:read`).
    async fn profile_posts(
        &self,
        ctx: &Context<'_>,
        handle: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<PostPage> {
        let caller = Caller::of(ctx)?;
        caller.read("profilePosts", "social:read").await.map_err(|e| e.extend())?;
        let state = state(ctx)?;
        let scope = ["social.posts", &caller.principal.subject, &handle];
        let page = state
            .cursors
            .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
            .map_err(|e| e.extend())?;
        let found = state
            .actors
            .social
            .profile_posts(&caller.principal.subject, &handle, page.after, page.fetch())
            .await
            .map_err(|e| AppError::from(e).extend())?;
        post_page(&page, found)
    }

    /// The caller's home timeline, newest first (scope `social:read`).
    async fn home_timeline(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<PostPage> {
        let caller = Caller::of(ctx)?;
        caller.read("homeTimeline", "social:read").await.map_err(|e| e.extend())?;
        let state = state(ctx)?;
        let scope = ["social.timeline", &caller.principal.subject];
        let page = state
            .cursors
            .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
            .map_err(|e| e.extend())?;
        let found = state
            .actors
            .social
            .home(&caller.principal.subject, page.after, page.fetch())
            .await
            .map_err(|e| AppError::from(e).extend())?;
        post_page(&page, found)
    }
}

/// Social posts' mutations.
#[derive(Default)]
pub struct SocialPostMutation;

#[Object]
impl SocialPostMutation {
    /// Make a post (scope `social:write`; counted against `rate_limit.social_post`).
    async fn create_post(&self, ctx: &Context<'_>, input: PostWrite) -> Result<PostObject> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let run = async {
            caller.charge(Group::SocialPost).await?;
            let link = input.link.map(|l| {
                let kind = match l.kind {
                    LinkKindValue::Ride => "ride",
                    LinkKindValue::EsgMilestone => "esg_milestone",
                };
                (kind.to_owned(), l.reference)
            });
            let visibility = input.visibility.unwrap_or(VisibilityValue::Public).into();
            let write = PostInput { text: input.text, link, visibility };
            Ok::<_, AppError>(social.create_post(&caller.principal.subject, write, request_id()).await?)
        };
        let post = caller
            .write("createPost", "/api/v1/social/posts".into(), "social:write", 201, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(PostObject::from(&post))
    }

    /// Edit the caller's post within 15 minutes of making it (scope `social:write`).
    async fn edit_post(&self, ctx: &Context<'_>, id: ID, text: String) -> Result<PostObject> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/posts/{}", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.edit_post(&caller.principal.subject, id, &text, request_id()).await?)
        };
        let post =
            caller.write("editPost", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(PostObject::from(&post))
    }

    /// Delete the caller's post (scope `social:write`).
    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/posts/{}", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.delete_post(&caller.principal.subject, id, request_id()).await?)
        };
        caller.write("deletePost", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(true)
    }

    /// React to a post the caller sees, once (scope `social:write`).
    async fn react(&self, ctx: &Context<'_>, id: ID, kind: ReactionValue) -> Result<PostObject> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/posts/{}/reactions", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.react(&caller.principal.subject, id, kind.into(), request_id()).await?)
        };
        let post = caller.write("react", resource, "social:write", 201, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(PostObject::from(&post))
    }

    /// Take the caller's reaction back: what it was (scope `social:write`).
    async fn remove_reaction(&self, ctx: &Context<'_>, id: ID) -> Result<Option<String>> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/posts/{}/reactions", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.unreact(&caller.principal.subject, id, request_id()).await?)
        };
        let was = caller
            .write("removeReaction", resource, "social:write", 200, |_| None, run)
            .await
            .map_err(|e| e.extend())?;
        Ok(was.map(|r| r.as_str().to_owned()))
    }

    /// Comment on a post the caller sees, or reply to one of its comments (scope
    /// `social:write`; counted against `rate_limit.social_post`).
    async fn comment(&self, ctx: &Context<'_>, post: ID, text: String, parent: Option<ID>) -> Result<CommentObject> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/posts/{}/comments", post.as_str());
        let run = async {
            caller.charge(Group::SocialPost).await?;
            let post = id_of(&post, "post")?;
            let parent = parent.as_ref().map(|p| id_of(p, "parent")).transpose()?;
            Ok::<_, AppError>(social.comment(&caller.principal.subject, (post, parent), &text, request_id()).await?)
        };
        let comment =
            caller.write("comment", resource, "social:write", 201, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(CommentObject::from(&comment))
    }

    /// Delete a comment: the caller's, or one on the caller's post (scope `social:write`).
    async fn delete_comment(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = Caller::of(ctx)?;
        let social = &state(ctx)?.actors.social;
        let resource = format!("/api/v1/social/comments/{}", id.as_str());
        let run = async {
            let id = id_of(&id, "id")?;
            Ok::<_, AppError>(social.delete_comment(&caller.principal.subject, id, request_id()).await?)
        };
        caller.write("deleteComment", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(true)
    }
}

/// Why something is reported, or a post hidden.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ModerationReason")]
pub enum ReasonValue {
    /// Unsolicited advertising, or repeated content.
    Spam,
    /// Targeted abuse or intimidation.
    Harassment,
    /// Attacks on people for who they are.
    Hate,
    /// Threats or glorification of violence.
    Violence,
    /// Sexual content.
    Sexual,
    /// Deliberately false information.
    Misinformation,
    /// Anything else against the rules.
    Other,
}

impl From<ReasonValue> for Reason {
    fn from(r: ReasonValue) -> Self {
        match r {
            ReasonValue::Spam => Reason::Spam,
            ReasonValue::Harassment => Reason::Harassment,
            ReasonValue::Hate => Reason::Hate,
            ReasonValue::Violence => Reason::Violence,
            ReasonValue::Sexual => Reason::Sexual,
            ReasonValue::Misinformation => Reason::Misinformation,
            ReasonValue::Other => Reason::Other,
        }
    }
}

impl From<Reason> for ReasonValue {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Spam => ReasonValue::Spam,
            Reason::Harassment => ReasonValue::Harassment,
            Reason::Hate => ReasonValue::Hate,
            Reason::Violence => ReasonValue::Violence,
            Reason::Sexual => ReasonValue::Sexual,
            Reason::Misinformation => ReasonValue::Misinformation,
            Reason::Other => ReasonValue::Other,
        }
    }
}

/// When and why a post was hidden.
#[derive(SimpleObject)]
#[graphql(name = "PostHidden")]
pub struct PostHidden {
    /// Hidden since.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: ReasonValue,
}

impl From<&Hidden> for PostHidden {
    fn from(h: &Hidden) -> Self {
        Self { at: h.at, reason: h.reason.into() }
    }
}
