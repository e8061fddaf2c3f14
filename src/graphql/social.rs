//! Social over GraphQL: profiles, follows and follow requests, blocks and mutes, through the
//! same client, rules and error codes (`extensions.code`) as the REST API.

use actix_web::web;
use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::caller::Caller;
use crate::{
    actors::social::client::{EdgeView, ProfileInput, ProfileView},
    adapters::social::{Side, PAGE_MAX},
    domain::social::{Change, Relation, Sharing, Visibility},
    error::AppError,
    http::{guard::Group, state::AppState},
};

fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a web::Data<AppState>> {
    ctx.data::<web::Data<AppState>>()
}

fn request_id() -> Option<String> {
    crate::telemetry::current_request_id().map(|r| r.as_str().to_owned())
}

/// Who sees what a profile's owner shares.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "ProfileVisibility")]
pub enum VisibilityValue {
    /// Everyone signed in; anyone may follow at once.
    Public,
    /// Their followers; anyone may follow at once.
    Followers,
    /// Their followers; following is a request the owner answers.
    Private,
}

impl From<VisibilityValue> for Visibility {
    fn from(v: VisibilityValue) -> Self {
        match v {
            VisibilityValue::Public => Self::Public,
            VisibilityValue::Followers => Self::Followers,
            VisibilityValue::Private => Self::Private,
        }
    }
}

impl From<Visibility> for VisibilityValue {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Followers => Self::Followers,
            Visibility::Private => Self::Private,
        }
    }
}

/// The caller's profile as they write it.
#[derive(InputObject)]
#[graphql(name = "SocialProfileInput")]
pub struct SocialProfileInput {
    /// 3 to 30 of a-z, A-Z, 0-9 and _, unique whatever its case.
    pub handle: String,
    /// 1 to 50 characters, no control or bidirectional formatting character.
    pub display_name: String,
    /// Up to 300 characters.
    pub bio: Option<String>,
    /// An https URL.
    pub avatar_url: Option<String>,
    /// Who sees what the caller shares.
    pub visibility: VisibilityValue,
    /// Which of the caller's activities become posts, seen by their followers; nothing when
    /// absent.
    pub sharing: Option<ActivitySharingInput>,
}

/// Which of a user's activities become posts by them, once per activity.
#[derive(InputObject, SimpleObject, Clone, Copy, Default)]
#[graphql(name = "ActivitySharing", input_name = "ActivitySharingInput")]
pub struct ActivitySharingInput {
    /// Completed rides they took.
    #[graphql(default)]
    pub rides: bool,
    /// ESG milestones they reach.
    #[graphql(default)]
    pub milestones: bool,
}

/// What links the caller to a profile.
#[derive(SimpleObject)]
#[graphql(name = "SocialRelation")]
pub struct SocialRelation {
    /// `active`, `pending` or null.
    pub following: Option<String>,
    /// `active`, `pending` or null.
    pub followed_by: Option<String>,
    /// Whether the caller blocks it.
    pub blocking: bool,
    /// Whether the caller mutes it.
    pub muting: bool,
}

