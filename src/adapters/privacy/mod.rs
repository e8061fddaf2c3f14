//! The vault of personal data: subject keys stored wrapped under the master key, a bounded cache
//! of unwrapped ones, and sealing and opening of personal fields for every domain.
//!
//! A key is looked up by its subject's blind index (to seal) or by its id (to open: a sealed
//! field names the key that sealed it). Unwrapped keys are cached for `privacy.key_cache_ttl_secs`
//! at most: an erasure deletes the key at once on the replica that runs it and is effective on
//! every other replica within that time.

mod store;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use parking_lot::Mutex;

pub use store::{KeyStore, MemKeys, StoredKey};

use super::postgres::{PgPool, PostgresError};
use crate::{
    config::PrivacySettings,
    domain::privacy::{
        BlindIndex, BlindIndexKey, ErasureRecord, MasterKey, MasterKeys, Personal, Place, PrivacyError, Sealed,
        SubjectKey,
    },
    error::code::{Coded, ErrorCode},
};

/// Kind of the blind index of a period's key.
pub const PERIOD_KIND: &str = "audit-ip-period";

/// The master keys `settings` name.
pub fn master_keys(settings: &PrivacySettings) -> MasterKeys {
    MasterKeys {
        current: MasterKey::new(settings.master_secret().as_bytes()),
        previous: settings.master_key_previous.as_ref().map(|s| MasterKey::new(s.expose().as_bytes())),
    }
}

/// Why the vault could not answer.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key store failed.
    #[error(transparent)]
    Store(#[from] PostgresError),
    /// A key or field does not open.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
}

impl Coded for VaultError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Store(_) => ErrorCode::PrivacyUnavailable,
            Self::Privacy(_) => ErrorCode::Internal,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        matches!(self, Self::Store(_)).then_some(Duration::from_secs(1))
    }
}

/// A [`VaultError`] as the layers above keep it (cloneable, as their answers are): its code and
/// what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the privacy vault failed: {detail}")]
pub struct VaultFailure {
    /// What the vault said.
    pub detail: String,
    /// Its code: `privacy_unavailable` when the key store did not answer, `internal` when a key or
    /// a field does not open.
    pub code: ErrorCode,
}

impl From<VaultError> for VaultFailure {
    fn from(e: VaultError) -> Self {
        Self { detail: e.to_string(), code: e.code() }
    }
}

impl Coded for VaultFailure {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn retry_after(&self) -> Option<Duration> {
        (self.code == ErrorCode::PrivacyUnavailable).then_some(Duration::from_secs(1))
    }
}

/// What the cache holds for a key id: the key, or that it is gone (key ids are never reused, so
/// a key found erased stays erased).
#[derive(Clone)]
enum Cached {
    Key(SubjectKey),
    Erased,
}

#[derive(Default)]
struct Cache {
    by_id: HashMap<String, (Cached, Instant)>,
    by_subject: HashMap<BlindIndex, (String, Instant)>,
}

impl Cache {
    fn make_room(&mut self, max: usize, ttl: Duration) {
        if self.by_id.len() < max && self.by_subject.len() < max {
            return;
        }
        let now = Instant::now();
        self.by_id.retain(|_, (_, at)| now.duration_since(*at) < ttl);
        self.by_subject.retain(|_, (_, at)| now.duration_since(*at) < ttl);
        // Still full of fresh entries: start again rather than grow.
        if self.by_id.len() >= max || self.by_subject.len() >= max {
            self.by_id.clear();
            self.by_subject.clear();
        }
    }
}

/// The vault; cheap to clone.
#[derive(Clone)]
pub struct Vault {
    store: KeyStore,
    masters: Arc<MasterKeys>,
    index: Arc<BlindIndexKey>,
    cache: Arc<Mutex<Cache>>,
    /// The store lookups in flight, by what they look up: callers missing the cache for the same
    /// key wait for one lookup and then find it cached, instead of each reading the store (a
    /// backlog of one subject's events, opened concurrently, read their key once).
    lookups: Arc<Mutex<HashMap<Lookup, Arc<tokio::sync::Mutex<()>>>>>,
    ttl: Duration,
    max: usize,
}

/// What a store lookup is for: a key by its id, or a subject's key by their blind index.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Lookup {
    Id(String),
    Subject(BlindIndex),
}

/// One caller's turn at a lookup; the last to leave takes the lookup off the map.
struct Turn<'a> {
    lookups: &'a Mutex<HashMap<Lookup, Arc<tokio::sync::Mutex<()>>>>,
    what: Lookup,
    gate: Arc<tokio::sync::Mutex<()>>,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.held.take();
        let mut lookups = self.lookups.lock();
        // The map's and this one: nobody else holds or waits for it.
        if Arc::strong_count(&self.gate) <= 2 {
            lookups.remove(&self.what);
        }
    }
}

