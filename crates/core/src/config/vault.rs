//! `[vault]`: the key tokens are sealed with, the older keys still accepted for opening,
//! and the key fingerprints are made with.

use super::{ConfigError, SecretSource};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The key new values are sealed with.
    pub key: SecretSource,
    /// Older keys still accepted for opening, so keys can rotate without a flag day.
    pub old_keys: Vec<SecretSource>,
    /// The key token fingerprints are made with: never rotated with the token key, so a
    /// token keeps its fingerprint forever. Absent on installs from before it existed (the
    /// vault then derives one from the token key, and `keys rotate` refuses).
    pub fingerprint_key: Option<SecretSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVault {
    key_file: Option<PathBuf>,
    key_env: Option<String>,
    #[serde(default)]
    old_key_files: Vec<PathBuf>,
    #[serde(default)]
    old_key_envs: Vec<String>,
    fingerprint_key_file: Option<PathBuf>,
    fingerprint_key_env: Option<String>,
}

impl RawVault {
    pub(super) fn resolve(self, source: &Path) -> Result<VaultConfig, ConfigError> {
        let v = self;
        let key = SecretSource::from_pair(v.key_file, v.key_env, "[vault] key", source)?;
        let mut old_keys: Vec<SecretSource> = v
            .old_key_files
            .into_iter()
            .map(SecretSource::File)
            .collect();
        old_keys.extend(v.old_key_envs.into_iter().map(SecretSource::Env));
        let fingerprint_key = match (v.fingerprint_key_file, v.fingerprint_key_env) {
            (None, None) => None,
            (f, e) => Some(SecretSource::from_pair(
                f,
                e,
                "[vault] fingerprint_key",
                source,
            )?),
        };
        Ok(VaultConfig {
            key,
            old_keys,
            fingerprint_key,
        })
    }
}
