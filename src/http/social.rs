//! `/api/v1/social`: the caller's profile, others' profiles by handle, and the graph between them
//! (follows and follow requests, blocks, mutes). Handlers parse input and call the
//! [`SocialClient`]; the domain's rules answer refusals with their codes.
//!
//! [`SocialClient`]: crate::actors::social::SocialClient

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    guard::{client_ip, Group},
    json::Json,
    state::AppState,
};
use crate::{
    actors::social::client::{EdgeView, ProfileInput, ProfileView},
    adapters::social::{Side, PAGE_MAX},
    auth::Principal,
    domain::{
        privacy::Personal,
        social::{Change, FollowState, Relation, Sharing, Visibility},
    },
    error::{AppError, ErrorCode},
};

/// What each operation here can refuse besides what every operation can (see
/// [`super::openapi`]).
pub const REFUSALS: &[(&str, &[ErrorCode])] = {
    use ErrorCode::*;
    const TARGET: &[ErrorCode] = &[InvalidHandle, ProfileRequired, ProfileNotFound, PrivacyUnavailable];
    const LIST: &[ErrorCode] =
        &[InvalidHandle, ProfileNotFound, NotVisible, PageTooLarge, InvalidCursor, PageBeyondEnd, PrivacyUnavailable];
    const MINE: &[ErrorCode] = &[ProfileRequired, PageTooLarge, InvalidCursor, PageBeyondEnd, PrivacyUnavailable];
    &[
        ("putMyProfile", &[InvalidHandle, InvalidText, InvalidUrl, HandleTaken, PrivacyUnavailable]),
        ("getMyProfile", &[ProfileRequired, PrivacyUnavailable]),
        ("getProfile", &[InvalidHandle, ProfileNotFound, PrivacyUnavailable]),
        ("followProfile", &[InvalidHandle, ProfileRequired, ProfileNotFound, OwnProfile, Blocked, PrivacyUnavailable]),
        ("unfollowProfile", TARGET),
        ("blockProfile", &[InvalidHandle, ProfileRequired, ProfileNotFound, OwnProfile, PrivacyUnavailable]),
        ("unblockProfile", &[InvalidHandle, ProfileRequired, ProfileNotFound, OwnProfile, PrivacyUnavailable]),
        ("muteProfile", &[InvalidHandle, ProfileRequired, ProfileNotFound, OwnProfile, PrivacyUnavailable]),
        ("unmuteProfile", &[InvalidHandle, ProfileRequired, ProfileNotFound, OwnProfile, PrivacyUnavailable]),
        ("listFollowers", LIST),
        ("listFollowing", LIST),
        ("listFollowRequests", MINE),
        ("listBlocked", MINE),
        ("listMuted", MINE),
        ("acceptFollowRequest", &[InvalidHandle, ProfileRequired, ProfileNotFound, FollowRequestNotFound]),
        ("declineFollowRequest", &[InvalidHandle, ProfileRequired, ProfileNotFound, FollowRequestNotFound]),
    ]
};

/// Mount the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/social/me/profile").route(web::get().to(get_mine)).route(web::put().to(put_mine)))
        .service(web::resource("/social/me/follow-requests").route(web::get().to(list_requests)))
        .service(web::resource("/social/me/follow-requests/{handle}/accept").route(web::post().to(accept_request)))
        .service(web::resource("/social/me/follow-requests/{handle}/decline").route(web::post().to(decline_request)))
        .service(web::resource("/social/me/blocks").route(web::get().to(list_blocked)))
        .service(web::resource("/social/me/mutes").route(web::get().to(list_muted)))
        .service(web::resource("/social/profiles/{handle}").route(web::get().to(get_profile)))
        .service(
            web::resource("/social/profiles/{handle}/follow")
                .route(web::put().to(follow))
                .route(web::delete().to(unfollow)),
        )
        .service(
            web::resource("/social/profiles/{handle}/block")
                .route(web::put().to(block))
                .route(web::delete().to(unblock)),
        )
        .service(
            web::resource("/social/profiles/{handle}/mute").route(web::put().to(mute)).route(web::delete().to(unmute)),
        )
        .service(web::resource("/social/profiles/{handle}/followers").route(web::get().to(list_followers)))
        .service(web::resource("/social/profiles/{handle}/following").route(web::get().to(list_following)));
}

