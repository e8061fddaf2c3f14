//! Posts: text of up to 500 characters, an optional link to a ride or an ESG milestone, and a
//! visibility; edited within 15 minutes of being made; reactions, one per user from a small set;
//! comments, threaded one level deep. Who sees a post is decided here.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{graph, text, FollowState, Relation, SocialError, Visibility};

/// Most characters of a post or a comment.
pub const TEXT_MAX: usize = 500;

/// How long after it was made a post may be edited.
pub const EDIT_WINDOW: Duration = Duration::minutes(15);

/// What a post links to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "snake_case")]
pub enum Link {
    /// A ride its author took or drove.
    Ride(Uuid),
    /// An ESG milestone its author reached, such as `avoided_10_kg`.
    EsgMilestone(String),
}

impl Link {
    /// The kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ride(_) => "ride",
            Self::EsgMilestone(_) => "esg_milestone",
        }
    }

    /// What it names, as stored.
    pub fn reference(&self) -> String {
        match self {
            Self::Ride(id) => id.to_string(),
            Self::EsgMilestone(name) => name.clone(),
        }
    }

    /// From its stored parts, or as a caller wrote it: a ride's id, or a milestone's name
    /// (`avoided_<kg>_kg` for one of ESG's milestones).
    pub fn parse(kind: &str, reference: &str) -> Result<Self, SocialError> {
        let invalid =
            || SocialError::InvalidLink(format!("{kind}: {}", reference.chars().take(64).collect::<String>()));
        match kind {
            "ride" => Uuid::parse_str(reference).map(Self::Ride).map_err(|_| invalid()),
            "esg_milestone" => {
                Self::milestone_kg(reference).ok_or_else(invalid)?;
                Ok(Self::EsgMilestone(reference.to_owned()))
            }
            _ => Err(invalid()),
        }
    }

    /// The kilograms avoided of a milestone's name, when it names one of ESG's milestones.
    pub fn milestone_kg(name: &str) -> Option<u64> {
        let kg: u64 = name.strip_prefix("avoided_")?.strip_suffix("_kg")?.parse().ok()?;
        crate::domain::esg::MILESTONES_KG.contains(&kg).then_some(kg)
    }
}

/// A post's or a comment's text, checked: 1 to 500 characters, line feeds allowed, no other
/// control character and no bidirectional formatting character.
pub fn check_text(field: &'static str, body: &str) -> Result<(), SocialError> {
    text::check(body, TEXT_MAX, false, true).map_err(|p| SocialError::InvalidText { field, problem: p.to_string() })
}

/// The reactions a post can get: one per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    /// 👍
    Like,
    /// ❤️
    Love,
    /// 🎉
    Celebrate,
    /// 🌱
    Support,
}

impl Reaction {
    /// Every reaction.
    pub const ALL: [Reaction; 4] = [Self::Like, Self::Love, Self::Celebrate, Self::Support];

    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "like",
            Self::Love => "love",
            Self::Celebrate => "celebrate",
            Self::Support => "support",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Whether a viewer related to a post's author by `relation` sees a post of `visibility` by an
/// author whose profile has `profile`: the author always; nobody across a block; otherwise the
/// profile must share with them (public, or an active follower) and so must the post (public;
/// followers: an active follower; private: the author only).
pub fn sees_post(profile: Visibility, post: Visibility, relation: &Relation) -> bool {
    if relation.own {
        return true;
    }
    if !graph::sees_shared(profile, relation) {
        return false;
    }
    match post {
        Visibility::Public => true,
        Visibility::Followers => relation.following == Some(FollowState::Active),
        Visibility::Private => false,
    }
}

/// An edit of a post made at `created` is allowed at `now`: within [`EDIT_WINDOW`].
pub fn may_edit(created: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), SocialError> {
    if now - created <= EDIT_WINDOW {
        Ok(())
    } else {
        Err(SocialError::EditWindowClosed { closed_at: created + EDIT_WINDOW })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_a_ride_or_one_of_esgs_milestones() {
        let ride = Uuid::now_v7();
        assert_eq!(Link::parse("ride", &ride.to_string()), Ok(Link::Ride(ride)));
        assert_eq!(Link::parse("esg_milestone", "avoided_10_kg"), Ok(Link::EsgMilestone("avoided_10_kg".into())));
        for (kind, reference) in
            [("ride", "r-1"), ("esg_milestone", "avoided_11_kg"), ("esg_milestone", "x"), ("song", "1")]
        {
            assert!(matches!(Link::parse(kind, reference), Err(SocialError::InvalidLink(_))), "{kind} {reference}");
        }
        assert_eq!(Link::milestone_kg("avoided_1000_kg"), Some(1000));
    }

    #[test]
    fn text_is_counted_in_characters_and_edits_close_after_fifteen_minutes() {
        assert!(check_text("text", &"é".repeat(500)).is_ok());
        assert!(matches!(check_text("text", &"é".repeat(501)), Err(SocialError::InvalidText { field: "text", .. })));
        assert!(matches!(check_text("text", " \n "), Err(SocialError::InvalidText { .. })));
        assert!(matches!(check_text("text", "a\u{2066}b"), Err(SocialError::InvalidText { .. })));
        let made = Utc::now();
        assert!(may_edit(made, made + Duration::minutes(15)).is_ok());
        assert!(matches!(
            may_edit(made, made + Duration::minutes(15) + Duration::seconds(1)),
            Err(SocialError::EditWindowClosed { .. })
        ));
    }

    /// Every kind of viewer against every post visibility, on profiles of every visibility.
    #[test]
    fn who_sees_a_post() {
        let rel = |f: fn(&mut Relation)| {
            let mut r = Relation::default();
            f(&mut r);
            r
        };
        let viewers: [(&str, Relation); 6] = [
            ("author", rel(|r| r.own = true)),
            ("stranger", Relation::default()),
            ("follower", rel(|r| r.following = Some(FollowState::Active))),
            ("requester", rel(|r| r.following = Some(FollowState::Pending))),
            (
                "blocked by the author",
                rel(|r| {
                    r.following = Some(FollowState::Active);
                    r.blocked_by = true;
                }),
            ),
            (
                "blocking the author",
                rel(|r| {
                    r.following = Some(FollowState::Active);
                    r.blocking = true;
                }),
            ),
        ];
        use Visibility::{Followers, Private, Public};
        // (profile, post) → who sees it, in the order of `viewers`.
        let table: [((Visibility, Visibility), [bool; 6]); 9] = [
            ((Public, Public), [true, true, true, true, false, false]),
            ((Public, Followers), [true, false, true, false, false, false]),
            ((Public, Private), [true, false, false, false, false, false]),
            ((Followers, Public), [true, false, true, false, false, false]),
            ((Followers, Followers), [true, false, true, false, false, false]),
            ((Followers, Private), [true, false, false, false, false, false]),
            ((Private, Public), [true, false, true, false, false, false]),
            ((Private, Followers), [true, false, true, false, false, false]),
            ((Private, Private), [true, false, false, false, false, false]),
        ];
        for ((profile, post), row) in table {
            for ((name, relation), sees) in viewers.iter().zip(row) {
                assert_eq!(sees_post(profile, post, relation), sees, "{name}: {profile:?} profile, {post:?} post");
            }
        }
    }
}