impl Vault {
    /// A vault over `store` with the keys and cache of `settings`.
    pub fn new(store: KeyStore, settings: &PrivacySettings) -> Self {
        Self {
            store,
            masters: Arc::new(master_keys(settings)),
            index: Arc::new(BlindIndexKey::new(settings.blind_index_secret().as_bytes())),
            cache: Arc::default(),
            lookups: Arc::default(),
            ttl: settings.key_cache_ttl(),
            max: settings.key_cache_max,
        }
    }

    /// A vault on PostgreSQL, or in memory without a database.
    pub fn for_pool(pool: Option<PgPool>, settings: &PrivacySettings) -> Self {
        Self::new(pool.map(KeyStore::Postgres).unwrap_or_else(KeyStore::memory), settings)
    }

    /// The master keys.
    pub fn master_keys(&self) -> &MasterKeys {
        &self.masters
    }

    /// The store of keys.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    /// The blind index of a subject.
    pub fn subject_index(&self, subject: &str) -> BlindIndex {
        self.index.subject(subject)
    }

    /// The blind index of `value` among the values of `kind`.
    pub fn blind_index(&self, kind: &str, value: &str) -> BlindIndex {
        self.index.index(kind, value)
    }

    fn unwrap(&self, stored: &StoredKey) -> Result<SubjectKey, PrivacyError> {
        let master = self
            .masters
            .find(&stored.master_key_id)
            .ok_or_else(|| PrivacyError::UnknownMasterKey(stored.master_key_id.clone()))?;
        SubjectKey::unwrap(&stored.key_id, &stored.wrapped, master, &stored.subject)
    }

    fn remember(&self, subject: Option<BlindIndex>, key: &SubjectKey) {
        let now = Instant::now();
        let mut cache = self.cache.lock();
        cache.make_room(self.max, self.ttl);
        cache.by_id.insert(key.id().to_owned(), (Cached::Key(key.clone()), now));
        if let Some(subject) = subject {
            cache.by_subject.insert(subject, (key.id().to_owned(), now));
        }
    }