impl From<&Relation> for SocialRelation {
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
#[derive(SimpleObject)]
#[graphql(name = "SocialProfile")]
pub struct SocialProfile {
    /// Its id.
    pub id: ID,
    /// The handle; null once its owner's personal data was erased.
    pub handle: Option<String>,
    /// The display name; null once its owner's personal data was erased.
    pub display_name: Option<String>,
    /// The bio.
    pub bio: Option<String>,
    /// The avatar URL.
    pub avatar_url: Option<String>,
    /// Who sees what its owner shares.
    pub visibility: VisibilityValue,
    /// Active followers.
    pub followers: i64,
    /// Profiles it follows.
    pub following: i64,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last written by its owner.
    pub updated_at: DateTime<Utc>,
    /// Which of its owner's activities become posts: in the owner's own view only.
    pub sharing: Option<ActivitySharingInput>,
    /// What links the caller to it; null for the caller's own.
    pub relation: Option<SocialRelation>,
}

impl From<&ProfileView> for SocialProfile {
    fn from(p: &ProfileView) -> Self {
        let opened = |f: &Option<crate::domain::privacy::Personal<String>>| f.as_ref().and_then(|v| v.value().cloned());
        Self {
            id: ID(p.id.to_string()),
            handle: p.handle.value().cloned(),
            display_name: p.display_name.value().cloned(),
            bio: opened(&p.bio),
            avatar_url: opened(&p.avatar_url),
            visibility: p.visibility.into(),
            followers: i64::try_from(p.followers).unwrap_or(i64::MAX),
            following: i64::try_from(p.following).unwrap_or(i64::MAX),
            created_at: p.created_at,
            updated_at: p.updated_at,
            sharing: p.sharing.map(|s| ActivitySharingInput { rides: s.rides, milestones: s.milestones }),
            relation: p.relation.as_ref().map(SocialRelation::from),
        }
    }
}

/// A profile written.
#[derive(SimpleObject)]
#[graphql(name = "SocialProfileWritten")]
pub struct ProfileWritten {
    /// The profile.
    pub profile: SocialProfile,
    /// Whether it was made now.
    pub created: bool,
}

/// A profile at the other end of an edge.
#[derive(SimpleObject)]
#[graphql(name = "SocialEdge")]
pub struct SocialEdge {
    /// The profile.
    pub profile: SocialProfile,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A page of profiles.
#[derive(SimpleObject)]
#[graphql(name = "SocialEdgePage")]
pub struct SocialEdgePage {
    /// Latest first.
    pub items: Vec<SocialEdge>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Where the caller stands with a profile after following or unfollowing it.
#[derive(SimpleObject)]
#[graphql(name = "FollowResult")]
pub struct FollowResult {
    /// `active`, `pending`, or null (not following).
    pub following: Option<String>,
    /// Whether this operation changed it.
    pub changed: bool,
}

/// A block or a mute after the operation.
#[derive(SimpleObject)]
#[graphql(name = "SwitchResult")]
pub struct SwitchResult {
    /// Whether it is in place.
    pub on: bool,
    /// Whether this operation changed it.
    pub changed: bool,
}

/// A request to follow the caller, answered.
#[derive(SimpleObject)]
#[graphql(name = "FollowRequestAnswer")]
pub struct FollowRequestAnswer {
    /// The handle of the profile that asked.
    pub follower: String,
    /// Whether it follows the caller now.
    pub accepted: bool,
}

async fn list(
    ctx: &Context<'_>,
    field: &str,
    handle: Option<&str>,
    side: Side,
    (first, after): (Option<i32>, Option<String>),
) -> Result<SocialEdgePage> {
    let caller = Caller::of(ctx)?;
    caller.read(field, "social:read").await.map_err(|e| e.extend())?;
    let state = state(ctx)?;
    let scope = ["social.edges", side.name(), &caller.principal.subject, handle.unwrap_or("")];
    let page = state
        .cursors
        .page(&scope, first, ("first", 20, PAGE_MAX), after.as_deref(), "after")
        .map_err(|e| e.extend())?;
    let found: Vec<EdgeView> = state
        .actors
        .social
        .edges(&caller.principal.subject, handle, side, page.after, page.fetch())
        .await
        .map_err(|e| AppError::from(e).extend())?;
    let (found, next_cursor) = page.finish(found, |e| (e.since, e.profile.id)).map_err(|e| e.extend())?;
    let items = found.iter().map(|e| SocialEdge { profile: SocialProfile::from(&e.profile), since: e.since }).collect();
    Ok(SocialEdgePage { items, next_cursor })
}

/// Social's queries.
#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// The caller's profile (scope `social:read`).
    async fn my_profile(&self, ctx: &Context<'_>) -> Result<SocialProfile> {
        let caller = Caller::of(ctx)?;
        caller.read("myProfile", "social:read").await.map_err(|e| e.extend())?;
        let view = state(ctx)?
            .actors
            .social
            .my_profile(&caller.principal.subject)
            .await
            .map_err(|e| AppError::from(e).extend())?;
        Ok(SocialProfile::from(&view))
    }

    /// A profile by its handle, with what links the caller to it (scope `social:read`).
    async fn social_profile(&self, ctx: &Context<'_>, handle: String) -> Result<SocialProfile> {
        let caller = Caller::of(ctx)?;
        caller.read("socialProfile", "social:read").await.map_err(|e| e.extend())?;
        let view = state(ctx)?
            .actors
            .social
            .profile(&caller.principal.subject, &handle)
            .await
            .map_err(|e| AppError::from(e).extend())?;
        Ok(SocialProfile::from(&view))
    }

