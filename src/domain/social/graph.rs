//! The social graph's rules: who may follow whom, what a block undoes, and who sees a profile's
//! network. The stores read a [`Relation`] under their locks and apply what these rules decide.

use serde::Serialize;

use super::{SocialError, Visibility};

/// A follow: taken at once, or a request waiting for the owner of a private profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowState {
    /// Following.
    Active,
    /// Asked; the owner has not answered yet.
    Pending,
}

impl FollowState {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

/// What links a viewer to a profile, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// The viewer is the profile's owner.
    pub own: bool,
    /// The viewer follows the profile (or asked to).
    pub following: Option<FollowState>,
    /// The profile follows the viewer (or asked to).
    pub followed_by: Option<FollowState>,
    /// The viewer blocks the profile.
    pub blocking: bool,
    /// The profile blocks the viewer.
    pub blocked_by: bool,
    /// The viewer mutes the profile.
    pub muting: bool,
}

impl Relation {
    /// A block stands between them, either way: they see nothing of each other.
    pub fn blocked(&self) -> bool {
        self.blocking || self.blocked_by
    }
}

/// What a change to the graph did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<T> {
    /// Made now.
    New(T),
    /// It was so already: nothing changed.
    Unchanged(T),
}

impl<T: Copy> Change<T> {
    /// The state either way.
    pub fn state(&self) -> T {
        match self {
            Self::New(s) | Self::Unchanged(s) => *s,
        }
    }
}

/// Following a profile of `visibility`: at once, or a request to a private profile; as it was
/// for a follow or request already made. Never oneself, and never across a block.
pub fn follow(visibility: Visibility, relation: &Relation) -> Result<Change<FollowState>, SocialError> {
    if relation.own {
        return Err(SocialError::OwnProfile);
    }
    if relation.blocked() {
        return Err(SocialError::Blocked);
    }
    Ok(match relation.following {
        Some(state) => Change::Unchanged(state),
        None if visibility == Visibility::Private => Change::New(FollowState::Pending),
        None => Change::New(FollowState::Active),
    })
}

/// Blocking, muting: never oneself.
pub fn not_own(relation: &Relation) -> Result<(), SocialError> {
    if relation.own {
        Err(SocialError::OwnProfile)
    } else {
        Ok(())
    }
}

/// Whether the viewer sees the profile at all: not across a block.
pub fn sees_profile(relation: &Relation) -> bool {
    !relation.blocked()
}

/// Whether the viewer sees what the owner of a profile of `visibility` shares (their followers
/// and following, their posts): the owner; everyone for a public profile; otherwise its active
/// followers. Never across a block.
pub fn sees_shared(visibility: Visibility, relation: &Relation) -> bool {
    if relation.blocked() {
        return false;
    }
    relation.own || visibility == Visibility::Public || relation.following == Some(FollowState::Active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(f: impl FnOnce(&mut Relation)) -> Relation {
        let mut r = Relation::default();
        f(&mut r);
        r
    }

    #[test]
    fn follows_are_immediate_except_to_private_profiles_and_never_to_oneself_or_across_a_block() {
        let stranger = Relation::default();
        assert_eq!(follow(Visibility::Public, &stranger), Ok(Change::New(FollowState::Active)));
        assert_eq!(follow(Visibility::Followers, &stranger), Ok(Change::New(FollowState::Active)));
        assert_eq!(follow(Visibility::Private, &stranger), Ok(Change::New(FollowState::Pending)));
        let asked = rel(|r| r.following = Some(FollowState::Pending));
        assert_eq!(follow(Visibility::Private, &asked), Ok(Change::Unchanged(FollowState::Pending)));
        let follower = rel(|r| r.following = Some(FollowState::Active));
        assert_eq!(follow(Visibility::Private, &follower), Ok(Change::Unchanged(FollowState::Active)));
        assert_eq!(follow(Visibility::Public, &rel(|r| r.own = true)), Err(SocialError::OwnProfile));
        assert_eq!(follow(Visibility::Public, &rel(|r| r.blocked_by = true)), Err(SocialError::Blocked));
        assert_eq!(follow(Visibility::Public, &rel(|r| r.blocking = true)), Err(SocialError::Blocked));
        assert_eq!(not_own(&rel(|r| r.own = true)), Err(SocialError::OwnProfile));
    }

    /// Every kind of viewer against every visibility.
    #[test]
    fn who_sees_what_a_profile_shares() {
        let viewers: [(&str, Relation); 7] = [
            ("owner", rel(|r| r.own = true)),
            ("stranger", Relation::default()),
            ("follower", rel(|r| r.following = Some(FollowState::Active))),
            ("requester", rel(|r| r.following = Some(FollowState::Pending))),
            ("followed by the owner only", rel(|r| r.followed_by = Some(FollowState::Active))),
            (
                "blocked by the owner",
                rel(|r| {
                    r.following = Some(FollowState::Active);
                    r.blocked_by = true;
                }),
            ),
            ("blocking the owner", rel(|r| r.blocking = true)),
        ];
        //                 public  followers private
        let expected: [[bool; 3]; 7] = [
            [true, true, true],
            [true, false, false],
            [true, true, true],
            [true, false, false],
            [true, false, false],
            [false, false, false],
            [false, false, false],
        ];
        for ((name, relation), row) in viewers.iter().zip(expected) {
            for (visibility, sees) in Visibility::ALL.into_iter().zip(row) {
                assert_eq!(sees_shared(visibility, relation), sees, "{name} / {visibility:?}");
            }
            assert_eq!(sees_profile(relation), !relation.blocked(), "{name}");
        }
    }
}
