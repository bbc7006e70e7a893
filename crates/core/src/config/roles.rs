//! `[roles]`: who may do what, by OS account or `@group`.

use super::SectionError;
use serde::Deserialize;

/// Who may do what, by OS account or `@group`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub support: Vec<String>,
    #[serde(default)]
    pub auditor: Vec<String>,
    #[serde(default)]
    pub viewer: Vec<String>,
}

impl RolesConfig {
    pub(super) fn check(&self) -> Result<(), SectionError> {
        for (role, members) in [
            ("admin", &self.admin),
            ("support", &self.support),
            ("auditor", &self.auditor),
            ("viewer", &self.viewer),
        ] {
            if let Some(bad) = members
                .iter()
                .find(|m| m.trim().is_empty() || m.trim() == "@")
            {
                return Err(SectionError::from(format!(
                    "[roles] {role} has an empty member {bad:?}; use an account name or @group"
                )));
            }
        }
        Ok(())
    }
}
