//! `/api/v1/social/posts`, `/social/comments` and the timelines: posts with their reactions and
//! comments, a profile's posts and the caller's home timeline. Handlers parse input and call the
//! [`SocialClient`]; who sees what is applied there.
//!
//! [`SocialClient`]: crate::actors::social::SocialClient

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    guard::{client_ip, Group},
    json::Json,
    paging::Page,
    social::{HandlePath, ListQuery, ProfileBody, VisibilityBody},
    state::AppState,
};
use crate::{
    actors::social::posts::{CommentView, PostInput, PostView},
    adapters::social::{Hidden, PAGE_MAX},
    auth::Principal,
    domain::social::{moderation::Reason, Link, Reaction},
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can.
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    const SEEN: &[ErrorCode] = &[InvalidParameter, PostNotFound, PrivacyUnavailable];
    &[
        ("createPost", &[InvalidText, InvalidLink, ProfileRequired, PrivacyUnavailable]),
        ("getPost", SEEN),
        (
            "editPost",
            &[
                InvalidParameter,
                InvalidText,
                PostNotFound,
                NotOwner,
                EditWindowClosed,
                ProfileRequired,
                PrivacyUnavailable,
            ],
        ),
        ("deletePost", &[InvalidParameter, PostNotFound, NotOwner, ProfileRequired]),
        ("reactToPost", &[InvalidParameter, PostNotFound, AlreadyReacted, ProfileRequired, PrivacyUnavailable]),
        ("removeReaction", &[InvalidParameter, PostNotFound, ProfileRequired]),
        (
            "commentOnPost",
            &[InvalidParameter, InvalidText, PostNotFound, ThreadTooDeep, ProfileRequired, PrivacyUnavailable],
        ),
        (
            "listComments",
            &[InvalidParameter, PostNotFound, PageTooLarge, InvalidCursor, PageBeyondEnd, PrivacyUnavailable],
        ),
        ("deleteComment", &[InvalidParameter, PostNotFound, NotOwner, ProfileRequired]),
        (
            "listProfilePosts",
            &[
                InvalidHandle,
                ProfileNotFound,
                NotVisible,
                PageTooLarge,
                InvalidCursor,
                PageBeyondEnd,
                PrivacyUnavailable,
            ],
        ),
        ("homeTimeline", &[ProfileRequired, PageTooLarge, InvalidCursor, PageBeyondEnd, PrivacyUnavailable]),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/social/posts").route(web::post().to(create)))
        .service(
            web::resource("/social/posts/{id}")
                .route(web::get().to(get))
                .route(web::put().to(edit))
                .route(web::delete().to(delete)),
        )
        .service(
            web::resource("/social/posts/{id}/reactions").route(web::post().to(react)).route(web::delete().to(unreact)),
        )
        .service(
            web::resource("/social/posts/{id}/comments")
                .route(web::post().to(comment))
                .route(web::get().to(list_comments)),
        )
        .service(web::resource("/social/comments/{id}").route(web::delete().to(delete_comment)))
        .service(web::resource("/social/profiles/{handle}/posts").route(web::get().to(profile_posts)))
        .service(web::resource("/social/timeline").route(web::get().to(home)));
}

pub(super) fn request_id() -> Option<String> {
    crate::telemetry::current_request_id().map(|r| r.as_str().to_owned())
}

pub(super) fn id_of(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw)
        .ok()
        .filter(|u| u.hyphenated().to_string() == raw)
        .ok_or_else(|| AppError::client(ErrorCode::InvalidParameter, "id is not a UUID").with("field", "id"))
}

/// A post's or comment's id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// Its id (a UUID in lower-case hyphenated form; otherwise 400 `invalid_parameter`).
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub id: String,
}

/// What a post links to.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PostLinkKind)]
pub enum LinkKindBody {
    /// A ride the author took or drove, completed.
    Ride,
    /// An ESG milestone the author reached.
    EsgMilestone,
}

/// A link.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[schema(as = PostLink)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// `ride` or `esg_milestone`.
    pub kind: LinkKindBody,
    /// The ride's id, or the milestone's name (`avoided_1_kg`, `avoided_10_kg`, `avoided_100_kg`,
    /// `avoided_500_kg` or `avoided_1000_kg`); one that is not the author's is 422 `invalid_link`.
    #[serde(rename = "ref")]
    #[schema(min_length = 1, max_length = 64, example = "avoided_10_kg")]
    pub reference: String,
}

impl From<&Link> for LinkBody {
    fn from(l: &Link) -> Self {
        let kind = match l {
            Link::Ride(_) => LinkKindBody::Ride,
            Link::EsgMilestone(_) => LinkKindBody::EsgMilestone,
        };
        Self { kind, reference: l.reference() }
    }
}

