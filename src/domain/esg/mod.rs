//! ESG: what people do in the ecosystem, as an environmental footprint, and the score a versioned
//! method makes of it. Pure: activities are validated and priced here from the factors the caller
//! looked up, and a score is a function of stored daily totals, the day it is computed for and
//! the signals known, so that the same inputs give the same score in any order and on a rebuild.

pub mod activity;
pub mod events;
pub mod leaderboard;
pub mod method;

pub use activity::{duplicate, ActivityType, DuplicateRule, Footprint, Report, DISTANCE_MAX_M, HISTORY_DAYS};
pub use events::{milestones_passed, RideCompleted, Took, TookPart, WalletChanged, MILESTONES_KG};
pub use method::{
    good_standing, score, Component, DayTotal, Score, Signals, WalletChange, METHOD_VERSION, WINDOW_DAYS,
};

/// Why an activity or a score request is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EsgError {
    /// Not an activity type the service knows, or one a user cannot report.
    #[error("unknown activity type `{0}`")]
    UnknownActivityType(String),
    /// Not a finite distance above 0 and at most 2,000 km.
    #[error("the distance must be above 0 and at most 2000 km, not {0}")]
    InvalidDistance(String),
    /// In the future, or more than a year back.
    #[error("the date {date} is outside the {earliest} to {latest} window")]
    DateOutOfRange {
        /// The date given.
        date: chrono::NaiveDate,
        /// The earliest date accepted.
        earliest: chrono::NaiveDate,
        /// The latest date accepted (today).
        latest: chrono::NaiveDate,
    },
    /// The same type, date and about the same distance as an activity already reported.
    #[error("an activity of the same type, date and distance was already reported")]
    Duplicate,
    /// Not a month as `YYYY-MM`.
    #[error("`{0}` is not a month as YYYY-MM")]
    InvalidPeriod(String),
    /// A month after this one, or more than twelve back.
    #[error("the month {period} is outside the {earliest} to {latest} window")]
    PeriodOutOfRange {
        /// The month asked for.
        period: String,
        /// The earliest month readable.
        earliest: String,
        /// This month.
        latest: String,
    },
    /// Not a community name.
    #[error("`{0}` is not a community name: 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit")]
    InvalidCommunity(String),
}

impl crate::error::code::Coded for EsgError {
    fn code(&self) -> crate::error::code::ErrorCode {
        use crate::error::code::ErrorCode;
        match self {
            Self::UnknownActivityType(_) => ErrorCode::UnknownActivityType,
            Self::InvalidDistance(_) => ErrorCode::InvalidDistance,
            Self::DateOutOfRange { .. } | Self::PeriodOutOfRange { .. } => ErrorCode::DateOutOfRange,
            Self::Duplicate => ErrorCode::DuplicateActivity,
            Self::InvalidPeriod(_) | Self::InvalidCommunity(_) => ErrorCode::InvalidParameter,
        }
    }

    /// The field at fault; for a date, the range accepted.
    fn extensions(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        match self {
            Self::UnknownActivityType(_) => {
                map.insert("field".into(), "type".into());
            }
            Self::InvalidDistance(_) => {
                map.insert("field".into(), "distance_km".into());
            }
            Self::DateOutOfRange { earliest, latest, .. } => {
                map.insert("field".into(), "date".into());
                map.insert("earliest".into(), earliest.to_string().into());
                map.insert("latest".into(), latest.to_string().into());
            }
            Self::InvalidPeriod(_) => {
                map.insert("field".into(), "period".into());
            }
            Self::PeriodOutOfRange { earliest, latest, .. } => {
                map.insert("field".into(), "period".into());
                map.insert("earliest".into(), earliest.clone().into());
                map.insert("latest".into(), latest.clone().into());
            }
            Self::InvalidCommunity(_) => {
                map.insert("field".into(), "community".into());
            }
            Self::Duplicate => {}
        }
        map
    }
}
