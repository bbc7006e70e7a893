//! `[database]`: where the rows live. Which engine the URL names is checked here; what a
//! `sqlite:` URL means (its file, and that it must be one) is the store's to read, where the
//! file is opened (`qbo_store::sqlite_file`).

use super::SectionError;
use crate::text::redact_url;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long opening the database may take before the process gives up and says so
    /// (an unreachable PostgreSQL host otherwise holds the start for a minute).
    #[serde(with = "humantime_serde", default = "default_database_connect_timeout")]
    pub connect_timeout: Duration,
}

fn default_max_connections() -> u32 {
    8
}
fn default_database_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

impl DatabaseConfig {
    pub(super) fn check(self) -> Result<DatabaseConfig, SectionError> {
        let url = self.url.trim().to_string();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(SectionError::from(format!(
                "[database] url {:?}: unsupported scheme; use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(&url)
            )));
        }
        if self.connect_timeout.is_zero() {
            return Err(SectionError::from(
                "[database] connect_timeout must be positive; 10s is a good value",
            ));
        }
        Ok(DatabaseConfig {
            url,
            max_connections: self.max_connections.max(1),
            connect_timeout: self.connect_timeout,
        })
    }
}