/// A post to make.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PostWrite)]
#[serde(deny_unknown_fields)]
pub struct PostRequest {
    /// 1 to 500 characters, not all blank; line feeds allowed, no other control character and no
    /// bidirectional formatting character (otherwise 400 `invalid_text`).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069][^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
        example = "Cycled to work today."
    )]
    pub text: String,
    /// What it links to.
    pub link: Option<LinkBody>,
    /// Who sees it, within what the author's profile shares (default `public`).
    pub visibility: Option<VisibilityBody>,
}

/// A new text for a post.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PostEdit)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// 1 to 500 characters, as for a new post.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069][^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
        example = "Cycled to work today, 12 km."
    )]
    pub text: String,
}

/// A post.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Post)]
pub struct PostBody {
    /// Its id.
    pub id: Uuid,
    /// Its author's profile.
    pub author: ProfileBody,
    /// The text; `null` once its author's personal data was erased.
    pub text: Option<String>,
    /// What it links to.
    pub link: Option<LinkBody>,
    /// Who sees it.
    pub visibility: VisibilityBody,
    /// Reactions by kind (`like`, `love`, `celebrate`, `support`).
    #[schema(value_type = Object)]
    pub reactions: BTreeMap<String, u64>,
    /// The caller's own reaction.
    pub my_reaction: Option<String>,
    /// Comments and replies.
    pub comments: u64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last edited (within 15 minutes of being made).
    pub edited_at: Option<DateTime<Utc>>,
    /// Hidden by a moderator, when it is: then only its author sees it.
    pub hidden: Option<HiddenBody>,
}

impl From<&PostView> for PostBody {
    fn from(p: &PostView) -> Self {
        Self {
            id: p.id,
            author: ProfileBody::from(&p.author),
            text: p.text.value().cloned(),
            link: p.link.as_ref().map(LinkBody::from),
            visibility: p.visibility.into(),
            reactions: p.reactions.iter().map(|(k, n)| (k.as_str().to_owned(), *n)).collect(),
            my_reaction: p.my_reaction.map(|r| r.as_str().to_owned()),
            comments: p.comments,
            created_at: p.created_at,
            edited_at: p.edited_at,
            hidden: p.hidden.as_ref().map(HiddenBody::from),
        }
    }
}

/// Make a post. Counted against the `rate_limit.social_post` limit.
#[utoipa::path(
    post,
    path = "/api/v1/social/posts",
    operation_id = "createPost",
    tag = "social",
    request_body(content = PostRequest, example = json!({"text": "Cycled to work today.", "visibility": "public"})),
    responses((status = 201, description = "Made.", body = PostBody))
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    body: Json<PostRequest>,
) -> Result<HttpResponse, AppError> {
    let PostRequest { text, link, visibility } = body.into_inner();
    let ip = client_ip(&req, &state.guard.limits.trusted_proxies);
    state.guard.charge(Group::SocialPost, ip, Some(&principal.subject)).await?;
    let link = link.map(|l| (kind_name(l.kind).to_owned(), l.reference));
    let visibility = visibility.unwrap_or(VisibilityBody::Public).into();
    let post =
        state.actors.social.create_post(&principal.subject, PostInput { text, link, visibility }, request_id()).await?;
    Ok(HttpResponse::Created().json(PostBody::from(&post)))
}

fn kind_name(kind: LinkKindBody) -> &'static str {
    match kind {
        LinkKindBody::Ride => "ride",
        LinkKindBody::EsgMilestone => "esg_milestone",
    }
}

/// A post the caller sees (404 `post_not_found` otherwise).
#[utoipa::path(
    get,
    path = "/api/v1/social/posts/{id}",
    operation_id = "getPost",
    tag = "social",
    params(IdPath),
    responses((status = 200, description = "The post.", body = PostBody))
)]
pub async fn get(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let post = state.actors.social.post(&principal.subject, id).await?;
    Ok(HttpResponse::Ok().json(PostBody::from(&post)))
}

/// Edit the caller's post, within 15 minutes of making it (422 `edit_window_closed` after).
#[utoipa::path(
    put,
    path = "/api/v1/social/posts/{id}",
    operation_id = "editPost",
    tag = "social",
    params(IdPath),
    request_body(content = EditRequest, example = json!({"text": "Cycled to work today, 12 km."})),
    responses((status = 200, description = "Edited.", body = PostBody))
)]
pub async fn edit(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<EditRequest>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let post = state.actors.social.edit_post(&principal.subject, id, &body.into_inner().text, request_id()).await?;
    Ok(HttpResponse::Ok().json(PostBody::from(&post)))
}

/// What was deleted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Deleted)]
pub struct DeletedBody {
    /// The post's or comment's id.
    pub id: Uuid,
    /// Always `true`.
    pub deleted: bool,
}

