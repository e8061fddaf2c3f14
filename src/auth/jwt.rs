//! JWT verification: HS256 with the current key and, during rotation, the previous one until
//! its configured end; RS256 and ES256 with a PEM public key or a JWKS file, read again when the
//! file changes. Every way a token can be wrong has its own error.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    str::FromStr,
};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use jsonwebtoken::{
    errors::ErrorKind, jwk::JwkSet, Algorithm, DecodingKey, EncodingKey, Header, TokenData, Validation,
};
use serde::{Deserialize, Serialize};

use super::Principal;
use crate::{
    config::AuthSettings,
    error::code::{Coded, ErrorCode},
};

/// Why a request is not authenticated; each maps to its own error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The header or token is not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// `alg: none`: unsigned tokens are never accepted.
    #[error("unsigned token")]
    AlgorithmNone,
    /// The algorithm is not one this service accepts for any configured key (e.g. an HS256 token
    /// where only RS256 keys are configured).
    #[error("algorithm not accepted")]
    AlgorithmNotAllowed,
    /// The `kid` names no configured key.
    #[error("unknown key id")]
    UnknownKey,
    /// No configured key verifies the signature.
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not include the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is missing, empty (`sub`) or has the wrong type.
    #[error("invalid claims")]
    InvalidClaims,
    /// The token lives longer than `auth.max_token_lifetime_secs` (from `iat`, or from now).
    #[error("token lifetime too long")]
    LifetimeTooLong,
    /// The token's `jti` was revoked.
    #[error("token revoked")]
    Revoked,
}

impl Coded for AuthError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::TokenMissing,
            Self::Malformed => ErrorCode::TokenMalformed,
            Self::AlgorithmNone => ErrorCode::TokenUnsigned,
            Self::AlgorithmNotAllowed => ErrorCode::TokenAlgorithmNotAllowed,
            Self::UnknownKey => ErrorCode::TokenUnknownKey,
            Self::InvalidSignature => ErrorCode::TokenInvalidSignature,
            Self::Expired => ErrorCode::TokenExpired,
            Self::NotYetValid => ErrorCode::TokenNotYetValid,
            Self::WrongIssuer => ErrorCode::TokenWrongIssuer,
            Self::WrongAudience => ErrorCode::TokenWrongAudience,
            Self::InvalidClaims => ErrorCode::TokenInvalidClaims,
            Self::LifetimeTooLong => ErrorCode::TokenLifetimeTooLong,
            Self::Revoked => ErrorCode::TokenRevoked,
        }
    }

    fn detail(&self) -> String {
        format!("{self}: send a valid bearer token")
    }

    /// The RFC 6750 challenge: no error attribute when no credentials were sent.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let challenge = match self {
            Self::Missing => r#"Bearer realm="beryl-core-api""#.to_string(),
            other => format!(r#"Bearer realm="beryl-core-api", error="invalid_token", error_description="{other}""#),
        };
        vec![("www-authenticate", challenge)]
    }
}

/// Claims this service reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer.
    pub iss: String,
    /// Audience: one, or several (RFC 7519 allows a string or an array).
    pub aud: Audience,
    /// Space-separated scopes (OAuth 2.0 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
}

struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
    /// Accepted until then (the previous HS256 key during rotation).
    until: Option<DateTime<Utc>>,
}

impl VerifyingKey {
    fn new(kid: Option<String>, algorithm: Algorithm, key: DecodingKey) -> Self {
        Self { kid, algorithm, key, until: None }
    }

