//! A profile: its handle (unique whatever its case), display name, bio, avatar and who may see
//! what its owner shares.

use serde::{Deserialize, Serialize};

use super::{text, SocialError};

/// Fewest characters of a handle.
pub const HANDLE_MIN: usize = 3;
/// Most characters of a handle.
pub const HANDLE_MAX: usize = 30;
/// Most characters of a display name.
pub const DISPLAY_NAME_MAX: usize = 50;
/// Most characters of a bio.
pub const BIO_MAX: usize = 300;
/// Longest avatar URL, bytes.
pub const AVATAR_URL_MAX: usize = 2048;

/// A handle: 3 to 30 of `a-z`, `0-9` and `_`, kept as its owner wrote it (capitals allowed) and
/// unique by its lower-case [`Handle::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

impl Handle {
    /// `s` as a handle.
    pub fn parse(s: &str) -> Result<Self, SocialError> {
        let ok =
            (HANDLE_MIN..=HANDLE_MAX).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(SocialError::InvalidHandle(s.chars().take(64).collect()))
        }
    }

    /// As its owner wrote it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What makes it unique: its lower-case form.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Who sees what a profile's owner shares (their posts, their followers and following).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Everyone signed in; anyone may follow at once.
    Public,
    /// Their followers; anyone may follow at once.
    Followers,
    /// Their followers, and following is a request the owner accepts or declines.
    Private,
}

impl Visibility {
    /// Every visibility.
    pub const ALL: [Visibility; 3] = [Self::Public, Self::Followers, Self::Private];

    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Followers => "followers",
            Self::Private => "private",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A profile as its owner writes it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDraft {
    /// The handle.
    pub handle: Handle,
    /// 1 to 50 characters.
    pub display_name: String,
    /// At most 300 characters, line feeds allowed; empty for none.
    pub bio: String,
    /// An `https` URL; empty for none.
    pub avatar_url: String,
    /// Who sees what they share.
    pub visibility: Visibility,
}

impl ProfileDraft {
    /// Check what an owner wrote.
    pub fn new(
        handle: &str,
        display_name: &str,
        bio: Option<&str>,
        avatar_url: Option<&str>,
        visibility: Visibility,
    ) -> Result<Self, SocialError> {
        let handle = Handle::parse(handle)?;
        text::check(display_name, DISPLAY_NAME_MAX, false, false)
            .map_err(|p| SocialError::InvalidText { field: "display_name", problem: p.to_string() })?;
        let bio = bio.unwrap_or_default();
        text::check(bio, BIO_MAX, true, true)
            .map_err(|p| SocialError::InvalidText { field: "bio", problem: p.to_string() })?;
        let avatar_url = avatar_url.unwrap_or_default();
        if !avatar_url.is_empty() {
            check_avatar_url(avatar_url)?;
        }
        Ok(Self {
            handle,
            display_name: display_name.to_owned(),
            bio: bio.to_owned(),
            avatar_url: avatar_url.to_owned(),
            visibility,
        })
    }
}

/// An avatar's address: `https://`, a host of letters, digits, dots and hyphens, an optional
/// port, and an optional path (with its query) of printable ASCII without spaces or quotes:
/// `^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!#-~]*)?$`, as the API documents it.
fn check_avatar_url(url: &str) -> Result<(), SocialError> {
    let refuse = |why: &str| Err(SocialError::InvalidUrl(why.to_owned()));
    if url.len() > AVATAR_URL_MAX {
        return refuse("longer than 2048 bytes");
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return refuse("not an https URL");
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (host, port) = authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p)));
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return refuse("the host is not letters, digits, dots and hyphens");
    }
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return refuse("the port is not 1 to 5 digits");
    }
    if !path.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        return refuse("the path holds a space, a quote, a control or a non-ASCII character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked_and_unique_whatever_their_case() {
        for good in ["abc", "Ada_Lovelace", "x_1_y", &"a".repeat(30)] {
            assert!(Handle::parse(good).is_ok(), "{good}");
        }
        for bad in ["ab", "", "a b", "ada-l", "adà", "ada.l", &"a".repeat(31), "ＡＢＣ"] {
            assert!(matches!(Handle::parse(bad), Err(SocialError::InvalidHandle(_))), "{bad}");
        }
        assert_eq!(Handle::parse("Ada_L").unwrap().key(), Handle::parse("ada_l").unwrap().key());
        assert_eq!(Handle::parse("Ada_L").unwrap().as_str(), "Ada_L");
    }

    #[test]
    fn a_draft_refuses_hidden_characters_overlong_text_and_other_urls() {
        let ok = ProfileDraft::new(
            "ada",
            "Ada L.",
            Some("Line one\nline two"),
            Some("https://img.example/a.png"),
            Visibility::Public,
        );
        assert!(ok.is_ok());
        let e = ProfileDraft::new("ada", "Ada\u{202E}L", None, None, Visibility::Public).unwrap_err();
        assert!(matches!(e, SocialError::InvalidText { field: "display_name", .. }), "{e:?}");
        let e = ProfileDraft::new("ada", "  ", None, None, Visibility::Public).unwrap_err();
        assert!(matches!(e, SocialError::InvalidText { field: "display_name", .. }), "{e:?}");
        let e = ProfileDraft::new("ada", "Ada", Some(&"b".repeat(301)), None, Visibility::Public).unwrap_err();
        assert!(matches!(e, SocialError::InvalidText { field: "bio", .. }), "{e:?}");
        for url in [
            "http://img.example/a.png",
            "https://",
            "https:///a",
            "https://a b",
            "javascript:alert(1)",
            "https://u:p@h/",
            "https://h?q",
            "https://h:123456/",
            "https://h/\"x\"",
        ] {
            let e = ProfileDraft::new("ada", "Ada", None, Some(url), Visibility::Public).unwrap_err();
            assert!(matches!(e, SocialError::InvalidUrl(_)), "{url}: {e:?}");
        }
        assert!(ProfileDraft::new("ada", "Ada", None, Some("https://h:8443/a?b#c"), Visibility::Private).is_ok());
        assert_eq!(Visibility::parse("followers"), Some(Visibility::Followers));
        assert_eq!(Visibility::parse("friends"), None);
    }
}
