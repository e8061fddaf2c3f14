//! `auth`: the keys, issuer and audience tokens are verified against.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Environment, Secret, Section, SettingsProblems, ValidationContext};

/// Token verification.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 signing key (JWT_SECRET_KEY); at least 32 bytes, required in production.
    pub jwt_secret_key: Option<Secret>,
    /// `kid` of the current key (JWT_KEY_ID); tokens carrying a `kid` are matched on it.
    pub jwt_key_id: Option<String>,
    /// The key being rotated out (JWT_SECRET_KEY_PREVIOUS), still accepted until
    /// `jwt_secret_key_previous_until`.
    pub jwt_secret_key_previous: Option<Secret>,
    /// When the previous key stops being accepted, RFC 3339 (JWT_SECRET_KEY_PREVIOUS_UNTIL, e.g.
    /// `2026-01-31T12:00:00Z`): the issue time of the last token signed with it plus its
    /// lifetime. Required in staging and production whenever a previous key is set.
    pub jwt_secret_key_previous_until: Option<DateTime<Utc>>,
    /// `kid` of the previous key (JWT_KEY_ID_PREVIOUS).
    pub jwt_key_id_previous: Option<String>,
    /// PEM public key (RSA for RS256 or P-256 for ES256) accepted besides the HS256 keys
    /// (JWT_PUBLIC_KEY_FILE).
    pub public_key_file: Option<PathBuf>,
    /// JWKS file of RS256/ES256 public keys, matched by `kid` (JWT_JWKS_FILE).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim (JWT_ISSUER).
    pub issuer: String,
    /// Required `aud` claim (JWT_AUDIENCE).
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub leeway_secs: u64,
    /// Longest lifetime a token may have, seconds: `exp - iat`, and `exp` from now for tokens
    /// without `iat`. Also bounds how long a revocation is kept.
    pub max_token_lifetime_secs: u64,
    /// How often each replica reads the shared list of revoked tokens from Redis and checks the
    /// PEM and JWKS files for changes, milliseconds.
    pub refresh_interval_ms: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_secret_key: None,
            jwt_key_id: None,
            jwt_secret_key_previous: None,
            jwt_secret_key_previous_until: None,
            jwt_key_id_previous: None,
            public_key_file: None,
            jwks_file: None,
            issuer: "https://api.beryl-ecosystem.com".into(),
            audience: "beryl-core-api".into(),
            leeway_secs: 30,
            max_token_lifetime_secs: 86_400,
            refresh_interval_ms: 1_000,
        }
    }
}

/// The key shipped in `config/development.yaml` so that the quick start works; refused in
/// staging and production.
pub const DEVELOPMENT_JWT_KEY: &str = "development-only-signing-key-never-use-in-production";

impl Section for AuthSettings {
    fn validate(&self, ctx: &ValidationContext, problems: &mut SettingsProblems) {
        match &self.jwt_secret_key {
            Some(key) if key.expose().len() < 32 => problems.add(
                "auth.jwt_secret_key",
                "the key is shorter than 32 bytes",
                "generate one with `openssl rand -hex 32`",
            ),
            Some(key)
                if key.expose() == DEVELOPMENT_JWT_KEY
                    && matches!(ctx.environment, Environment::Staging | Environment::Production) =>
            {
                problems.add(
                    "auth.jwt_secret_key",
                    "the development key is public",
                    "mount the beryl-secrets secret's jwt-secret-key as JWT_SECRET_KEY",
                )
            }
            None if ctx.production() => problems.add(
                "auth.jwt_secret_key",
                "production needs a signing key",
                "mount the beryl-secrets secret's jwt-secret-key as JWT_SECRET_KEY",
            ),
            _ => {}
        }
        let hardened = matches!(ctx.environment, Environment::Staging | Environment::Production);
        match &self.jwt_secret_key_previous {
            Some(key) if key.expose().len() < 32 => problems.add(
                "auth.jwt_secret_key_previous",
                "the key is shorter than 32 bytes",
                "keep the previous value of JWT_SECRET_KEY here during rotation",
            ),
            Some(key) if key.expose() == DEVELOPMENT_JWT_KEY && hardened => problems.add(
                "auth.jwt_secret_key_previous",
                "the development key is public",
                "tokens signed with it must never be accepted here: unset JWT_SECRET_KEY_PREVIOUS",
            ),
            Some(_) if self.jwt_secret_key_previous_until.is_none() && hardened => problems.add(
                "auth.jwt_secret_key_previous_until",
                "a previous key needs the time it stops being accepted",
                "set JWT_SECRET_KEY_PREVIOUS_UNTIL (RFC 3339) to the rotation time plus auth.max_token_lifetime_secs",
            ),
            None if self.jwt_secret_key_previous_until.is_some() => problems.add(
                "auth.jwt_secret_key_previous_until",
                "set without a previous key",
                "unset JWT_SECRET_KEY_PREVIOUS_UNTIL, or set JWT_SECRET_KEY_PREVIOUS",
            ),
            _ => {}
        }
        for (key, path) in [("auth.public_key_file", &self.public_key_file), ("auth.jwks_file", &self.jwks_file)] {
            if let Some(path) = path {
                if !path.is_file() {
                    problems.add(
                        key,
                        format!("{} is not a readable file", path.display()),
                        "mount the key file or unset the variable",
                    );
                }
            }
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            problems.add(
                "auth.issuer",
                "issuer and audience must not be empty",
                "set JWT_ISSUER and JWT_AUDIENCE to the values your token issuer uses",
            );
        }
        if !(60..=31 * 86_400).contains(&self.max_token_lifetime_secs) {
            problems.add(
                "auth.max_token_lifetime_secs",
                format!("{} s is out of range", self.max_token_lifetime_secs),
                "between 60 s and 31 days; the identity provider's access token lifetime, e.g. 3600",
            );
        }
        if !(100..=60_000).contains(&self.refresh_interval_ms) {
            problems.add(
                "auth.refresh_interval_ms",
                format!("{} ms is out of range", self.refresh_interval_ms),
                "between 100 and 60000, e.g. 1000: a revocation reaches every replica within it",
            );
        }
        if self.leeway_secs > 300 {
            problems.add(
                "auth.leeway_secs",
                format!("{} s of clock skew is too lenient", self.leeway_secs),
                "keep it under 300, e.g. 30",
            );
        }
    }
}
