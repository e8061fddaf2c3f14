//! Social: profiles and the graph between them (follows, follow requests, blocks, mutes). Pure:
//! handles and texts are checked here, and the graph's rules decide from a [`Relation`] that the
//! stores read under their locks.

pub mod activity;
pub mod events;
pub mod graph;
pub mod moderation;
pub mod post;
pub mod profile;
pub mod text;

pub use activity::{Activity, ActivityKind, Sharing};
pub use graph::{Change, FollowState, Relation};
pub use post::{Link, Reaction};
pub use profile::{Handle, ProfileDraft, Visibility};

/// Why a social operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocialError {
    /// Not 3 to 30 of `a-z`, `A-Z`, `0-9` and `_`.
    #[error("`{0}` is not a handle: 3 to 30 of a-z, A-Z, 0-9 and _")]
    InvalidHandle(String),
    /// Another profile has this handle, in some case.
    #[error("the handle `{0}` is taken")]
    HandleTaken(String),
    /// A text field is blank, too long, or holds a hidden character.
    #[error("{field} {problem}")]
    InvalidText {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The avatar's address is not an https URL.
    #[error("avatar_url is refused: {0}")]
    InvalidUrl(String),
    /// The caller has no profile yet.
    #[error("create your profile first (PUT /api/v1/social/me/profile)")]
    ProfileRequired,
    /// No profile has this handle (or the caller may not see it).
    #[error("no profile `{0}`")]
    ProfileNotFound(String),
    /// Following, blocking or muting oneself.
    #[error("this cannot be done to your own profile")]
    OwnProfile,
    /// A block stands between the caller and the profile.
    #[error("a block stands between you and this profile")]
    Blocked,
    /// The profile shares this with its followers only.
    #[error("this profile shares this with its followers only")]
    NotVisible,
    /// No request to follow the caller from this profile.
    #[error("no request from `{0}` to follow you")]
    RequestNotFound(String),
    /// No post (or comment) of this id, or the caller may not see it.
    #[error("no post or comment {0}")]
    PostNotFound(uuid::Uuid),
    /// The link names nothing a post can link to, or nothing of the caller's.
    #[error("the link is refused: {0}")]
    InvalidLink(String),
    /// The post is older than its edit window.
    #[error("a post can be edited for 15 minutes; this one's window closed at {closed_at}")]
    EditWindowClosed {
        /// When the window closed.
        closed_at: chrono::DateTime<chrono::Utc>,
    },
    /// The caller reacted to the post already.
    #[error("you reacted to this post already; remove your reaction first")]
    AlreadyReacted,
    /// A reply to a reply: comments are threaded one level deep.
    #[error("comments are threaded one level deep: reply to the comment this one answers")]
    ThreadTooDeep,
    /// Only the author may do this.
    #[error("only the author may do this")]
    NotAuthor,
    /// Reporting one's own profile or post.
    #[error("you cannot report your own profile or posts")]
    OwnContent,
    /// The caller's report of this post or profile is still open.
    #[error("you reported this already; your report {0} is still open")]
    AlreadyReported(uuid::Uuid),
    /// No report of this id.
    #[error("no report {0}")]
    ReportNotFound(uuid::Uuid),
    /// The report was resolved already.
    #[error("report {id} is {} already", status.as_str())]
    ReportClosed {
        /// The report.
        id: uuid::Uuid,
        /// How it was resolved.
        status: moderation::Status,
    },
}

impl crate::error::code::Coded for SocialError {
    fn code(&self) -> crate::error::code::ErrorCode {
        use crate::error::code::ErrorCode;
        match self {
            Self::InvalidHandle(_) => ErrorCode::InvalidHandle,
            Self::HandleTaken(_) => ErrorCode::HandleTaken,
            Self::InvalidText { .. } => ErrorCode::InvalidText,
            Self::InvalidUrl(_) => ErrorCode::InvalidUrl,
            Self::ProfileRequired => ErrorCode::ProfileRequired,
            Self::ProfileNotFound(_) => ErrorCode::ProfileNotFound,
            Self::OwnProfile => ErrorCode::OwnProfile,
            Self::Blocked => ErrorCode::Blocked,
            Self::NotVisible => ErrorCode::NotVisible,
            Self::RequestNotFound(_) => ErrorCode::FollowRequestNotFound,
            Self::PostNotFound(_) => ErrorCode::PostNotFound,
            Self::InvalidLink(_) => ErrorCode::InvalidLink,
            Self::EditWindowClosed { .. } => ErrorCode::EditWindowClosed,
            Self::AlreadyReacted => ErrorCode::AlreadyReacted,
            Self::ThreadTooDeep => ErrorCode::ThreadTooDeep,
            Self::NotAuthor => ErrorCode::NotOwner,
            Self::OwnContent => ErrorCode::OwnContent,
            Self::AlreadyReported(_) => ErrorCode::AlreadyReported,
            Self::ReportNotFound(_) => ErrorCode::ReportNotFound,
            Self::ReportClosed { .. } => ErrorCode::ReportClosed,
        }
    }

    /// The field at fault.
    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        let field = match self {
            Self::InvalidHandle(_) | Self::HandleTaken(_) => Some("handle"),
            Self::InvalidText { field, .. } => Some(*field),
            Self::InvalidUrl(_) => Some("avatar_url"),
            Self::InvalidLink(_) => Some("link"),
            _ => None,
        };
        let mut map: serde_json::Map<String, serde_json::Value> =
            field.map(|f| serde_json::Map::from_iter([("field".to_owned(), f.into())])).unwrap_or_default();
        match self {
            Self::EditWindowClosed { closed_at } => {
                map.insert("closed_at".into(), closed_at.to_rfc3339().into());
            }
            Self::AlreadyReported(report) => {
                map.insert("report".into(), report.to_string().into());
            }
            Self::ReportClosed { status, .. } => {
                map.insert("status".into(), status.as_str().into());
            }
            _ => {}
        }
        map
    }
}
