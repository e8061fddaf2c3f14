//! Pages of items ordered by a time and an id (rides, ESG activities, social lists and
//! timelines), checked the same way by every listing, REST and GraphQL.
//!
//! A cursor names the last item of the page before: its time (microseconds since the epoch) and
//! id, followed by a MAC over them and the listing's scope (which listing, for whom, of what).
//! A cursor changed in any character, or carried to another listing or another caller, is
//! refused with 400 `invalid_cursor`; a genuine cursor after which nothing is left any more (the
//! items that followed it were deleted or hidden since) is 404 `page_beyond_end`.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::{
    domain::privacy::mac,
    error::{AppError, ErrorCode},
};

type HmacSha256 = Hmac<Sha256>;

/// Cursors: the item's time and id, then 22 characters of MAC (16 bytes, base64url).
pub const CURSOR_PATTERN: &str =
    r"^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{22}$";

/// Bytes of MAC a cursor carries.
const TAG_BYTES: usize = 16;

/// Where a page starts: after the item of this time and id.
pub type After = (DateTime<Utc>, Uuid);

/// The key cursors are signed with, derived from the privacy blind-index key so that every
/// replica issues and accepts the same cursors and no extra secret has to be deployed.
#[derive(Clone)]
pub struct Cursors {
    /// Keyed once; each page clones it and feeds it its scope.
    keyed: HmacSha256,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors(..)")
    }
}

impl Cursors {
    /// Cursors signed with a key derived from `secret`.
    pub fn new(secret: &str) -> Result<Self, hmac::digest::InvalidLength> {
        let key = mac(secret.as_bytes(), &[b"beryl-core-api/paging-cursor/v1"]);
        Ok(Self { keyed: HmacSha256::new_from_slice(&key)? })
    }

    /// A page asked for in `scope`: its size (`default` when none is given; 400 `page_too_large`
    /// outside 1 to `max`, naming `limit_field`) and where it starts (400 `invalid_cursor` for a
    /// cursor this listing did not issue to this caller, naming `cursor_field`).
    ///
    /// `scope` names the listing first, then whatever the listing depends on (the caller, the
    /// profile or post listed, a filter), so a cursor only pages what it was issued for.
    pub fn page(
        &self,
        scope: &[&str],
        limit: Option<impl TryInto<usize>>,
        (limit_field, default, max): (&'static str, usize, usize),
        cursor: Option<&str>,
        cursor_field: &'static str,
    ) -> Result<Page, AppError> {
        let limit = match limit {
            None => default,
            Some(n) => n.try_into().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                AppError::client(ErrorCode::PageTooLarge, format!("{limit_field} must be between 1 and {max}"))
                    .with("field", limit_field)
            })?,
        };
        let mut mac = self.keyed.clone();
        for part in scope {
            // Length-prefixed, so that no two scopes feed the same bytes.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        let after = match cursor {
            Some(c) => Some(read(&mac, c).ok_or_else(|| {
                AppError::client(ErrorCode::InvalidCursor, "the cursor is not one this listing issued to the caller")
                    .with("field", cursor_field)
            })?),
            None => None,
        };
        Ok(Page { mac, limit, after })
    }
}

/// What `cursor` names, if `mac` (keyed and fed the scope) signed it.
fn read(mac: &HmacSha256, cursor: &str) -> Option<After> {
    let (body, tag) = cursor.split_once('.')?;
    let (micros, id) = body.split_once('_')?;
    if micros.is_empty() || micros.len() > 18 || !micros.bytes().all(|b| b.is_ascii_digit()) || id.len() != 36 {
        return None;
    }
    let tag = URL_SAFE_NO_PAD.decode(tag).ok().filter(|t| t.len() == TAG_BYTES)?;
    let mut mac = mac.clone();
    mac.update(body.as_bytes());
    mac.verify_truncated_left(&tag).ok()?;
    let at = Utc.timestamp_micros(micros.parse().ok()?).single()?;
    let id = Uuid::parse_str(id).ok().filter(|u| u.hyphenated().to_string() == id)?;
    Some((at, id))
}

/// A page asked for: its size, where it starts, and the scope its next cursor is signed for.
#[derive(Debug)]
pub struct Page {
    mac: HmacSha256,
    /// Items on the page.
    pub limit: usize,
    /// The item the page starts after, `None` for the first page.
    pub after: Option<After>,
}

impl Page {
    /// How many items to fetch: one more than the page holds, to know whether another follows.
    pub fn fetch(&self) -> usize {
        self.limit + 1
    }

    /// The page out of `found` (fetched with [`Page::fetch`], in listing order) and the cursor
    /// of the next one, made from the last item's [`After`] by `key`; `None` on the last page.
    /// 404 `page_beyond_end` when a cursor was given and nothing follows it any more.
    pub fn finish<T>(
        &self,
        mut found: Vec<T>,
        key: impl Fn(&T) -> After,
    ) -> Result<(Vec<T>, Option<String>), AppError> {
        if self.after.is_some() && found.is_empty() {
            return Err(AppError::client(
                ErrorCode::PageBeyondEnd,
                "nothing follows this cursor any more: start again from the first page",
            ));
        }
        let more = found.len() > self.limit;
        found.truncate(self.limit);
        let next = if more { found.last().map(|item| self.cursor(key(item))) } else { None };
        Ok((found, next))
    }