    fn usable(&self, now: DateTime<Utc>) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// A key file (PEM public key or JWKS) and what was last read from it.
struct KeyFile {
    path: PathBuf,
    jwks: bool,
    contents: Vec<u8>,
    keys: Vec<VerifyingKey>,
}

impl KeyFile {
    fn read(path: &Path, jwks: bool) -> anyhow::Result<Self> {
        let contents = std::fs::read(path).map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
        let keys = if jwks { jwks_keys(path, &contents)? } else { vec![pem_key(path, &contents)?] };
        Ok(Self { path: path.to_path_buf(), jwks, contents, keys })
    }
}

/// Tokens already verified by this key set, so that a client sending the same token on every
/// request pays for its signature once. Keyed by the whole token; an entry is used only until
/// the token's `exp` (with leeway) or the end of the key that verified it, whichever is first.
/// When full, the entries past their time go first, and if that frees less than a quarter, a
/// quarter of the entries go (whichever the map yields first): a service with more clients than
/// the cache holds keeps most of their verifications instead of losing all of them at once. The
/// cache is emptied when a key file changes.
#[derive(Default)]
struct VerifiedTokens {
    entries: parking_lot::RwLock<std::collections::HashMap<Box<str>, Verified>>,
}

/// A verified token's principal, and until when the verification holds.
type Verified = (Principal, DateTime<Utc>);

const VERIFIED_TOKENS_MAX: usize = 16_384;

impl VerifiedTokens {
    fn get(&self, token: &str) -> Option<Principal> {
        let entries = self.entries.read();
        let (principal, deadline) = entries.get(token)?;
        (Utc::now() < *deadline).then(|| principal.clone())
    }

    fn put(&self, token: &str, principal: &Principal, deadline: DateTime<Utc>) {
        let mut entries = self.entries.write();
        if entries.len() >= VERIFIED_TOKENS_MAX {
            make_room(&mut entries, Utc::now());
        }
        entries.insert(token.into(), (principal.clone(), deadline));
    }

    fn clear(&self) {
        self.entries.write().clear();
    }
}

/// Free at least a quarter of a full cache: the expired entries, then any.
fn make_room(entries: &mut std::collections::HashMap<Box<str>, Verified>, now: DateTime<Utc>) {
    entries.retain(|_, (_, deadline)| now < *deadline);
    let keep = VERIFIED_TOKENS_MAX - VERIFIED_TOKENS_MAX / 4;
    if entries.len() > keep {
        let drop: Vec<Box<str>> = entries.keys().take(entries.len() - keep).cloned().collect();
        for token in drop {
            entries.remove(&token);
        }
    }
}

/// Every key tokens are verified with, and the rules they must meet.
pub struct KeySet {
    verified: VerifiedTokens,
    keys: Vec<VerifyingKey>,
    files: parking_lot::RwLock<Vec<KeyFile>>,
    signing: Option<(Option<String>, EncodingKey)>,
    issuer: String,
    audience: String,
    leeway: u64,
    max_lifetime: i64,
}

impl KeySet {
    /// Build from settings, reading any PEM or JWKS file.
    pub fn from_settings(auth: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let mut signing = None;
        if let Some(secret) = &auth.jwt_secret_key {
            let key = DecodingKey::from_secret(secret.expose().as_bytes());
            keys.push(VerifyingKey::new(auth.jwt_key_id.clone(), Algorithm::HS256, key));
            signing = Some((auth.jwt_key_id.clone(), EncodingKey::from_secret(secret.expose().as_bytes())));
        }
        if let Some(secret) = &auth.jwt_secret_key_previous {
            let key = DecodingKey::from_secret(secret.expose().as_bytes());
            keys.push(VerifyingKey {
                until: auth.jwt_secret_key_previous_until,
                ..VerifyingKey::new(auth.jwt_key_id_previous.clone(), Algorithm::HS256, key)
            });
        }
        let mut files = Vec::new();
        if let Some(path) = &auth.public_key_file {
            files.push(KeyFile::read(path, false)?);
        }
        if let Some(path) = &auth.jwks_file {
            files.push(KeyFile::read(path, true)?);
        }
        Ok(Self {
            verified: VerifiedTokens::default(),
            keys,
            files: parking_lot::RwLock::new(files),
            signing,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            leeway: auth.leeway_secs,
            max_lifetime: i64::try_from(auth.max_token_lifetime_secs).unwrap_or(i64::MAX),
        })
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.files.read().iter().all(|f| f.keys.is_empty())
    }

