//! Mapping callers to roles: by OS account name or `@group`, from `[roles]`.

use qbo_core::config::RolesConfig;
use qbo_core::identity::Role;

#[derive(Debug, Clone)]
pub struct RoleMap {
    /// In precedence order: a caller matching several entries gets the first.
    entries: Vec<(Role, Vec<String>)>,
}

impl RoleMap {
    pub fn new(cfg: &RolesConfig) -> RoleMap {
        RoleMap {
            entries: vec![
                (Role::Admin, cfg.admin.clone()),
                (Role::Support, cfg.support.clone()),
                (Role::Auditor, cfg.auditor.clone()),
                (Role::Viewer, cfg.viewer.clone()),
            ],
        }
    }

    /// The role of an account with these groups; `Unmapped` when nothing matches.
    pub fn role_for(&self, account: &str, groups: &[String]) -> Role {
        for (role, members) in &self.entries {
            let hit = members.iter().any(|m| match m.strip_prefix('@') {
                Some(g) => groups.iter().any(|x| x == g),
                None => m == account,
            });
            if hit {
                return *role;
            }
        }
        Role::Unmapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_groups_map_with_precedence() {
        let m = RoleMap::new(&RolesConfig {
            admin: vec!["alice".into()],
            support: vec!["@helpdesk".into()],
            auditor: vec!["@audit".into(), "bob".into()],
            viewer: vec!["@staff".into()],
        });
        assert_eq!(m.role_for("alice", &[]), Role::Admin);
        assert_eq!(
            m.role_for("carol", &["staff".into(), "helpdesk".into()]),
            Role::Support
        );
        assert_eq!(m.role_for("bob", &[]), Role::Auditor);
        assert_eq!(m.role_for("dave", &["staff".into()]), Role::Viewer);
        assert_eq!(m.role_for("eve", &["nobody".into()]), Role::Unmapped);
    }
}