fn request_id() -> Option<String> {
    crate::telemetry::current_request_id().map(|r| r.as_str().to_owned())
}

/// Who sees what a profile's owner shares.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProfileVisibility)]
pub enum VisibilityBody {
    /// Everyone signed in; anyone may follow at once.
    Public,
    /// Their followers; anyone may follow at once.
    Followers,
    /// Their followers; following is a request the owner accepts or declines.
    Private,
}

impl From<VisibilityBody> for Visibility {
    fn from(v: VisibilityBody) -> Self {
        match v {
            VisibilityBody::Public => Self::Public,
            VisibilityBody::Followers => Self::Followers,
            VisibilityBody::Private => Self::Private,
        }
    }
}

impl From<Visibility> for VisibilityBody {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Followers => Self::Followers,
            Visibility::Private => Self::Private,
        }
    }
}

/// The caller's profile as they write it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ProfileWrite)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// 3 to 30 of `a-z`, `A-Z`, `0-9` and `_`, unique whatever its case (otherwise 400
    /// `invalid_handle`, or 409 `handle_taken`).
    #[schema(min_length = 3, max_length = 30, pattern = "^[A-Za-z0-9_]{3,30}$", example = "ada_l")]
    pub handle: String,
    /// 1 to 50 characters, not all blank, no control or bidirectional formatting character
    /// (otherwise 400 `invalid_text`).
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\s\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069][^\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
        example = "Ada L."
    )]
    pub display_name: String,
    /// Up to 300 characters; line feeds allowed, no other control character and no
    /// bidirectional formatting character.
    #[schema(
        max_length = 300,
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$",
        example = "Cycling to work since 2019."
    )]
    pub bio: Option<String>,
    /// An `https` URL of at most 2048 bytes, with a host and no credentials (otherwise 400
    /// `invalid_url`); empty or `null` for none.
    #[schema(
        max_length = 2048,
        pattern = r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!#-~]*)?)?$",
        example = "https://images.example/ada.png"
    )]
    pub avatar_url: Option<String>,
    /// Who sees what the caller shares (their followers and following).
    pub visibility: VisibilityBody,
    /// Which of the caller's activities become posts, seen by their followers; nothing when
    /// absent.
    #[serde(default)]
    pub sharing: Option<SharingBody>,
}

/// Which of a user's activities the service makes into posts by them, once per activity, seen
/// by their followers: rides they took when completed, ESG milestones they reach.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = ActivitySharing)]
#[serde(deny_unknown_fields)]
pub struct SharingBody {
    /// Completed rides they took.
    #[serde(default)]
    pub rides: bool,
    /// ESG milestones they reach.
    #[serde(default)]
    pub milestones: bool,
}

impl From<SharingBody> for Sharing {
    fn from(s: SharingBody) -> Self {
        Self { rides: s.rides, milestones: s.milestones }
    }
}

impl From<Sharing> for SharingBody {
    fn from(s: Sharing) -> Self {
        Self { rides: s.rides, milestones: s.milestones }
    }
}

/// What links the caller to a profile.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProfileRelation)]
pub struct RelationBody {
    /// `active` when the caller follows it, `pending` while their request waits, `null` otherwise.
    pub following: Option<String>,
    /// `active` when it follows the caller, `pending` while its request waits, `null` otherwise.
    pub followed_by: Option<String>,
    /// Whether the caller blocks it.
    pub blocking: bool,
    /// Whether the caller mutes it.
    pub muting: bool,
}

impl From<&Relation> for RelationBody {
    fn from(r: &Relation) -> Self {
        Self {
            following: r.following.map(|s| s.as_str().to_owned()),
            followed_by: r.followed_by.map(|s| s.as_str().to_owned()),
            blocking: r.blocking,
            muting: r.muting,
        }
    }
}