    /// Read the PEM and JWKS files again and take their keys when a file changed; a file that
    /// cannot be read or parsed leaves its previous keys in place. Returns the files that changed.
    pub fn reload_files(&self) -> Vec<PathBuf> {
        let mut reloaded = Vec::new();
        let current: Vec<(PathBuf, bool, Vec<u8>)> =
            self.files.read().iter().map(|f| (f.path.clone(), f.jwks, f.contents.clone())).collect();
        for (index, (path, jwks, contents)) in current.into_iter().enumerate() {
            match std::fs::read(&path) {
                Ok(now) if now == contents => {}
                Ok(_) => match KeyFile::read(&path, jwks) {
                    Ok(file) => {
                        self.files.write()[index] = file;
                        reloaded.push(path);
                    }
                    Err(e) => tracing::warn!(error = %e, "key file changed but is unusable: keeping its previous keys"),
                },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "key file unreadable: keeping its previous keys")
                }
            }
        }
        if !reloaded.is_empty() {
            // A key that left the file must stop verifying at once.
            self.verified.clear();
            tracing::info!(files = ?reloaded, "key files reloaded");
        }
        reloaded
    }

    /// Verify a bearer token and return who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.verified.get(token) {
            return Ok(principal);
        }
        let (principal, key_until) = self.verify_signature(token)?;
        let mut deadline = principal.expires_at + chrono::Duration::seconds(self.leeway as i64);
        if let Some(until) = key_until {
            deadline = deadline.min(until);
        }
        self.verified.put(token, &principal, deadline);
        Ok(principal)
    }

    fn verify_signature(&self, token: &str) -> Result<(Principal, Option<DateTime<Utc>>), AuthError> {
        let header = raw_header(token)?;
        let alg_name = header.alg.ok_or(AuthError::Malformed)?;
        if alg_name.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgorithmNone);
        }
        let algorithm = Algorithm::from_str(&alg_name).map_err(|_| AuthError::AlgorithmNotAllowed)?;
        let now = Utc::now();
        let files = self.files.read();
        let candidates: Vec<&VerifyingKey> = self
            .keys
            .iter()
            .chain(files.iter().flat_map(|f| &f.keys))
            .filter(|k| k.algorithm == algorithm && k.usable(now))
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let candidates: Vec<&VerifyingKey> = match &header.kid {
            Some(kid) if candidates.iter().any(|k| k.kid.is_some()) => {
                let matching: Vec<_> = candidates.into_iter().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                if matching.is_empty() {
                    return Err(AuthError::UnknownKey);
                }
                matching
            }
            _ => candidates,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        for key in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
                Ok(TokenData { claims, .. }) => {
                    self.check_claims(&claims, now)?;
                    return Ok((principal(claims), key.until));
                }
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(classify(e.kind())),
            }
        }
        Err(AuthError::InvalidSignature)
    }

    /// What the library does not check: a subject that names someone, an `iat` in the past, and
    /// a lifetime within the maximum (from `iat`, and from now for tokens without one).
    fn check_claims(&self, claims: &Claims, now: DateTime<Utc>) -> Result<(), AuthError> {
        if claims.sub.trim().is_empty() {
            return Err(AuthError::InvalidClaims);
        }
        let (now, leeway) = (now.timestamp(), self.leeway as i64);
        if let Some(iat) = claims.iat {
            if iat > now.saturating_add(leeway) {
                return Err(AuthError::NotYetValid);
            }
            if claims.exp.saturating_sub(iat) > self.max_lifetime {
                return Err(AuthError::LifetimeTooLong);
            }
        }
        if claims.exp.saturating_sub(now) > self.max_lifetime.saturating_add(leeway) {
            return Err(AuthError::LifetimeTooLong);
        }
        Ok(())
    }

    /// The longest lifetime a token may have, seconds.
    pub fn max_lifetime_secs(&self) -> i64 {
        self.max_lifetime
    }

    /// Clock skew tolerated, seconds.
    pub fn leeway_secs(&self) -> u64 {
        self.leeway
    }

    /// Sign a token with the current HS256 key (development tooling and tests).
    pub fn mint(&self, subject: &str, scopes: &[String], ttl: chrono::Duration) -> anyhow::Result<String> {
        let (kid, key) = self.signing.as_ref().ok_or_else(|| anyhow::anyhow!("no JWT_SECRET_KEY configured"))?;
        let now = Utc::now();
        let claims = Claims {
            sub: subject.into(),
            exp: (now + ttl).timestamp(),
            nbf: Some(now.timestamp()),
            iat: Some(now.timestamp()),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            scope: Some(scopes.join(" ")),
            jti: Some(uuid::Uuid::now_v7().to_string()),
        };
        let header = Header { kid: kid.clone(), ..Header::new(Algorithm::HS256) };
        Ok(jsonwebtoken::encode(&header, &claims, key)?)
    }
}

