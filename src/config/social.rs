//! `social`: the home timelines cached in Redis, and fan-out on write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Section, SettingsProblems, ValidationContext};

/// Social.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialSettings {
    /// A post by an author with more active followers than this is not written into their
    /// followers' cached timelines; each reader merges such authors' posts from PostgreSQL.
    pub fanout_max_followers: u64,
    /// Posts kept in one cached timeline; a page past them is read from PostgreSQL.
    pub timeline_length: usize,
    /// How long a cached timeline lives after it was built, seconds; it is rebuilt from
    /// PostgreSQL on the read after that.
    pub timeline_ttl_secs: u64,
    /// Longest wait for Redis on a timeline, milliseconds; past it the read goes to PostgreSQL.
    pub timeline_timeout_ms: u64,
}

impl Default for SocialSettings {
    fn default() -> Self {
        Self {
            fanout_max_followers: 10_000,
            timeline_length: 800,
            timeline_ttl_secs: 7 * 86_400,
            timeline_timeout_ms: 500,
        }
    }
}

impl SocialSettings {
    /// [`Self::timeline_timeout_ms`] as a duration.
    pub fn timeline_timeout(&self) -> Duration {
        Duration::from_millis(self.timeline_timeout_ms)
    }
}

impl Section for SocialSettings {
    fn validate(&self, _: &ValidationContext, problems: &mut SettingsProblems) {
        if !(20..=10_000).contains(&self.timeline_length) {
            problems.add("social.timeline_length", "20 to 10000 posts", "for example 800");
        }
        if self.timeline_ttl_secs < 60 {
            problems.add("social.timeline_ttl_secs", "at least 60 s", "for example 604800 (a week)");
        }
        if self.timeline_timeout_ms == 0 || self.timeline_timeout_ms > 10_000 {
            problems.add("social.timeline_timeout_ms", "1 to 10000 ms", "for example 500");
        }
    }
}
