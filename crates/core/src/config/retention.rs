//! `[retention]`: how long revoked connections and audit events are kept.

use super::SectionError;
use serde::Deserialize;
use std::path::PathBuf;

/// How long revoked tenants are kept before `purge` may delete them. Serialized for the
/// posture report, which shows every retention key as configured.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after its revocation a revoked connection is kept (its audit history stays).
    #[serde(default = "default_revoked_days")]
    pub revoked_days: u32,
    /// Audit events older than this many days are archived (an export with its signed
    /// manifest in `archive_dir`) and then removed from the database. Absent: never.
    #[serde(default)]
    pub audit_days: Option<u32>,
    /// Where archives of the audit log are written (needed with `audit_days`).
    #[serde(default)]
    pub archive_dir: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            revoked_days: default_revoked_days(),
            audit_days: None,
            archive_dir: None,
        }
    }
}

fn default_revoked_days() -> u32 {
    90
}

impl RetentionConfig {
    pub(super) fn check(&self) -> Result<(), SectionError> {
        if self.audit_days == Some(0) {
            return Err(SectionError::from(
                "[retention] audit_days is 0, which would archive every event at once; use a number of days such as 400, or remove it to keep events forever"
            ));
        }
        if self.audit_days.is_some() && self.archive_dir.is_none() {
            return Err(SectionError::from(
                "[retention] audit_days is set but archive_dir is not; name the directory the archives go to (events are only removed once archived)"
            ));
        }
        Ok(())
    }
}