/// A profile.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Profile)]
pub struct ProfileBody {
    /// Its id.
    pub id: Uuid,
    /// The handle, as its owner wrote it; `null` once its owner's personal data was erased.
    pub handle: Option<String>,
    /// The display name; `null` once its owner's personal data was erased.
    pub display_name: Option<String>,
    /// The bio, or `null`.
    pub bio: Option<String>,
    /// The avatar URL, or `null`.
    pub avatar_url: Option<String>,
    /// Who sees what its owner shares.
    pub visibility: VisibilityBody,
    /// Active followers.
    pub followers: u64,
    /// Profiles it follows.
    pub following: u64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last written by its owner.
    pub updated_at: DateTime<Utc>,
    /// Which of its owner's activities become posts: in the owner's own view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing: Option<SharingBody>,
    /// What links the caller to it; `null` for the caller's own.
    pub relation: Option<RelationBody>,
}

fn opened(p: &Option<Personal<String>>) -> Option<String> {
    p.as_ref().and_then(|v| v.value().cloned())
}

impl From<&ProfileView> for ProfileBody {
    fn from(p: &ProfileView) -> Self {
        Self {
            id: p.id,
            handle: p.handle.value().cloned(),
            display_name: p.display_name.value().cloned(),
            bio: opened(&p.bio),
            avatar_url: opened(&p.avatar_url),
            visibility: p.visibility.into(),
            followers: p.followers,
            following: p.following,
            created_at: p.created_at,
            updated_at: p.updated_at,
            sharing: p.sharing.map(SharingBody::from),
            relation: p.relation.as_ref().map(RelationBody::from),
        }
    }
}

/// Make or rewrite the caller's profile. Making a private profile public or followers-only
/// accepts the requests waiting on it.
#[utoipa::path(
    put,
    path = "/api/v1/social/me/profile",
    operation_id = "putMyProfile",
    tag = "social",
    request_body(content = ProfileRequest, example = json!({"handle": "ada_l", "display_name": "Ada L.", "bio": "Cycling to work since 2019.", "visibility": "public"})),
    responses(
        (status = 201, description = "Made.", body = ProfileBody),
        (status = 200, description = "Rewritten.", body = ProfileBody)
    )
)]
pub async fn put_mine(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<ProfileRequest>,
) -> Result<HttpResponse, AppError> {
    let ProfileRequest { handle, display_name, bio, avatar_url, visibility, sharing } = body.into_inner();
    let sharing = sharing.unwrap_or_default().into();
    let input = ProfileInput { handle, display_name, bio, avatar_url, visibility: visibility.into(), sharing };
    let (view, created) = state.actors.social.put_profile(&principal.subject, input, request_id()).await?;
    let body = ProfileBody::from(&view);
    Ok(if created { HttpResponse::Created().json(body) } else { HttpResponse::Ok().json(body) })
}

/// The caller's profile (409 `profile_required` before they make one).
#[utoipa::path(
    get,
    path = "/api/v1/social/me/profile",
    operation_id = "getMyProfile",
    tag = "social",
    responses((status = 200, description = "The profile.", body = ProfileBody))
)]
pub async fn get_mine(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, AppError> {
    let view = state.actors.social.my_profile(&principal.subject).await?;
    Ok(HttpResponse::Ok().json(ProfileBody::from(&view)))
}

/// A profile's handle in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HandlePath {
    /// The handle, in any case (another form is 400 `invalid_handle`).
    #[param(min_length = 3, max_length = 30, pattern = "^[A-Za-z0-9_]{3,30}$", example = "ada_l")]
    pub handle: String,
}

/// A profile by its handle, with what links the caller to it. A profile that blocks the caller,
/// or that the caller blocks, is not found.
#[utoipa::path(
    get,
    path = "/api/v1/social/profiles/{handle}",
    operation_id = "getProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "The profile.", body = ProfileBody))
)]
pub async fn get_profile(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    let view = state.actors.social.profile(&principal.subject, &path.into_inner().handle).await?;
    Ok(HttpResponse::Ok().json(ProfileBody::from(&view)))
}

/// Where the caller stands with a profile after following or unfollowing it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FollowResult)]
pub struct FollowBody {
    /// `active`, `pending` (a request to a private profile), or `null` (not following).
    pub following: Option<String>,
    /// Whether this request changed it.
    pub changed: bool,
}

