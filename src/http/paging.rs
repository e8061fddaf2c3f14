//! Pages of items ordered by a time and an id (rides, ESG activities): the cursor after an item,
//! and a page's size and cursor checked the same way by every listing, REST and GraphQL.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::error::{AppError, ErrorCode};

/// Cursors: the item's time (microseconds since the epoch) and its id.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// The cursor after the item of time `at` and id `id`.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id)
}

/// What a cursor names, if it is one.
pub fn decode_cursor(cursor: &str) -> Option<After> {
    let (micros, id) = cursor.split_once('_')?;
    if micros.is_empty() || micros.len() > 18 || !micros.bytes().all(|b| b.is_ascii_digit()) || id.len() != 36 {
        return None;
    }
    let at = Utc.timestamp_micros(micros.parse().ok()?).single()?;
    let id = Uuid::parse_str(id).ok().filter(|u| u.hyphenated().to_string() == id)?;
    Some((at, id))
}

/// Where a page starts: after the item of this time and id.
pub type After = (DateTime<Utc>, Uuid);

/// A page asked for: its size (`default` when none is given; 400 `page_too_large` outside 1 to
/// `max`, naming `limit_field`) and where it starts (400 `invalid_cursor` for a cursor this
/// service did not issue, naming `cursor_field`).
pub fn page(
    limit: Option<i64>,
    (limit_field, default, max): (&'static str, usize, usize),
    cursor: Option<&str>,
    cursor_field: &'static str,
) -> Result<(usize, Option<After>), AppError> {
    let limit = match limit {
        None => default,
        Some(n) => usize::try_from(n).ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            AppError::client(ErrorCode::PageTooLarge, format!("{limit_field} must be between 1 and {max}"))
                .with("field", limit_field)
        })?,
    };
    let before = match cursor {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            AppError::client(ErrorCode::InvalidCursor, "the cursor is not one this service issued")
                .with("field", cursor_field)
        })?),
        None => None,
    };
    Ok((limit, before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_pages_are_checked() {
        let (at, id) = (Utc.timestamp_micros(1_765_000_000_123_456).unwrap(), Uuid::now_v7());
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        for bad in
            ["", "_", "12_x", "abc_0193b1d2-7f3a-7c1e-9a4b-2f6d8e0c1a2b", "1_0193B1D2-7F3A-7C1E-9A4B-2F6D8E0C1A2B"]
        {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        assert_eq!(page(None, ("limit", 20, 100), None, "cursor").unwrap(), (20, None));
        assert_eq!(page(Some(100), ("limit", 20, 100), None, "cursor").unwrap().0, 100);
        for n in [0, -1, 101] {
            let e = page(Some(n), ("first", 20, 100), None, "after").unwrap_err();
            assert_eq!(e.code(), ErrorCode::PageTooLarge, "{n}");
        }
        let e = page(None, ("limit", 20, 100), Some("nope"), "cursor").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidCursor);
    }
}