    /// Wait for the lookup of `what` in flight, if any, and take this caller's turn at it.
    async fn turn(&self, what: Lookup) -> Turn<'_> {
        let gate = self.lookups.lock().entry(what.clone()).or_default().clone();
        let held = Some(gate.clone().lock_owned().await);
        Turn { lookups: &self.lookups, what, gate, held }
    }

    /// The key of the subject of `index` if cached and fresh.
    fn cached_for(&self, index: &BlindIndex) -> Option<SubjectKey> {
        let known = {
            let cache = self.cache.lock();
            cache.by_subject.get(index).filter(|(_, at)| at.elapsed() < self.ttl).map(|(id, _)| id.clone())
        };
        match known.and_then(|id| self.cached(&id)) {
            Some(Cached::Key(key)) => Some(key),
            _ => None,
        }
    }

    fn cached(&self, key_id: &str) -> Option<Cached> {
        let cache = self.cache.lock();
        let (entry, at) = cache.by_id.get(key_id)?;
        match entry {
            Cached::Erased => Some(Cached::Erased),
            Cached::Key(_) if at.elapsed() >= self.ttl => None,
            key => Some(key.clone()),
        }
    }

    /// The key of `subject`, made now if it has none.
    pub async fn key_of(&self, subject: &str) -> Result<SubjectKey, VaultError> {
        self.key_for(self.subject_index(subject)).await
    }

    /// The key of the client addresses recorded in `period` (`2026-12`) while no subject was
    /// known: deleting it (retention) erases them all at once.
    pub async fn period_key(&self, period: &str) -> Result<SubjectKey, VaultError> {
        self.key_for(self.period_index(period)).await
    }

    /// Delete the keys of `periods` (their addresses become unreadable); returns how many there
    /// were.
    pub async fn erase_periods(&self, periods: &[String]) -> Result<u64, VaultError> {
        let indexes: Vec<BlindIndex> = periods.iter().map(|p| self.period_index(p)).collect();
        let n = self.store.delete_many(&indexes).await?;
        let mut cache = self.cache.lock();
        for index in &indexes {
            if let Some((id, _)) = cache.by_subject.remove(index) {
                cache.by_id.insert(id, (Cached::Erased, Instant::now()));
            }
        }
        Ok(n)
    }

    /// The blind index under which the key of `period` is kept.
    pub fn period_index(&self, period: &str) -> BlindIndex {
        self.index.index(PERIOD_KIND, period)
    }

    /// The key kept under `index`, made now if there is none.
    pub async fn key_for(&self, index: BlindIndex) -> Result<SubjectKey, VaultError> {
        if let Some(key) = self.cached_for(&index) {
            return Ok(key);
        }
        let _turn = self.turn(Lookup::Subject(index)).await;
        // Found by the lookup this caller waited for.
        if let Some(key) = self.cached_for(&index) {
            return Ok(key);
        }
        let stored = match self.store.by_subject(&index).await? {
            Some(stored) => stored,
            None => {
                let key = SubjectKey::generate();
                let wrapped = key.wrap(&self.masters.current, &index)?;
                let stored = StoredKey {
                    key_id: key.id().to_owned(),
                    subject: index,
                    master_key_id: self.masters.current.id().to_owned(),
                    wrapped,
                };
                self.store.insert(stored, Utc::now()).await?
            }
        };
        let key = self.unwrap(&stored)?;
        self.remember(Some(index), &key);
        Ok(key)
    }

    /// The key `key_id`; `None` once its subject was erased.
    pub async fn key(&self, key_id: &str) -> Result<Option<SubjectKey>, VaultError> {
        match self.cached(key_id) {
            Some(Cached::Key(key)) => return Ok(Some(key)),
            Some(Cached::Erased) => return Ok(None),
            None => {}
        }
        let _turn = self.turn(Lookup::Id(key_id.to_owned())).await;
        // Found (or found erased) by the lookup this caller waited for.
        match self.cached(key_id) {
            Some(Cached::Key(key)) => return Ok(Some(key)),
            Some(Cached::Erased) => return Ok(None),
            None => {}
        }
        match self.store.by_id(key_id).await? {
            Some(stored) => {
                let key = self.unwrap(&stored)?;
                self.remember(None, &key);
                Ok(Some(key))
            }
            None => {
                let mut cache = self.cache.lock();
                cache.make_room(self.max, self.ttl);
                cache.by_id.insert(key_id.to_owned(), (Cached::Erased, Instant::now()));
                Ok(None)
            }
        }
    }

    /// `plaintext`, a personal field of `subject`, sealed for `place`.
    pub async fn seal(&self, subject: &str, place: Place<'_>, plaintext: &str) -> Result<Sealed, VaultError> {
        let key = self.key_of(subject).await?;
        Ok(Sealed::seal(&key, place, plaintext)?)
    }

    /// The plaintext of a sealed field, or erased.
    pub async fn open(&self, sealed: &Sealed, place: Place<'_>) -> Result<Personal<String>, VaultError> {
        match self.key(sealed.key_id()).await? {
            Some(key) => Ok(Personal::Value(sealed.open(&key, place)?)),
            None => Ok(Personal::Erased),
        }
    }

    /// The plaintext of a field in its text form, or erased.
    pub async fn open_text(&self, text: &str, place: Place<'_>) -> Result<Personal<String>, VaultError> {
        self.open(&Sealed::parse(text)?, place).await
    }

    /// Delete the key of `subject` (crypto-shredding); returns its id, if it had one.
    pub async fn erase(&self, subject: &BlindIndex) -> Result<Option<String>, VaultError> {
        let deleted = self.store.delete(subject).await?;
        let mut cache = self.cache.lock();
        cache.by_subject.remove(subject);
        if let Some(id) = &deleted {
            cache.by_id.insert(id.clone(), (Cached::Erased, Instant::now()));
        }
        Ok(deleted)
    }

    /// Keep the completion record of an erasure.
    pub async fn keep_erasure(&self, subject: &BlindIndex, record: &ErasureRecord) -> Result<(), VaultError> {
        Ok(self.store.keep_erasure(subject, record).await?)
    }

    /// The completion records of the erasures of `subject`.
    pub async fn erasures(&self, subject: &BlindIndex) -> Result<Vec<ErasureRecord>, VaultError> {
        Ok(self.store.erasures(subject).await?)
    }

    /// Rewrap every key wrapped under another master key than the current one, `batch` at a time;
    /// returns how many were rewrapped. A key wrapped under a master key this process does not
    /// hold fails the run: nothing is lost, but it cannot be rewrapped before that key is given.
    pub async fn rewrap_all(&self, batch: usize) -> Result<u64, VaultError> {
        let current = self.masters.current.id().to_owned();
        let mut done = 0;
        loop {
            let keys = self.store.wrapped_under_other(&current, batch.max(1)).await?;
            if keys.is_empty() {
                return Ok(done);
            }
            for stored in keys {
                let key = self.unwrap(&stored)?;
                let rewrapped = StoredKey {
                    wrapped: key.wrap(&self.masters.current, &stored.subject)?,
                    master_key_id: current.clone(),
                    ..stored.clone()
                };
                if self.store.rewrap(&rewrapped, &stored.master_key_id).await? {
                    done += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(master: &str, previous: Option<&str>) -> PrivacySettings {
        PrivacySettings {
            master_key: Some(master.into()),
            master_key_previous: previous.map(Into::into),
            ..PrivacySettings::default()
        }
    }

    const A: &str = "master-secret-a-0123456789abcdef0123";
    const B: &str = "master-secret-b-0123456789abcdef0123";

    #[tokio::test]
    async fn a_subject_keeps_one_key_and_erasure_makes_its_fields_unreadable() {
        let vault = Vault::new(KeyStore::memory(), &settings(A, None));
        let place = Place::new("wallets.owner", "w-1");
        let sealed = vault.seal("alice", place, "alice").await.unwrap();
        assert_eq!(vault.key_of("alice").await.unwrap().id(), sealed.key_id());
        assert_ne!(vault.key_of("bob").await.unwrap().id(), sealed.key_id());
        assert_eq!(vault.open(&sealed, place).await.unwrap(), Personal::Value("alice".into()));
        let erased = vault.erase(&vault.subject_index("alice")).await.unwrap();
        assert_eq!(erased.as_deref(), Some(sealed.key_id()));
        assert_eq!(vault.open(&sealed, place).await.unwrap(), Personal::Erased);
        // Another replica, whose cache never held the key, finds it gone too.
        let other = Vault::new(vault.store().clone(), &settings(A, None));
        assert_eq!(other.open(&sealed, place).await.unwrap(), Personal::Erased);
        // The subject comes back: a new key, the old fields stay erased.
        assert_ne!(vault.key_of("alice").await.unwrap().id(), sealed.key_id());
        assert_eq!(vault.open(&sealed, place).await.unwrap(), Personal::Erased);
    }

    #[tokio::test]
    async fn concurrent_callers_missing_the_cache_all_get_the_key_and_leave_no_lookup_behind() {
        let store = KeyStore::memory();
        let place = Place::new("wallets.owner", "w-1");
        let sealed = Vault::new(store.clone(), &settings(A, None)).seal("alice", place, "alice").await.unwrap();
        // Another replica's vault, its cache cold: many opens and seals of one subject at once.
        let cold = Vault::new(store, &settings(A, None));
        let opens = (0..32).map(|_| cold.open(&sealed, place));
        for opened in futures::future::join_all(opens).await {
            assert_eq!(opened.unwrap(), Personal::Value("alice".into()));
        }
        let keys = (0..32).map(|_| cold.key_of("alice"));
        for key in futures::future::join_all(keys).await {
            assert_eq!(key.unwrap().id(), sealed.key_id());
        }
        assert!(cold.lookups.lock().is_empty());
    }

    #[tokio::test]
    async fn rotation_rewraps_every_key_and_the_old_master_key_can_then_go() {
        let store = KeyStore::memory();
        let old = Vault::new(store.clone(), &settings(A, None));
        let place = Place::new("f", "r");
        let sealed = old.seal("alice", place, "secret").await.unwrap();
        old.key_of("bob").await.unwrap();
        let rotating = Vault::new(store.clone(), &settings(B, Some(A)));
        assert_eq!(rotating.open(&sealed, place).await.unwrap(), Personal::Value("secret".into()));
        assert_eq!(rotating.rewrap_all(1).await.unwrap(), 2);
        assert_eq!(rotating.rewrap_all(1).await.unwrap(), 0);
        let rotated = Vault::new(store, &settings(B, None));
        assert_eq!(rotated.open(&sealed, place).await.unwrap(), Personal::Value("secret".into()));
        let forgotten = Vault::new(KeyStore::memory(), &settings(B, None));
        assert_eq!(forgotten.open(&sealed, place).await.unwrap(), Personal::Erased);
    }

    #[tokio::test]
    async fn a_key_under_a_master_key_not_held_is_an_error_not_an_erasure() {
        let store = KeyStore::memory();
        let sealed =
            Vault::new(store.clone(), &settings(A, None)).seal("alice", Place::new("f", "r"), "x").await.unwrap();
        let wrong = Vault::new(store, &settings(B, None));
        assert!(matches!(
            wrong.open(&sealed, Place::new("f", "r")).await,
            Err(VaultError::Privacy(PrivacyError::UnknownMasterKey(_)))
        ));
    }
}