/// Follow a profile: at once, or as a request when it is private. Following it again changes
/// nothing. Counted against the `rate_limit.social_follow` limit.
#[utoipa::path(
    put,
    path = "/api/v1/social/profiles/{handle}/follow",
    operation_id = "followProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Following, or asked to.", body = FollowBody))
)]
pub async fn follow(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req, &state.guard.limits.trusted_proxies);
    state.guard.charge(Group::SocialFollow, ip, Some(&principal.subject)).await?;
    let change = state.actors.social.follow(&principal.subject, &path.into_inner().handle, request_id()).await?;
    let following = Some(change.state().as_str().to_owned());
    Ok(HttpResponse::Ok().json(FollowBody { following, changed: matches!(change, Change::New(_)) }))
}

/// Stop following a profile, or withdraw a request to.
#[utoipa::path(
    delete,
    path = "/api/v1/social/profiles/{handle}/follow",
    operation_id = "unfollowProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Not following.", body = FollowBody))
)]
pub async fn unfollow(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    let ended: Option<FollowState> =
        state.actors.social.unfollow(&principal.subject, &path.into_inner().handle, request_id()).await?;
    Ok(HttpResponse::Ok().json(FollowBody { following: None, changed: ended.is_some() }))
}

/// A block or a mute, after the request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SwitchResult)]
pub struct SwitchBody {
    /// Whether the block (or mute) is in place.
    pub on: bool,
    /// Whether this request changed it.
    pub changed: bool,
}

async fn switch(
    state: &AppState,
    principal: &Principal,
    handle: &str,
    (block, on): (bool, bool),
) -> Result<HttpResponse, AppError> {
    let social = &state.actors.social;
    let changed = if block {
        social.block(&principal.subject, handle, on, request_id()).await?
    } else {
        social.mute(&principal.subject, handle, on).await?
    };
    Ok(HttpResponse::Ok().json(SwitchBody { on, changed }))
}

/// Block a profile: the follows and requests between the two end, neither sees the other, and
/// neither can follow the other.
#[utoipa::path(
    put,
    path = "/api/v1/social/profiles/{handle}/block",
    operation_id = "blockProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Blocked.", body = SwitchBody))
)]
pub async fn block(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    switch(&state, &principal, &path.into_inner().handle, (true, true)).await
}

/// Lift a block.
#[utoipa::path(
    delete,
    path = "/api/v1/social/profiles/{handle}/block",
    operation_id = "unblockProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Not blocked.", body = SwitchBody))
)]
pub async fn unblock(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    switch(&state, &principal, &path.into_inner().handle, (true, false)).await
}

/// Mute a profile (private to the caller: the profile is not told).
#[utoipa::path(
    put,
    path = "/api/v1/social/profiles/{handle}/mute",
    operation_id = "muteProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Muted.", body = SwitchBody))
)]
pub async fn mute(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    switch(&state, &principal, &path.into_inner().handle, (false, true)).await
}

/// Unmute a profile.
#[utoipa::path(
    delete,
    path = "/api/v1/social/profiles/{handle}/mute",
    operation_id = "unmuteProfile",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Not muted.", body = SwitchBody))
)]
pub async fn unmute(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    switch(&state, &principal, &path.into_inner().handle, (false, false)).await
}

/// Query of a listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$"
    )]
    pub cursor: Option<String>,
}

/// A profile at the other end of an edge.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProfileEdge)]
pub struct EdgeBody {
    /// The profile.
    pub profile: ProfileBody,
    /// Since when (following, asked, blocked or muted).
    pub since: DateTime<Utc>,
}

