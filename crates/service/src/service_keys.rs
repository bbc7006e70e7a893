//! Service API keys: 256 random bits shown once, kept only as their SHA-256. A key this
//! random needs no slow password hash: nobody can guess one, so the hash only has to be
//! one-way. A key is looked up by its hash, so no comparison ever runs over the key itself
//! and how long a lookup takes says nothing about any stored key.

use base64::Engine as _;
use qbo_core::domain::Environment;
use qbo_store::ApiKeyRecord;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Every key starts with this, so a leaked one is recognisable in a scan.
pub const KEY_PREFIX: &str = "qbok_";

/// A new key: the prefix and 32 random bytes, base64url.
pub fn generate() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, bytes.as_mut());
    Zeroizing::new(format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ))
}

/// What the database stores for a key: its SHA-256, in hex.
pub fn hash(key: &str) -> String {
    qbo_core::vault::hex(&Sha256::digest(key.as_bytes()))
}

/// Bumped whenever a key is revoked in this process, so every cached lookup is dropped
/// before the revoking request is answered ("refused at once"). A revocation by another
/// process reaches this one's cache within `CACHE_FOR` (or at once through PostgreSQL's
/// change relay).
static EPOCH: AtomicU64 = AtomicU64::new(0);

pub fn keys_changed() {
    EPOCH.fetch_add(1, Ordering::SeqCst);
}

/// How long a key found valid is trusted without asking the database again.
pub const CACHE_FOR: Duration = Duration::from_secs(1);

/// A key the token API accepted: who it is and what it may read.
#[derive(Debug, Clone)]
pub struct ServiceKey {
    pub id: i64,
    pub name: String,
    pub realms: Vec<String>,
    pub environment: Option<Environment>,
}

impl ServiceKey {
    /// Whether the key may read the connection of `env` to `realm`.
    pub fn may_read(&self, env: Environment, realm: &str) -> bool {
        self.environment.is_none_or(|e| e == env)
            && (self.realms.is_empty() || self.realms.iter().any(|r| r == realm))
    }

    /// The account the audit log names for this key's requests.
    pub fn account(&self) -> String {
        format!("service:{}", self.name)
    }
}

/// Why a request's key was not accepted; the answer to the client is the same 401 for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Missing,
    Unknown,
    Revoked,
}

impl KeyRefusal {
    pub fn describe(self) -> &'static str {
        match self {
            KeyRefusal::Missing => "no bearer key in the Authorization header",
            KeyRefusal::Unknown => "an unknown key",
            KeyRefusal::Revoked => "a revoked key",
        }
    }
}

/// The key, or why it was refused (with the stored key, when it exists but is revoked).
pub type KeyCheck = Result<Arc<ServiceKey>, (KeyRefusal, Option<ApiKeyRecord>)>;

type Found = (Instant, u64, Arc<ServiceKey>);

#[derive(Default)]
pub struct KeyCache {
    /// By key hash: when it was found valid, under which epoch, and the key.
    found: Mutex<HashMap<String, Found>>,
}

/// The key an `Authorization` header value presents, if any.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

impl KeyCache {
    /// The key behind an `Authorization` header value, from the cache or the database.
    pub async fn check(
        &self,
        service: &crate::Service,
        header: Option<&str>,
    ) -> anyhow::Result<KeyCheck> {
        let Some(key) = bearer(header) else {
            return Ok(Err((KeyRefusal::Missing, None)));
        };
        let h = hash(key);
        let epoch = EPOCH.load(Ordering::SeqCst);
        {
            let found = self.found.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, e, k)) = found.get(&h) {
                if *e == epoch && at.elapsed() < CACHE_FOR {
                    return Ok(Ok(k.clone()));
                }
            }
        }
        let Some(rec) = service.store().api_key_by_hash(&h).await? else {
            return Ok(Err((KeyRefusal::Unknown, None)));
        };
        if rec.revoked_at.is_some() {
            return Ok(Err((KeyRefusal::Revoked, Some(rec))));
        }
        let key = Arc::new(ServiceKey {
            id: rec.id,
            name: rec.name,
            realms: rec.realms,
            environment: rec.environment,
        });
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: only valid keys are kept, and an expired entry is replaced, not added.
        found.retain(|_, (at, e, _)| *e == epoch && at.elapsed() < CACHE_FOR);
        found.insert(h, (Instant::now(), epoch, key.clone()));
        Ok(Ok(key))
    }

    pub fn clear(&self) {
        self.found.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed_one_way() {
        let a = generate();
        let b = generate();
        assert_ne!(*a, *b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[KEY_PREFIX.len()..]));
    }

    #[test]
    fn a_key_reads_only_its_realms_and_environment() {
        let k = ServiceKey {
            id: 1,
            name: "books".into(),
            realms: vec!["1".into()],
            environment: Some(Environment::Sandbox),
        };
        assert!(k.may_read(Environment::Sandbox, "1"));
        assert!(!k.may_read(Environment::Production, "1"));
        assert!(!k.may_read(Environment::Sandbox, "2"));
        let all = ServiceKey {
            realms: vec![],
            environment: None,
            ..k
        };
        assert!(all.may_read(Environment::Production, "2"));
    }
}
