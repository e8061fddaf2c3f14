//! The keys of personal data.
//!
//! - A **subject key** (random, 256 bits) seals every personal field of one data subject; deleting
//!   it erases them all, wherever copies went (crypto-shredding).
//! - A **master key**, from the secret, wraps the subject keys where they are stored. It is named
//!   by an id derived from it, which every wrapped key carries, so that keys wrapped under the
//!   previous master key still open during a rotation and can be rewrapped.
//! - The **blind-index key**, from its own secret, makes the keyed hash by which a subject (or any
//!   searchable field) is looked up without its plaintext being stored.

use std::fmt;

use chacha20poly1305::{aead::Aead, KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use super::PrivacyError;

/// Bytes of every symmetric key here.
pub const KEY_BYTES: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_BYTES: usize = 24;

/// HMAC-SHA256 of the parts, each prefixed with its length so that no two lists of parts collide.
pub(crate) fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for part in parts {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

/// `plaintext` sealed under `key` with `aad`: the random nonce, then the ciphertext and its tag.
pub(crate) fn encrypt(key: &[u8; KEY_BYTES], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PrivacyError> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill(&mut nonce);
    encrypt_with(key, nonce, aad, plaintext)
}

/// `plaintext` sealed under `key` with `nonce` and `aad`: the nonce, the ciphertext and its tag.
pub(crate) fn encrypt_with(
    key: &[u8; KEY_BYTES],
    nonce: [u8; NONCE_BYTES],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PrivacyError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(&XNonce::from(nonce), chacha20poly1305::aead::Payload { msg: plaintext, aad })
        .map_err(|_| PrivacyError::Malformed)?;
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The plaintext of what [`encrypt`] made with the same key and `aad`.
pub(crate) fn decrypt(key: &[u8; KEY_BYTES], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PrivacyError> {
    if sealed.len() < NONCE_BYTES + 16 {
        return Err(PrivacyError::Malformed);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| PrivacyError::Malformed)?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(&XNonce::from(nonce), chacha20poly1305::aead::Payload { msg: ciphertext, aad })
        .map_err(|_| PrivacyError::Tampered)
}

/// One subject's key: its id (carried by every field it seals) and the key itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey {
    id: String,
    key: [u8; KEY_BYTES],
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl SubjectKey {
    /// A new random key with a new random id.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill(&mut key);
        let mut id = [0u8; 12];
        rand::rng().fill(&mut id);
        Self { id: hex::encode(id), key }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.key
    }

    fn wrap_aad(id: &str, subject: &BlindIndex) -> Vec<u8> {
        [b"beryl-privacy/subject-key/v1|".as_slice(), id.as_bytes(), b"|", subject.hex().as_bytes()].concat()
    }

    /// The key wrapped under `master` for storage, bound to its id and to its subject's index:
    /// a wrapped key copied onto another row does not open.
    pub fn wrap(&self, master: &MasterKey, subject: &BlindIndex) -> Result<Vec<u8>, PrivacyError> {
        encrypt(&master.key, &Self::wrap_aad(&self.id, subject), &self.key)
    }

    /// The key `id` of `subject` from its wrapped form.
    pub fn unwrap(id: &str, wrapped: &[u8], master: &MasterKey, subject: &BlindIndex) -> Result<Self, PrivacyError> {
        let bytes = decrypt(&master.key, &Self::wrap_aad(id, subject), wrapped)?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| PrivacyError::Malformed)?;
        Ok(Self { id: id.to_owned(), key })
    }
}

/// A master key, derived from its secret, named by a fingerprint of it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    id: String,
    key: [u8; KEY_BYTES],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// The master key of `secret` (at least 32 bytes once settings are validated).
    pub fn new(secret: &[u8]) -> Self {
        let id = hex::encode(&mac(secret, &[b"beryl-privacy-master-key-id"])[..8]);
        Self { id, key: mac(secret, &[b"beryl-privacy-master-key"]) }
    }

    /// Its id, as wrapped keys carry it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// HMAC-SHA256 of `data` under a key derived from this one for `purpose`.
    pub fn sign(&self, purpose: &[u8], data: &[u8]) -> [u8; 32] {
        mac(&mac(&self.key, &[b"beryl-privacy-signing", purpose]), &[data])
    }
}

/// The master keys in force: the current one wraps, the previous one (during a rotation) still
/// unwraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeys {
    /// Wraps new keys and rewrapped ones.
    pub current: MasterKey,
    /// The key being rotated out.
    pub previous: Option<MasterKey>,
}

