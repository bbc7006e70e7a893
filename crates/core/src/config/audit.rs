//! `[audit]`: the key that signs export manifests and archives.

use super::{ConfigError, SecretSource};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[audit]`: the key that signs export manifests.
#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    /// Ed25519 seed (base64 of 32 random bytes, as `keys generate` writes), held by the
    /// daemon; absent, exports and archives are refused with the fix.
    pub signing_key: Option<SecretSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    signing_key_file: Option<PathBuf>,
    signing_key_env: Option<String>,
}

impl RawAudit {
    pub(super) fn resolve(self, source: &Path) -> Result<AuditConfig, ConfigError> {
        Ok(AuditConfig {
            signing_key: match (self.signing_key_file, self.signing_key_env) {
                (None, None) => None,
                (f, e) => Some(SecretSource::from_pair(
                    f,
                    e,
                    "[audit] signing_key",
                    source,
                )?),
            },
        })
    }
}