/// Delete the caller's post, with its reactions and comments.
#[utoipa::path(
    delete,
    path = "/api/v1/social/posts/{id}",
    operation_id = "deletePost",
    tag = "social",
    params(IdPath),
    responses((status = 200, description = "Deleted.", body = DeletedBody))
)]
pub async fn delete(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    state.actors.social.delete_post(&principal.subject, id, request_id()).await?;
    Ok(HttpResponse::Ok().json(DeletedBody { id, deleted: true }))
}

/// A reaction.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReactionKind)]
pub enum ReactionBody {
    /// 👍
    Like,
    /// ❤️
    Love,
    /// 🎉
    Celebrate,
    /// 🌱
    Support,
}

impl From<ReactionBody> for Reaction {
    fn from(r: ReactionBody) -> Self {
        match r {
            ReactionBody::Like => Self::Like,
            ReactionBody::Love => Self::Love,
            ReactionBody::Celebrate => Self::Celebrate,
            ReactionBody::Support => Self::Support,
        }
    }
}

/// A reaction to give.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ReactionWrite)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    /// How.
    pub kind: ReactionBody,
}

/// React to a post the caller sees: one reaction per user (409 `already_reacted` for a second;
/// remove the first to change it).
#[utoipa::path(
    post,
    path = "/api/v1/social/posts/{id}/reactions",
    operation_id = "reactToPost",
    tag = "social",
    params(IdPath),
    request_body(content = ReactionRequest, example = json!({"kind": "celebrate"})),
    responses((status = 201, description = "Reacted: the post after.", body = PostBody))
)]
pub async fn react(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<ReactionRequest>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let kind = body.into_inner().kind.into();
    let post = state.actors.social.react(&principal.subject, id, kind, request_id()).await?;
    Ok(HttpResponse::Created().json(PostBody::from(&post)))
}

/// A reaction taken back.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReactionRemoved)]
pub struct UnreactedBody {
    /// The reaction removed; `null` when there was none.
    pub removed: Option<String>,
}

/// Take the caller's reaction to a post back.
#[utoipa::path(
    delete,
    path = "/api/v1/social/posts/{id}/reactions",
    operation_id = "removeReaction",
    tag = "social",
    params(IdPath),
    responses((status = 200, description = "No reaction of the caller's.", body = UnreactedBody))
)]
pub async fn unreact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let was = state.actors.social.unreact(&principal.subject, id, request_id()).await?;
    Ok(HttpResponse::Ok().json(UnreactedBody { removed: was.map(|r| r.as_str().to_owned()) }))
}

/// A comment to write.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = CommentWrite)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// 1 to 500 characters, as for a post.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069][^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
        example = "Well done!"
    )]
    pub text: String,
    /// The comment this one replies to: a comment on the same post that is not itself a reply
    /// (422 `thread_too_deep` for a reply to a reply).
    pub parent: Option<Uuid>,
}

/// A comment.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Comment)]
pub struct CommentBody {
    /// Its id.
    pub id: Uuid,
    /// The post.
    pub post: Uuid,
    /// The comment it replies to.
    pub parent: Option<Uuid>,
    /// Its author's profile.
    pub author: ProfileBody,
    /// The text; `null` once its author's personal data was erased.
    pub text: Option<String>,
    /// Made.
    pub created_at: DateTime<Utc>,
}

impl From<&CommentView> for CommentBody {
    fn from(c: &CommentView) -> Self {
        Self {
            id: c.id,
            post: c.post,
            parent: c.parent,
            author: ProfileBody::from(&c.author),
            text: c.text.value().cloned(),
            created_at: c.created_at,
        }
    }
}

/// Comment on a post the caller sees, or reply to one of its comments. Counted against the
/// `rate_limit.social_post` limit.
#[utoipa::path(
    post,
    path = "/api/v1/social/posts/{id}/comments",
    operation_id = "commentOnPost",
    tag = "social",
    params(IdPath),
    request_body(content = CommentRequest, example = json!({"text": "Well done!"})),
    responses((status = 201, description = "Written.", body = CommentBody))
)]
pub async fn comment(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<IdPath>,
    body: Json<CommentRequest>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let CommentRequest { text, parent } = body.into_inner();
    let ip = client_ip(&req, &state.guard.limits.trusted_proxies);
    state.guard.charge(Group::SocialPost, ip, Some(&principal.subject)).await?;
    let comment = state.actors.social.comment(&principal.subject, (id, parent), &text, request_id()).await?;
    Ok(HttpResponse::Created().json(CommentBody::from(&comment)))
}