impl MasterKeys {
    /// The key whose id is `id`.
    pub fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(self.previous.as_ref()).find(|k| k.id() == id)
    }
}

/// The key of the blind index.
#[derive(Clone)]
pub struct BlindIndexKey([u8; KEY_BYTES]);

impl fmt::Debug for BlindIndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndexKey([redacted])")
    }
}

impl BlindIndexKey {
    /// The key of `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self(mac(secret, &[b"beryl-privacy-blind-index"]))
    }

    /// The index of `value` among the values of `kind` (`subject`, `handle`...): equal values of
    /// one kind have equal indexes; without the key, an index tells nothing of its value.
    pub fn index(&self, kind: &str, value: &str) -> BlindIndex {
        BlindIndex(mac(&self.0, &[kind.as_bytes(), value.as_bytes()]))
    }

    /// The index of a data subject (a token's `sub`).
    pub fn subject(&self, subject: &str) -> BlindIndex {
        self.index("subject", subject)
    }
}

/// A keyed blind index (HMAC-SHA256) of one value, for equality look-ups.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({})", &self.hex()[..12])
    }
}

impl BlindIndex {
    /// The index from stored bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The bytes, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"master-secret-a-0123456789abcdef0123";
    const B: &[u8] = b"master-secret-b-0123456789abcdef0123";

    #[test]
    fn a_wrapped_key_opens_only_under_its_master_key_and_for_its_subject() {
        let index = BlindIndexKey::new(b"index-secret-0123456789abcdef012345");
        let (alice, bob) = (index.subject("alice"), index.subject("bob"));
        let key = SubjectKey::generate();
        let master = MasterKey::new(A);
        let wrapped = key.wrap(&master, &alice).unwrap();
        assert!(!wrapped.windows(KEY_BYTES).any(|w| w == key.bytes()));
        assert_eq!(SubjectKey::unwrap(key.id(), &wrapped, &master, &alice).unwrap(), key);
        assert_eq!(SubjectKey::unwrap(key.id(), &wrapped, &MasterKey::new(B), &alice), Err(PrivacyError::Tampered));
        assert_eq!(SubjectKey::unwrap(key.id(), &wrapped, &master, &bob), Err(PrivacyError::Tampered));
        assert_eq!(SubjectKey::unwrap("other", &wrapped, &master, &alice), Err(PrivacyError::Tampered));
    }

    #[test]
    fn rotation_rewraps_under_the_current_key_and_the_previous_still_opens() {
        let subject = BlindIndexKey::new(b"index-secret-0123456789abcdef012345").subject("alice");
        let key = SubjectKey::generate();
        let old = MasterKey::new(A);
        let wrapped = key.wrap(&old, &subject).unwrap();
        let keys = MasterKeys { current: MasterKey::new(B), previous: Some(old.clone()) };
        let found = keys.find(old.id()).unwrap();
        let opened = SubjectKey::unwrap(key.id(), &wrapped, found, &subject).unwrap();
        let rewrapped = opened.wrap(&keys.current, &subject).unwrap();
        assert_eq!(SubjectKey::unwrap(key.id(), &rewrapped, &keys.current, &subject).unwrap(), key);
        assert!(SubjectKey::unwrap(key.id(), &rewrapped, &old, &subject).is_err());
        assert_ne!(keys.current.id(), old.id());
        assert_eq!(keys.find("0000000000000000"), None);
    }

    #[test]
    fn the_blind_index_is_keyed_and_separates_kinds() {
        let k = BlindIndexKey::new(b"index-secret-0123456789abcdef012345");
        let other = BlindIndexKey::new(b"index-secret-other-456789abcdef012345");
        assert_eq!(k.subject("alice"), k.subject("alice"));
        assert_ne!(k.subject("alice"), k.subject("alicf"));
        assert_ne!(k.subject("alice"), other.subject("alice"));
        assert_ne!(k.index("handle", "alice"), k.subject("alice"));
        // Length prefixes: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(k.index("ab", "c"), k.index("a", "bc"));
        assert!(!format!("{:?}{:?}", k, MasterKey::new(A)).contains("secret"));
    }

    #[test]
    fn keys_are_random_and_never_printed() {
        let (a, b) = (SubjectKey::generate(), SubjectKey::generate());
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.id(), b.id());
        assert!(!format!("{a:?}").contains(&hex::encode(a.bytes())));
    }
}