    /// The cursor after the item of time `at` and id `id`, for this page's scope.
    fn cursor(&self, (at, id): After) -> String {
        let body = format!("{}_{}", at.timestamp_micros(), id.hyphenated());
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: (&str, usize, usize) = ("limit", 20, 100);

    fn items(n: i64) -> Vec<After> {
        (0..n).map(|i| (Utc.timestamp_micros(1_765_000_000_000_000 - i).unwrap(), Uuid::now_v7())).collect()
    }

    #[test]
    fn a_cursor_pages_its_own_scope_only() {
        let cursors = Cursors::new("secret").unwrap();
        let first = cursors.page(&["social.timeline", "alice"], Some(2), LIMITS, None, "cursor").unwrap();
        let found = items(3);
        let (page, next) = first.finish(found.clone(), |a| *a).unwrap();
        assert_eq!(page, found[..2]);
        let next = next.unwrap();
        assert!(regex_lite(&next), "{next}");

        let second = cursors.page(&["social.timeline", "alice"], Some(2), LIMITS, Some(&next), "cursor").unwrap();
        assert_eq!(second.after, Some(found[1]));

        // Another caller, another listing, another key, or a scope split differently: refused.
        for (secret, scope) in [
            ("secret", &["social.timeline", "bob"][..]),
            ("secret", &["esg.activities", "alice"][..]),
            ("other", &["social.timeline", "alice"][..]),
            ("secret", &["social.timelinea", "lice"][..]),
        ] {
            let e = Cursors::new(secret).unwrap().page(scope, None::<i32>, LIMITS, Some(&next), "cursor").unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidCursor, "{secret} {scope:?}");
        }
    }

    #[test]
    fn every_changed_character_is_refused() {
        let cursors = Cursors::new("secret").unwrap();
        let scope = ["mobility.rides", "alice", "rider"];
        let page = cursors.page(&scope, Some(1), LIMITS, None, "cursor").unwrap();
        let next = page.finish(items(2), |a| *a).unwrap().1.unwrap();
        for i in 0..next.len() {
            for replacement in ['0', '9', 'a', 'A', '_', '-', '.'] {
                let mut changed: Vec<char> = next.chars().collect();
                if changed[i] == replacement {
                    continue;
                }
                changed[i] = replacement;
                let changed: String = changed.into_iter().collect();
                // The tag's last character carries 4 bits and 2 padding bits: a replacement
                // that decodes to the same bytes is the same cursor.
                let same = URL_SAFE_NO_PAD.decode(&changed[changed.len() - 22..]).ok()
                    == URL_SAFE_NO_PAD.decode(&next[next.len() - 22..]).ok()
                    && changed[..changed.len() - 22] == next[..next.len() - 22];
                let read = cursors.page(&scope, None::<i32>, LIMITS, Some(&changed), "cursor");
                assert_eq!(read.is_ok(), same, "{changed}");
            }
        }
        for bad in ["", ".", "_", "12_x.AAAAAAAAAAAAAAAAAAAAAA", &next[..next.len() - 1], &format!("{next}A")] {
            let e = cursors.page(&scope, None::<i32>, LIMITS, Some(bad), "cursor").unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidCursor, "{bad}");
        }
    }

    #[test]
    fn sizes_are_checked_and_the_last_page_has_no_cursor() {
        let cursors = Cursors::new("secret").unwrap();
        assert_eq!(cursors.page(&["x"], None::<i32>, LIMITS, None, "cursor").unwrap().limit, 20);
        assert_eq!(cursors.page(&["x"], Some(100), LIMITS, None, "cursor").unwrap().fetch(), 101);
        for n in [0, -1, 101] {
            let e = cursors.page(&["x"], Some(n), ("first", 20, 100), None, "after").unwrap_err();
            assert_eq!(e.code(), ErrorCode::PageTooLarge, "{n}");
        }
        let page = cursors.page(&["x"], Some(3), LIMITS, None, "cursor").unwrap();
        assert_eq!(page.finish(items(3), |a| *a).unwrap().1, None);
        // An empty first page is an empty listing, not an error.
        assert_eq!(page.finish(Vec::<After>::new(), |a| *a).unwrap(), (vec![], None));
    }

    #[test]
    fn nothing_after_a_genuine_cursor_is_beyond_the_end() {
        let cursors = Cursors::new("secret").unwrap();
        let next = cursors.page(&["x"], Some(1), LIMITS, None, "c").unwrap().finish(items(2), |a| *a).unwrap().1;
        let page = cursors.page(&["x"], Some(1), LIMITS, next.as_deref(), "c").unwrap();
        let e = page.finish(Vec::<After>::new(), |a| *a).unwrap_err();
        assert_eq!((e.code(), e.code().status()), (ErrorCode::PageBeyondEnd, 404));
    }

    /// Whether `cursor` has the documented form (a hand-written match of [`CURSOR_PATTERN`]).
    fn regex_lite(cursor: &str) -> bool {
        let Some((body, tag)) = cursor.split_once('.') else { return false };
        let Some((micros, id)) = body.split_once('_') else { return false };
        (1..=18).contains(&micros.len())
            && micros.bytes().all(|b| b.is_ascii_digit())
            && Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
            && tag.len() == 22
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}