/// A page of comments.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CommentPage)]
pub struct CommentPage {
    /// Oldest first.
    pub items: Vec<CommentBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The comments and replies on a post the caller sees, oldest first (without those of profiles
/// a block stands between with the caller).
#[utoipa::path(
    get,
    path = "/api/v1/social/posts/{id}/comments",
    operation_id = "listComments",
    tag = "social",
    params(IdPath, ListQuery),
    responses((status = 200, description = "A page of comments.", body = CommentPage))
)]
pub async fn list_comments(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    let ListQuery { limit, cursor } = query.into_inner();
    let post = id.to_string();
    let scope = ["social.comments", &principal.subject, &post];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let found = state.actors.social.comments(&principal.subject, id, page.after, page.fetch()).await?;
    let (found, next_cursor) = page.finish(found, |c| (c.created_at, c.id))?;
    Ok(HttpResponse::Ok().json(CommentPage { items: found.iter().map(CommentBody::from).collect(), next_cursor }))
}

/// Delete a comment (the caller's, or one on the caller's post), with its replies.
#[utoipa::path(
    delete,
    path = "/api/v1/social/comments/{id}",
    operation_id = "deleteComment",
    tag = "social",
    params(IdPath),
    responses((status = 200, description = "Deleted.", body = DeletedBody))
)]
pub async fn delete_comment(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<IdPath>,
) -> Result<HttpResponse, AppError> {
    let id = id_of(&path.into_inner().id)?;
    state.actors.social.delete_comment(&principal.subject, id, request_id()).await?;
    Ok(HttpResponse::Ok().json(DeletedBody { id, deleted: true }))
}

/// A page of posts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PostPage)]
pub struct PostPage {
    /// Newest first.
    pub items: Vec<PostBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

fn post_page(page: &Page, found: Vec<PostView>) -> Result<PostPage, AppError> {
    let (found, next_cursor) = page.finish(found, |p| (p.created_at, p.id))?;
    Ok(PostPage { items: found.iter().map(PostBody::from).collect(), next_cursor })
}

/// The posts of a profile the caller sees, newest first (403 `not_visible` when the profile
/// shares with its followers only).
#[utoipa::path(
    get,
    path = "/api/v1/social/profiles/{handle}/posts",
    operation_id = "listProfilePosts",
    tag = "social",
    params(HandlePath, ListQuery),
    responses((status = 200, description = "A page of posts.", body = PostPage))
)]
pub async fn profile_posts(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let ListQuery { limit, cursor } = query.into_inner();
    let handle = path.into_inner().handle;
    let scope = ["social.posts", &principal.subject, &handle];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let found = state.actors.social.profile_posts(&principal.subject, &handle, page.after, page.fetch()).await?;
    Ok(HttpResponse::Ok().json(post_page(&page, found)?))
}

/// The caller's home timeline, newest first: their own posts and those of the profiles they
/// follow, without the profiles they mute.
#[utoipa::path(
    get,
    path = "/api/v1/social/timeline",
    operation_id = "homeTimeline",
    tag = "social",
    params(ListQuery),
    responses((status = 200, description = "A page of posts.", body = PostPage))
)]
pub async fn home(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let ListQuery { limit, cursor } = query.into_inner();
    let scope = ["social.timeline", &principal.subject];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let found = state.actors.social.home(&principal.subject, page.after, page.fetch()).await?;
    Ok(HttpResponse::Ok().json(post_page(&page, found)?))
}

/// Why something is reported, or a post hidden.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ModerationReason)]
pub enum ReasonBody {
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

impl From<ReasonBody> for Reason {
    fn from(r: ReasonBody) -> Self {
        match r {
            ReasonBody::Spam => Reason::Spam,
            ReasonBody::Harassment => Reason::Harassment,
            ReasonBody::Hate => Reason::Hate,
            ReasonBody::Violence => Reason::Violence,
            ReasonBody::Sexual => Reason::Sexual,
            ReasonBody::Misinformation => Reason::Misinformation,
            ReasonBody::Other => Reason::Other,
        }
    }
}

impl From<Reason> for ReasonBody {
    fn from(r: Reason) -> Self {
        match r {
            Reason::Spam => ReasonBody::Spam,
            Reason::Harassment => ReasonBody::Harassment,
            Reason::Hate => ReasonBody::Hate,
            Reason::Violence => ReasonBody::Violence,
            Reason::Sexual => ReasonBody::Sexual,
            Reason::Misinformation => ReasonBody::Misinformation,
            Reason::Other => ReasonBody::Other,
        }
    }
}

/// When and why a post was hidden.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PostHidden)]
pub struct HiddenBody {
    /// Hidden since.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: ReasonBody,
}

impl From<&Hidden> for HiddenBody {
    fn from(h: &Hidden) -> Self {
        Self { at: h.at, reason: h.reason.into() }
    }
}