/// A page of profiles.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ProfileEdgePage)]
pub struct EdgePage {
    /// Latest first.
    pub items: Vec<EdgeBody>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

async fn list(
    state: &AppState,
    principal: &Principal,
    handle: Option<&str>,
    side: Side,
    query: ListQuery,
) -> Result<HttpResponse, AppError> {
    let ListQuery { limit, cursor } = query;
    let scope = ["social.edges", side.name(), &principal.subject, handle.unwrap_or("")];
    let page = state.cursors.page(&scope, limit, ("limit", 20, PAGE_MAX), cursor.as_deref(), "cursor")?;
    let found: Vec<EdgeView> =
        state.actors.social.edges(&principal.subject, handle, side, page.after, page.fetch()).await?;
    let (found, next_cursor) = page.finish(found, |e| (e.since, e.profile.id))?;
    let items = found.iter().map(|e| EdgeBody { profile: ProfileBody::from(&e.profile), since: e.since }).collect();
    Ok(HttpResponse::Ok().json(EdgePage { items, next_cursor }))
}

/// Who follows a profile, latest first: shown to everyone for a public profile, otherwise to its
/// owner and followers (403 `not_visible`).
#[utoipa::path(
    get,
    path = "/api/v1/social/profiles/{handle}/followers",
    operation_id = "listFollowers",
    tag = "social",
    params(HandlePath, ListQuery),
    responses((status = 200, description = "A page of followers.", body = EdgePage))
)]
pub async fn list_followers(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    list(&state, &principal, Some(&path.into_inner().handle), Side::Followers, query.into_inner()).await
}

/// Whom a profile follows, latest first: shown as its followers are.
#[utoipa::path(
    get,
    path = "/api/v1/social/profiles/{handle}/following",
    operation_id = "listFollowing",
    tag = "social",
    params(HandlePath, ListQuery),
    responses((status = 200, description = "A page of profiles followed.", body = EdgePage))
)]
pub async fn list_following(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    list(&state, &principal, Some(&path.into_inner().handle), Side::Following, query.into_inner()).await
}

/// The requests to follow the caller that wait for their answer, latest first.
#[utoipa::path(
    get,
    path = "/api/v1/social/me/follow-requests",
    operation_id = "listFollowRequests",
    tag = "social",
    params(ListQuery),
    responses((status = 200, description = "A page of requests.", body = EdgePage))
)]
pub async fn list_requests(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    list(&state, &principal, None, Side::Requests, query.into_inner()).await
}

/// The profiles the caller blocks, latest first.
#[utoipa::path(
    get,
    path = "/api/v1/social/me/blocks",
    operation_id = "listBlocked",
    tag = "social",
    params(ListQuery),
    responses((status = 200, description = "A page of blocked profiles.", body = EdgePage))
)]
pub async fn list_blocked(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    list(&state, &principal, None, Side::Blocked, query.into_inner()).await
}

/// The profiles the caller mutes, latest first.
#[utoipa::path(
    get,
    path = "/api/v1/social/me/mutes",
    operation_id = "listMuted",
    tag = "social",
    params(ListQuery),
    responses((status = 200, description = "A page of muted profiles.", body = EdgePage))
)]
pub async fn list_muted(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    list(&state, &principal, None, Side::Muted, query.into_inner()).await
}

/// A request answered.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FollowRequestAnswer)]
pub struct AnsweredBody {
    /// The handle of the profile that asked.
    pub follower: String,
    /// Whether it follows the caller now.
    pub accepted: bool,
}

async fn answer(
    state: &AppState,
    principal: &Principal,
    handle: String,
    accept: bool,
) -> Result<HttpResponse, AppError> {
    state.actors.social.answer_request(&principal.subject, &handle, accept, request_id()).await?;
    Ok(HttpResponse::Ok().json(AnsweredBody { follower: handle, accepted: accept }))
}

/// Accept a request to follow the caller.
#[utoipa::path(
    post,
    path = "/api/v1/social/me/follow-requests/{handle}/accept",
    operation_id = "acceptFollowRequest",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "It follows the caller now.", body = AnsweredBody))
)]
pub async fn accept_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    answer(&state, &principal, path.into_inner().handle, true).await
}

/// Decline a request to follow the caller.
#[utoipa::path(
    post,
    path = "/api/v1/social/me/follow-requests/{handle}/decline",
    operation_id = "declineFollowRequest",
    tag = "social",
    params(HandlePath),
    responses((status = 200, description = "Declined.", body = AnsweredBody))
)]
pub async fn decline_request(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<HandlePath>,
) -> Result<HttpResponse, AppError> {
    answer(&state, &principal, path.into_inner().handle, false).await
}
