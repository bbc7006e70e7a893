//! Where a secret lives: a named environment variable or a mode-checked file, never the
//! configuration itself. Holding a `SecretSource` never holds the secret.

use super::ConfigError;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where a secret lives. Holding one of these never holds the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl SecretSource {
    pub(super) fn from_pair(
        file: Option<PathBuf>,
        env: Option<String>,
        key: &str,
        source: &Path,
    ) -> Result<Self, ConfigError> {
        match (file, env) {
            (Some(f), None) => Ok(SecretSource::File(f)),
            (None, Some(e)) => Ok(SecretSource::Env(e)),
            (Some(_), Some(_)) => Err(ConfigError(format!(
                "config {}: {key}_file and {key}_env are both set; keep exactly one",
                source.display()
            ))),
            (None, None) => Err(ConfigError(format!(
                "config {}: missing {key}_file or {key}_env (secrets are never written inline; \
                 name the environment variable or file that holds it)",
                source.display()
            ))),
        }
    }

    /// Reads the secret, trimmed of surrounding whitespace. The error names where it looked,
    /// never what it found.
    pub fn read(&self, what: &str) -> Result<Zeroizing<String>, ConfigError> {
        let value = match self {
            SecretSource::Env(name) => std::env::var(name).map_err(|_| {
                ConfigError(format!(
                    "{what}: environment variable {name} is not set; export it or point the \
                     config at a file with the *_file key"
                ))
            })?,
            SecretSource::File(path) => {
                use std::io::Read;
                let cannot = |e: std::io::Error| {
                    ConfigError(format!(
                        "{what}: cannot read secret file {}: {e}",
                        path.display()
                    ))
                };
                // Opened once and checked on that descriptor: through a symlink, the mode
                // that counts is the target's, which is the file actually read.
                let mut file = std::fs::File::open(path).map_err(cannot)?;
                crate::file_modes::refuse_shared_secret(&file, path, what)?;
                let mut text = String::new();
                file.read_to_string(&mut text).map_err(cannot)?;
                text
            }
        };
        let value = Zeroizing::new(value);
        let trimmed = Zeroizing::new(value.trim().to_string());
        if trimmed.is_empty() {
            return Err(ConfigError(format!("{what}: {} is empty", self.describe())));
        }
        Ok(trimmed)
    }

    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(n) => format!("environment variable {n}"),
            SecretSource::File(p) => format!("file {}", p.display()),
        }
    }
}
