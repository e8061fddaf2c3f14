//! JWT verification: HS256 with the current key and, during rotation, the previous one; RS256 and
//! ES256 with a PEM public key or a JWKS file. Every way a token can be wrong has its own error.

use std::{collections::BTreeSet, path::Path, str::FromStr};

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
    /// A required claim is missing or has the wrong type.
    #[error("invalid claims")]
    InvalidClaims,
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
    /// Audience.
    pub aud: String,
    /// Space-separated scopes (OAuth 2.0 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
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
}

/// Tokens already verified by this key set, so that a client sending the same token on every
/// request pays for its signature once. Keyed by the whole token; an entry is used only while
/// the token's `exp` (with leeway) has not passed, and the cache is emptied when full.
#[derive(Default)]
struct VerifiedTokens {
    entries: parking_lot::RwLock<std::collections::HashMap<Box<str>, Principal>>,
}

const VERIFIED_TOKENS_MAX: usize = 16_384;

impl VerifiedTokens {
    fn get(&self, token: &str, leeway: u64) -> Option<Principal> {
        let entries = self.entries.read();
        let principal = entries.get(token)?;
        let deadline = principal.expires_at + chrono::Duration::seconds(leeway as i64);
        (Utc::now() < deadline).then(|| principal.clone())
    }

    fn put(&self, token: &str, principal: &Principal) {
        let mut entries = self.entries.write();
        if entries.len() >= VERIFIED_TOKENS_MAX {
            entries.clear();
        }
        entries.insert(token.into(), principal.clone());
    }
}

/// Every key tokens are verified with, and the rules they must meet.
pub struct KeySet {
    verified: VerifiedTokens,
    keys: Vec<VerifyingKey>,
    signing: Option<(Option<String>, EncodingKey)>,
    issuer: String,
    audience: String,
    leeway: u64,
}

impl KeySet {
    /// Build from settings, reading any PEM or JWKS file.
    pub fn from_settings(auth: &AuthSettings) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        let mut signing = None;
        if let Some(secret) = &auth.jwt_secret_key {
            keys.push(VerifyingKey {
                kid: auth.jwt_key_id.clone(),
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            });
            signing = Some((auth.jwt_key_id.clone(), EncodingKey::from_secret(secret.expose().as_bytes())));
        }
        if let Some(secret) = &auth.jwt_secret_key_previous {
            keys.push(VerifyingKey {
                kid: auth.jwt_key_id_previous.clone(),
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            });
        }
        if let Some(path) = &auth.public_key_file {
            keys.push(pem_key(path)?);
        }
        if let Some(path) = &auth.jwks_file {
            keys.extend(jwks_keys(path)?);
        }
        Ok(Self {
            verified: VerifiedTokens::default(),
            keys,
            signing,
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            leeway: auth.leeway_secs,
        })
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify a bearer token and return who it speaks for.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(principal) = self.verified.get(token, self.leeway) {
            return Ok(principal);
        }
        let principal = self.verify_signature(token)?;
        self.verified.put(token, &principal);
        Ok(principal)
    }

    fn verify_signature(&self, token: &str) -> Result<Principal, AuthError> {
        let header = raw_header(token)?;
        let alg_name = header.alg.ok_or(AuthError::Malformed)?;
        if alg_name.eq_ignore_ascii_case("none") {
            return Err(AuthError::AlgorithmNone);
        }
        let algorithm = Algorithm::from_str(&alg_name).map_err(|_| AuthError::AlgorithmNotAllowed)?;
        let candidates: Vec<&VerifyingKey> = self.keys.iter().filter(|k| k.algorithm == algorithm).collect();
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
                Ok(TokenData { claims, .. }) => return Ok(principal(claims)),
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => return Err(classify(e.kind())),
            }
        }
        Err(AuthError::InvalidSignature)
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
            aud: self.audience.clone(),
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

fn pem_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok(VerifyingKey { kid: None, algorithm: Algorithm::RS256, key });
    }
    let key = DecodingKey::from_ec_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{} is neither an RSA nor an EC public key: {e}", path.display()))?;
    Ok(VerifyingKey { kid: None, algorithm: Algorithm::ES256, key })
}

fn jwks_keys(path: &Path) -> anyhow::Result<Vec<VerifyingKey>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not a JWKS: {e}", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| anyhow::anyhow!("unusable key in {}: {e}", path.display()))?;
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => anyhow::bail!("{}: only RSA and EC keys are accepted", path.display()),
        };
        keys.push(VerifyingKey { kid: jwk.common.key_id.clone(), algorithm, key });
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
