//! Leaderboards: opt-in rankings of the CO2e subjects avoided in a month, overall or within a
//! community. A member is shown by a pseudonym derived from their blind index, never by name.

use chrono::{Datelike, NaiveDate};

use super::EsgError;

/// Longest community name.
pub const COMMUNITY_MAX: usize = 32;

/// How many months back a leaderboard can be read.
pub const MONTHS_BACK: u32 = 12;

/// A month of a leaderboard: its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(pub NaiveDate);

impl Period {
    /// `YYYY-MM`, not after `today`'s month and at most [`MONTHS_BACK`] months before it.
    pub fn parse(text: &str, today: NaiveDate) -> Result<Period, EsgError> {
        let bad = || EsgError::InvalidPeriod(text.chars().take(16).collect());
        let (y, m) = text.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let first =
            NaiveDate::from_ymd_opt(y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, 1).ok_or_else(bad)?;
        let current = Period::of(today).0;
        let earliest = current - chrono::Months::new(MONTHS_BACK);
        if first > current || first < earliest {
            return Err(EsgError::PeriodOutOfRange {
                period: text.to_owned(),
                earliest: Period(earliest).label(),
                latest: Period(current).label(),
            });
        }
        Ok(Period(first))
    }

    /// The month `day` is in.
    pub fn of(day: NaiveDate) -> Period {
        Period(day.with_day(1).unwrap_or(day))
    }

    /// `YYYY-MM`.
    pub fn label(self) -> String {
        self.0.format("%Y-%m").to_string()
    }
}

/// A community's name: 1 to 32 of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
pub fn community(name: &str) -> Result<String, EsgError> {
    let ok = !name.is_empty()
        && name.len() <= COMMUNITY_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(name.to_owned())
    } else {
        Err(EsgError::InvalidCommunity(name.chars().take(40).collect()))
    }
}

/// How a member is shown: `member-` and the first 10 hex digits of their blind index (which
/// says nothing of who they are, and is the same on every board).
pub fn pseudonym(index_hex: &str) -> String {
    format!("member-{}", &index_hex[..index_hex.len().min(10)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_period_is_a_month_of_the_last_year() {
        let today = day("2026-12-06");
        assert_eq!(Period::parse("2026-12", today), Ok(Period(day("2026-12-01"))));
        assert_eq!(Period::parse("2025-12", today), Ok(Period(day("2025-12-01"))));
        for bad in ["2026-13", "2026-00", "2026-1", "26-12", "2026/12", "", "2026-12-01"] {
            assert!(matches!(Period::parse(bad, today), Err(EsgError::InvalidPeriod(_))), "{bad}");
        }
        for outside in ["2027-01", "2025-11", "0000-01"] {
            let err = Period::parse(outside, today).unwrap_err();
            let window = EsgError::PeriodOutOfRange {
                period: outside.into(),
                earliest: "2025-12".into(),
                latest: "2026-12".into(),
            };
            assert_eq!(err, window, "{outside}");
        }
        assert_eq!(Period::of(day("2026-02-28")).label(), "2026-02");
    }

    #[test]
    fn communities_are_short_lower_case_names() {
        assert_eq!(community("paris-11"), Ok("paris-11".into()));
        assert_eq!(community("a"), Ok("a".into()));
        for bad in ["", "Paris", "-x", "_x", "a b", "é", &"x".repeat(33)] {
            assert!(community(bad).is_err(), "{bad}");
        }
        assert_eq!(pseudonym("0123456789abcdef"), "member-0123456789");
    }
}