    /// Who follows the profile of `handle`, latest first (scope `social:read`).
    async fn followers(
        &self,
        ctx: &Context<'_>,
        handle: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SocialEdgePage> {
        list(ctx, "followers", Some(&handle), Side::Followers, (first, after)).await
    }

    /// Whom the profile of `handle` follows, latest first (scope `social:read`).
    async fn following(
        &self,
        ctx: &Context<'_>,
        handle: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SocialEdgePage> {
        list(ctx, "following", Some(&handle), Side::Following, (first, after)).await
    }

    /// The requests to follow the caller that wait (scope `social:read`).
    async fn follow_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SocialEdgePage> {
        list(ctx, "followRequests", None, Side::Requests, (first, after)).await
    }

    /// The profiles the caller blocks (scope `social:read`).
    async fn blocked_profiles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SocialEdgePage> {
        list(ctx, "blockedProfiles", None, Side::Blocked, (first, after)).await
    }

    /// The profiles the caller mutes (scope `social:read`).
    async fn muted_profiles(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<SocialEdgePage> {
        list(ctx, "mutedProfiles", None, Side::Muted, (first, after)).await
    }
}

/// Social's mutations.
#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Make or rewrite the caller's profile (scope `social:write`).
    async fn put_my_profile(&self, ctx: &Context<'_>, input: SocialProfileInput) -> Result<ProfileWritten> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            let SocialProfileInput { handle, display_name, bio, avatar_url, visibility, sharing } = input;
            let sharing = sharing.unwrap_or_default();
            let sharing = Sharing { rides: sharing.rides, milestones: sharing.milestones };
            let input = ProfileInput { handle, display_name, bio, avatar_url, visibility: visibility.into(), sharing };
            Ok::<_, AppError>(state.actors.social.put_profile(&caller.principal.subject, input, request_id()).await?)
        };
        let resource = "/api/v1/social/me/profile".to_owned();
        let (view, created) =
            caller.write("putMyProfile", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(ProfileWritten { profile: SocialProfile::from(&view), created })
    }

    /// Follow the profile of `handle`, or ask to when it is private (scope `social:write`;
    /// counted against `rate_limit.social_follow`).
    async fn follow(&self, ctx: &Context<'_>, handle: String) -> Result<FollowResult> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            caller.charge(Group::SocialFollow).await?;
            Ok::<_, AppError>(state.actors.social.follow(&caller.principal.subject, &handle, request_id()).await?)
        };
        let resource = format!("/api/v1/social/profiles/{handle}/follow");
        let change =
            caller.write("follow", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(FollowResult {
            following: Some(change.state().as_str().to_owned()),
            changed: matches!(change, Change::New(_)),
        })
    }

    /// Stop following the profile of `handle`, or withdraw a request (scope `social:write`).
    async fn unfollow(&self, ctx: &Context<'_>, handle: String) -> Result<FollowResult> {
        let caller = Caller::of(ctx)?;
        let state = state(ctx)?;
        let run = async {
            Ok::<_, AppError>(state.actors.social.unfollow(&caller.principal.subject, &handle, request_id()).await?)
        };
        let resource = format!("/api/v1/social/profiles/{handle}/follow");
        let ended =
            caller.write("unfollow", resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
        Ok(FollowResult { following: None, changed: ended.is_some() })
    }

    /// Block the profile of `handle` (scope `social:write`).
    async fn block(&self, ctx: &Context<'_>, handle: String) -> Result<SwitchResult> {
        switch(ctx, "block", handle, (true, true)).await
    }

    /// Lift a block (scope `social:write`).
    async fn unblock(&self, ctx: &Context<'_>, handle: String) -> Result<SwitchResult> {
        switch(ctx, "unblock", handle, (true, false)).await
    }

    /// Mute the profile of `handle` (scope `social:write`).
    async fn mute(&self, ctx: &Context<'_>, handle: String) -> Result<SwitchResult> {
        switch(ctx, "mute", handle, (false, true)).await
    }

    /// Unmute the profile of `handle` (scope `social:write`).
    async fn unmute(&self, ctx: &Context<'_>, handle: String) -> Result<SwitchResult> {
        switch(ctx, "unmute", handle, (false, false)).await
    }

    /// Accept the request of the profile of `handle` to follow the caller (scope `social:write`).
    async fn accept_follow_request(&self, ctx: &Context<'_>, handle: String) -> Result<FollowRequestAnswer> {
        answer(ctx, "acceptFollowRequest", handle, true).await
    }

    /// Decline the request of the profile of `handle` to follow the caller (scope
    /// `social:write`).
    async fn decline_follow_request(&self, ctx: &Context<'_>, handle: String) -> Result<FollowRequestAnswer> {
        answer(ctx, "declineFollowRequest", handle, false).await
    }
}

async fn switch(ctx: &Context<'_>, field: &str, handle: String, (block, on): (bool, bool)) -> Result<SwitchResult> {
    let caller = Caller::of(ctx)?;
    let social = &state(ctx)?.actors.social;
    let subject = &caller.principal.subject;
    let run = async {
        Ok::<_, AppError>(if block {
            social.block(subject, &handle, on, request_id()).await?
        } else {
            social.mute(subject, &handle, on).await?
        })
    };
    let what = if block { "block" } else { "mute" };
    let resource = format!("/api/v1/social/profiles/{handle}/{what}");
    let changed = caller.write(field, resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
    Ok(SwitchResult { on, changed })
}

async fn answer(ctx: &Context<'_>, field: &str, handle: String, accept: bool) -> Result<FollowRequestAnswer> {
    let caller = Caller::of(ctx)?;
    let social = &state(ctx)?.actors.social;
    let run = async {
        Ok::<_, AppError>(social.answer_request(&caller.principal.subject, &handle, accept, request_id()).await?)
    };
    let what = if accept { "accept" } else { "decline" };
    let resource = format!("/api/v1/social/me/follow-requests/{handle}/{what}");
    caller.write(field, resource, "social:write", 200, |_| None, run).await.map_err(|e| e.extend())?;
    Ok(FollowRequestAnswer { follower: handle, accepted: accept })
}
