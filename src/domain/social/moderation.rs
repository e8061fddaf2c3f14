//! Moderation: users report a post or a profile for a reason; reports wait in an open queue
//! until an administrator resolves them (actioned or dismissed); administrators hide a post for
//! a reason, which closes the open reports of it as actioned, and unhide it. A hidden post is
//! seen by its author only (and in the moderation queue); it keeps its place in timelines and
//! comes back when unhidden.

use serde::Serialize;
use uuid::Uuid;

use super::SocialError;

/// Why something is reported, or why a post was hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
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

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 7] =
        [Self::Spam, Self::Harassment, Self::Hate, Self::Violence, Self::Sexual, Self::Misinformation, Self::Other];

    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Harassment => "harassment",
            Self::Hate => "hate",
            Self::Violence => "violence",
            Self::Sexual => "sexual",
            Self::Misinformation => "misinformation",
            Self::Other => "other",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting in the queue.
    Open,
    /// An administrator acted on it (a post hidden, or otherwise).
    Actioned,
    /// An administrator found nothing to act on.
    Dismissed,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 3] = [Self::Open, Self::Actioned, Self::Dismissed];

    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Actioned => "actioned",
            Self::Dismissed => "dismissed",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// How an administrator closes a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Acted on.
    Actioned,
    /// Nothing to act on.
    Dismissed,
}

impl Resolution {
    /// The status it leaves the report in.
    pub fn status(self) -> Status {
        match self {
            Self::Actioned => Status::Actioned,
            Self::Dismissed => Status::Dismissed,
        }
    }
}

/// A report of `target_author`'s profile or post by `reporter` may be made: not of one's own.
pub fn may_report(reporter: Uuid, target_author: Uuid) -> Result<(), SocialError> {
    if reporter == target_author {
        return Err(SocialError::OwnContent);
    }
    Ok(())
}

/// The status a report of `id` in `current` takes when resolved by `resolution`: only an open
/// report is resolved (409 `report_closed` otherwise, naming its status).
pub fn resolve(id: Uuid, current: Status, resolution: Resolution) -> Result<Status, SocialError> {
    match current {
        Status::Open => Ok(resolution.status()),
        closed => Err(SocialError::ReportClosed { id, status: closed }),
    }
}

/// Whether a viewer sees a post that was hidden (`hidden`), being its author (`own`) or not:
/// a hidden post is its author's alone.
pub fn sees_hidden(hidden: bool, own: bool) -> bool {
    !hidden || own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Reason::parse("Spam"), None);
        assert_eq!(Status::parse("closed"), None);
    }

    #[test]
    fn only_others_are_reported_and_only_open_reports_resolved() {
        let (me, you) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(may_report(me, you), Ok(()));
        assert_eq!(may_report(me, me), Err(SocialError::OwnContent));
        let id = Uuid::now_v7();
        assert_eq!(resolve(id, Status::Open, Resolution::Dismissed), Ok(Status::Dismissed));
        assert_eq!(resolve(id, Status::Open, Resolution::Actioned), Ok(Status::Actioned));
        for closed in [Status::Actioned, Status::Dismissed] {
            assert_eq!(
                resolve(id, closed, Resolution::Dismissed),
                Err(SocialError::ReportClosed { id, status: closed })
            );
        }
    }

    #[test]
    fn a_hidden_post_is_its_authors_alone() {
        assert!(sees_hidden(false, false));
        assert!(sees_hidden(true, true));
        assert!(!sees_hidden(true, false));
    }
}
