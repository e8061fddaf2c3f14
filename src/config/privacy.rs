//! `privacy`: the keys of personal data, the cache of subject keys, and retention.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Secret, Section, SettingsProblems, ValidationContext};

/// Master key used outside production when none is set. Public: data sealed under it is not
/// protected, which is why production refuses it.
pub const DEVELOPMENT_MASTER_KEY: &str = "beryl-development-privacy-master-key-not-for-production";
/// Blind-index key used outside production when none is set.
pub const DEVELOPMENT_BLIND_INDEX_KEY: &str = "beryl-development-privacy-blind-index-not-for-production";

/// Personal data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Master key wrapping every subject key (PRIVACY_MASTER_KEY), at least 32 bytes; required in
    /// production. Unset elsewhere: a public development key.
    pub master_key: Option<Secret>,
    /// The master key being rotated out (PRIVACY_MASTER_KEY_PREVIOUS): it still unwraps the keys
    /// it wrapped until `privacy rewrap` has rewrapped them all under `master_key`.
    pub master_key_previous: Option<Secret>,
    /// Key of the blind index by which subjects and searchable fields are looked up
    /// (PRIVACY_BLIND_INDEX_KEY), at least 32 bytes; required in production, never rotated (every
    /// index would change).
    pub blind_index_key: Option<Secret>,
    /// How long an unwrapped subject key is cached, seconds: an erasure is effective on every
    /// replica within this time.
    pub key_cache_ttl_secs: u64,
    /// Most unwrapped subject keys cached at once.
    pub key_cache_max: usize,
    /// Days the client IP addresses of the audit trail are kept.
    pub audit_ip_retention_days: u64,
    /// Days exact ride coordinates are kept.
    pub ride_coordinates_retention_days: u64,
    /// How often the retention actor runs, seconds.
    pub retention_interval_secs: u64,
    /// Most rows one retention statement removes.
    pub retention_batch: usize,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            master_key: None,
            master_key_previous: None,
            blind_index_key: None,
            key_cache_ttl_secs: 5,
            key_cache_max: 10_000,
            audit_ip_retention_days: 365,
            ride_coordinates_retention_days: 90,
            retention_interval_secs: 3600,
            retention_batch: 1000,
        }
    }
}

impl PrivacySettings {
    /// The secret of the master key in force (the development key when none is set).
    pub fn master_secret(&self) -> &str {
        self.master_key.as_ref().map(|s| s.expose()).unwrap_or(DEVELOPMENT_MASTER_KEY)
    }

    /// The secret of the blind-index key in force (the development key when none is set).
    pub fn blind_index_secret(&self) -> &str {
        self.blind_index_key.as_ref().map(|s| s.expose()).unwrap_or(DEVELOPMENT_BLIND_INDEX_KEY)
    }

    /// How long an unwrapped key is cached.
    pub fn key_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.key_cache_ttl_secs)
    }
}

impl Section for PrivacySettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        let keys = [
            ("privacy.master_key", &self.master_key, DEVELOPMENT_MASTER_KEY),
            ("privacy.master_key_previous", &self.master_key_previous, DEVELOPMENT_MASTER_KEY),
            ("privacy.blind_index_key", &self.blind_index_key, DEVELOPMENT_BLIND_INDEX_KEY),
        ];
        for (key, value, development) in keys {
            match value {
                Some(k) if k.expose().len() < 32 => {
                    problems.add(key, "the key is shorter than 32 bytes", "generate one with `openssl rand -hex 32`")
                }
                Some(k) if ctx.production() && k.expose() == development => problems.add(
                    key,
                    "production refuses the public development key",
                    "generate one with `openssl rand -hex 32`",
                ),
                _ => {}
            }
        }
        if ctx.production() {
            for (key, value, variable) in [
                ("privacy.master_key", &self.master_key, "privacy-master-key as PRIVACY_MASTER_KEY"),
                (
                    "privacy.blind_index_key",
                    &self.blind_index_key,
                    "privacy-blind-index-key as PRIVACY_BLIND_INDEX_KEY",
                ),
            ] {
                if value.is_none() {
                    problems.add(
                        key,
                        "production needs its own key for personal data",
                        &format!("mount the beryl-secrets secret's {variable}"),
                    );
                }
            }
        }
        if let (Some(current), Some(previous)) = (&self.master_key, &self.master_key_previous) {
            if current.expose() == previous.expose() {
                problems.add(
                    "privacy.master_key_previous",
                    "the previous key is the current key",
                    "keep the value PRIVACY_MASTER_KEY had before the rotation here, or unset it",
                );
            }
        }
        if self.key_cache_ttl_secs > 300 || self.key_cache_max == 0 {
            problems.add(
                "privacy.key_cache_ttl_secs",
                "an erasure must take effect within minutes on every replica, and the cache needs room",
                "keep the TTL at most 300 s (e.g. 5) and key_cache_max at least 1 (e.g. 10000)",
            );
        }
        if self.audit_ip_retention_days == 0 || self.ride_coordinates_retention_days == 0 {
            problems.add(
                "privacy.audit_ip_retention_days",
                "a retention period of 0 days removes data as it is written",
                "for example 365 (audit IPs) and 90 (ride coordinates)",
            );
        }
        if self.retention_interval_secs == 0 || self.retention_batch == 0 {
            problems.add(
                "privacy.retention_interval_secs",
                "retention needs an interval and a batch of at least 1",
                "for example 3600 (seconds) and 1000 (rows)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn problems(settings: &PrivacySettings, environment: Environment) -> Vec<String> {
        let mut found = SettingsProblems::default();
        settings.validate(&ValidationContext { environment }, &mut found);
        found.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn production_needs_real_keys_and_elsewhere_defaults_serve() {
        let defaults = PrivacySettings::default();
        assert!(problems(&defaults, Environment::Development).is_empty());
        assert_eq!(problems(&defaults, Environment::Production), vec!["privacy.master_key", "privacy.blind_index_key"]);
        let development = PrivacySettings {
            master_key: Some(DEVELOPMENT_MASTER_KEY.into()),
            blind_index_key: Some(DEVELOPMENT_BLIND_INDEX_KEY.into()),
            ..PrivacySettings::default()
        };
        assert_eq!(
            problems(&development, Environment::Production),
            vec!["privacy.master_key", "privacy.blind_index_key"]
        );
        let real = PrivacySettings {
            master_key: Some("0123456789abcdef0123456789abcdef-master".into()),
            blind_index_key: Some("0123456789abcdef0123456789abcdef-index".into()),
            ..PrivacySettings::default()
        };
        assert!(problems(&real, Environment::Production).is_empty());
        let same = PrivacySettings { master_key_previous: real.master_key.clone(), ..real.clone() };
        assert_eq!(problems(&same, Environment::Production), vec!["privacy.master_key_previous"]);
        let short = PrivacySettings { master_key: Some("short".into()), ..real };
        assert_eq!(problems(&short, Environment::Production), vec!["privacy.master_key"]);
    }

    #[test]
    fn secrets_are_redacted_and_keys_follow_the_settings() {
        let settings =
            PrivacySettings { master_key: Some("0123456789abcdef0123456789abcdef-m".into()), ..Default::default() };
        let shown = serde_json::to_string(&settings).unwrap();
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert_eq!(settings.master_secret(), "0123456789abcdef0123456789abcdef-m");
        assert_eq!(PrivacySettings::default().master_secret(), DEVELOPMENT_MASTER_KEY);
    }
}
