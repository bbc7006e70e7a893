//! `[log]`: what the daemon logs, in which format, where.

use super::SectionError;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter, e.g. "info", "qbo_console=debug" (every crate of the product) or
    /// "qbo_engine=debug" (the lifecycle only).
    #[serde(default = "default_log_level")]
    pub level: String,
    /// "text" or "json".
    #[serde(default = "default_log_format")]
    pub format: String,
    /// Append logs here instead of stderr.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: default_log_format(),
            file: None,
        }
    }
}

fn default_log_level() -> String {
    "warn".into()
}
fn default_log_format() -> String {
    "text".into()
}

impl LogConfig {
    pub(super) fn check(&self) -> Result<(), SectionError> {
        if !matches!(self.format.as_str(), "text" | "json") {
            return Err(SectionError::from(format!(
                "[log] format {:?}: expected \"text\" or \"json\"",
                self.format
            )));
        }
        Ok(())
    }
}