fn raw_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD.decode(head).map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AuthError::AlgorithmNotAllowed,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidSubject | ErrorKind::Json(_) => AuthError::InvalidClaims,
        _ => AuthError::Malformed,
    }
}

fn principal(claims: Claims) -> Principal {
    let scopes: BTreeSet<String> =
        claims.scope.as_deref().unwrap_or_default().split_whitespace().map(str::to_string).collect();
    Principal {
        subject: claims.sub,
        scopes,
        token_id: claims.jti,
        expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
    }
}

fn pem_key(path: &Path, pem: &[u8]) -> anyhow::Result<VerifyingKey> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(VerifyingKey::new(None, Algorithm::RS256, key));
    }
    let key = DecodingKey::from_ec_pem(pem)
        .map_err(|e| anyhow::anyhow!("{} is neither an RSA nor an EC public key: {e}", path.display()))?;
    Ok(VerifyingKey::new(None, Algorithm::ES256, key))
}

fn jwks_keys(path: &Path, text: &[u8]) -> anyhow::Result<Vec<VerifyingKey>> {
    let set: JwkSet =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("{} is not a JWKS: {e}", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| anyhow::anyhow!("unusable key in {}: {e}", path.display()))?;
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => anyhow::bail!("{}: only RSA and EC keys are accepted", path.display()),
        };
        keys.push(VerifyingKey::new(jwk.common.key_id.clone(), algorithm, key));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(current: &str, previous: Option<&str>) -> AuthSettings {
        AuthSettings {
            jwt_secret_key: Some(Secret::from(current)),
            jwt_secret_key_previous: previous.map(Secret::from),
            ..AuthSettings::default()
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_full_cache_drops_the_expired_then_a_quarter_not_everything() {
        let cache = VerifiedTokens::default();
        let now = Utc::now();
        let principal = Principal {
            subject: "s".into(),
            scopes: Default::default(),
            token_id: None,
            expires_at: now + chrono::Duration::hours(1),
        };
        let later = now + chrono::Duration::hours(1);
        // A full cache of live entries: a quarter goes, the rest and the newcomer stay.
        for i in 0..VERIFIED_TOKENS_MAX {
            cache.put(&format!("t{i}"), &principal, later);
        }
        cache.put("new", &principal, later);
        let kept = cache.entries.read().len();
        assert_eq!(kept, VERIFIED_TOKENS_MAX - VERIFIED_TOKENS_MAX / 4 + 1);
        assert!(cache.get("new").is_some());
        // Full again, with a third of the entries past their time: only those go.
        cache.clear();
        let past = now - chrono::Duration::seconds(1);
        for i in 0..VERIFIED_TOKENS_MAX {
            cache.put(&format!("t{i}"), &principal, if i % 3 == 0 { past } else { later });
        }
        cache.put("new", &principal, later);
        let expired = VERIFIED_TOKENS_MAX.div_ceil(3);
        assert_eq!(cache.entries.read().len(), VERIFIED_TOKENS_MAX - expired + 1);
        assert!((0..VERIFIED_TOKENS_MAX).filter(|i| i % 3 != 0).all(|i| cache.get(&format!("t{i}")).is_some()));
    }

    #[test]
    fn a_minted_token_verifies_with_its_scopes() {
        let keys = KeySet::from_settings(&settings(A, None)).unwrap();
        let token = keys.mint("alice", &["fintech:read".into()], chrono::Duration::minutes(5)).unwrap();
        let p = keys.verify(&token).unwrap();
        assert_eq!(p.subject, "alice");
        assert!(p.has("fintech:read") && !p.has("fintech:write"));
    }

    #[test]
    fn rotation_accepts_the_previous_key_until_it_is_removed() {
        let old = KeySet::from_settings(&settings(A, None)).unwrap();
        let token = old.mint("bob", &[], chrono::Duration::minutes(5)).unwrap();
        assert!(KeySet::from_settings(&settings(B, Some(A))).unwrap().verify(&token).is_ok());
        assert_eq!(KeySet::from_settings(&settings(B, None)).unwrap().verify(&token), Err(AuthError::InvalidSignature));
    }

    fn sign(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(A.as_bytes())).unwrap()
    }

    fn claims(sub: &str, aud: serde_json::Value, iat: Option<i64>, exp: i64) -> serde_json::Value {
        let mut claims =
            serde_json::json!({"sub": sub, "exp": exp, "iss": "https://api.beryl-ecosystem.com", "aud": aud});
        if let Some(iat) = iat {
            claims["iat"] = iat.into();
        }
        claims
    }

    #[test]
    fn subject_audience_and_lifetime_are_checked() {
        let keys = KeySet::from_settings(&AuthSettings { max_token_lifetime_secs: 3600, ..settings(A, None) }).unwrap();
        let now = Utc::now().timestamp();
        let aud = serde_json::json!("beryl-core-api");
        assert_eq!(keys.verify(&sign(claims("", aud.clone(), Some(now), now + 60))), Err(AuthError::InvalidClaims));
        assert_eq!(keys.verify(&sign(claims("  ", aud.clone(), Some(now), now + 60))), Err(AuthError::InvalidClaims));
        let many = serde_json::json!(["another-api", "beryl-core-api"]);
        assert_eq!(keys.verify(&sign(claims("ann", many, Some(now), now + 60))).map(|p| p.subject), Ok("ann".into()));
        let others = serde_json::json!(["another-api"]);
        assert_eq!(keys.verify(&sign(claims("ann", others, Some(now), now + 60))), Err(AuthError::WrongAudience));
        // Issued two hours before it expires: longer than an hour, even though it is fresh now.
        let long = claims("ann", aud.clone(), Some(now - 3600), now + 3600 + 60);
        assert_eq!(keys.verify(&sign(long)), Err(AuthError::LifetimeTooLong));
        assert_eq!(keys.verify(&sign(claims("ann", aud.clone(), None, now + 7200))), Err(AuthError::LifetimeTooLong));
        assert!(keys.verify(&sign(claims("ann", aud.clone(), None, now + 3000))).is_ok());
        assert_eq!(keys.verify(&sign(claims("ann", aud, Some(now + 600), now + 900))), Err(AuthError::NotYetValid));
    }

    #[test]
    fn the_previous_key_is_refused_after_its_end_even_for_a_token_it_verified_before() {
        let old = KeySet::from_settings(&settings(A, None)).unwrap();
        let token = old.mint("bob", &[], chrono::Duration::minutes(5)).unwrap();
        let until = |offset: i64| AuthSettings {
            jwt_secret_key_previous_until: Some(Utc::now() + chrono::Duration::seconds(offset)),
            ..settings(B, Some(A))
        };
        assert!(KeySet::from_settings(&until(60)).unwrap().verify(&token).is_ok());
        assert_eq!(KeySet::from_settings(&until(-1)).unwrap().verify(&token), Err(AuthError::InvalidSignature));
        let ending = KeySet::from_settings(&until(1)).unwrap();
        assert!(ending.verify(&token).is_ok());
        let start = std::time::Instant::now();
        while ending.verify(&token).is_ok() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "the cached verification ends too");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(ending.verify(&token), Err(AuthError::InvalidSignature));
    }

    #[test]
    fn unsigned_and_garbage_tokens_are_told_apart() {
        let keys = KeySet::from_settings(&settings(A, None)).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert_eq!(keys.verify(&format!("{none_header}.{body}.")), Err(AuthError::AlgorithmNone));
        assert_eq!(keys.verify("not-a-token"), Err(AuthError::Malformed));
        assert_eq!(keys.verify("a.b.c"), Err(AuthError::Malformed));
        let rs_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        assert_eq!(keys.verify(&format!("{rs_header}.{body}.c2ln")), Err(AuthError::AlgorithmNotAllowed));
    }
}
