//! `redis`: Redis connection and key prefix.

use serde::{Deserialize, Serialize};

use super::{SecretUrl, Section, SettingsProblems, ValidationContext};

/// Redis.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL (REDIS_URL), `redis://host:port/db`; unset means embedded mode. The
    /// service talks to it over one multiplexed connection.
    pub url: Option<SecretUrl>,
    /// Whether Redis must be up for the process to be ready (rate limits fail open, so no).
    pub required: bool,
    /// Prefix of every key this service writes, so that several deployments can share a server.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: None, required: false, key_prefix: "beryl:".into() }
    }
}

impl Section for RedisSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        if let Some(url) = &self.url {
            if ::redis::Client::open(url.expose()).is_err() {
                problems.add(
                    "redis.url",
                    format!("`{}` is not a Redis URL", url.redacted()),
                    "use redis://host:6379/0",
                );
            }
        } else if ctx.production() {
            problems.add("redis.url", "production cannot run on the embedded in-memory store", "set REDIS_URL");
        }
    }
}
