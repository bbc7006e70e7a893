//! Schema migrations, one folder per backend, compiled into the binary.

use super::Store;
use anyhow::Context;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/sqlite/0001_init.sql")),
    (
        2,
        "schedule",
        include_str!("migrations/sqlite/0002_schedule.sql"),
    ),
    (
        3,
        "audit time",
        include_str!("migrations/sqlite/0003_audit_time.sql"),
    ),
    (4, "links", include_str!("migrations/sqlite/0004_links.sql")),
    (
        5,
        "audit archive",
        include_str!("migrations/sqlite/0005_audit_archive.sql"),
    ),
    (
        6,
        "token api",
        include_str!("migrations/sqlite/0006_token_api.sql"),
    ),
    (
        7,
        "health alerts",
        include_str!("migrations/sqlite/0007_health_alerts.sql"),
    ),
    (
        8,
        "lease fence",
        include_str!("migrations/sqlite/0008_lease_fence.sql"),
    ),
    (
        9,
        "actor kind",
        include_str!("migrations/sqlite/0009_actor_kind.sql"),
    ),
    (
        11,
        "audit quarantine",
        include_str!("migrations/sqlite/0011_audit_quarantine.sql"),
    ),
    (
        12,
        "claim order",
        include_str!("migrations/sqlite/0012_claim_order.sql"),
    ),
    (
        13,
        "alerts by page",
        include_str!("migrations/sqlite/0013_alerts_by_page.sql"),
    ),
    (
        14,
        "link campaigns",
        include_str!("migrations/sqlite/0014_link_campaigns.sql"),
    ),
    (
        15,
        "incidents",
        include_str!("migrations/sqlite/0015_incidents.sql"),
    ),
    (
        16,
        "incident evidence",
        include_str!("migrations/sqlite/0016_incident_evidence.sql"),
    ),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/postgres/0001_init.sql")),
    (
        2,
        "schedule",
        include_str!("migrations/postgres/0002_schedule.sql"),
    ),
    (
        3,
        "audit time",
        include_str!("migrations/postgres/0003_audit_time.sql"),
    ),
    (
        4,
        "links",
        include_str!("migrations/postgres/0004_links.sql"),
    ),
    (
        5,
        "audit archive",
        include_str!("migrations/postgres/0005_audit_archive.sql"),
    ),
    (
        6,
        "token api",
        include_str!("migrations/postgres/0006_token_api.sql"),
    ),
    (
        7,
        "health alerts",
        include_str!("migrations/postgres/0007_health_alerts.sql"),
    ),
    (
        8,
        "lease fence",
        include_str!("migrations/postgres/0008_lease_fence.sql"),
    ),
    (
        9,
        "actor kind",
        include_str!("migrations/postgres/0009_actor_kind.sql"),
    ),
    (
        11,
        "audit quarantine",
        include_str!("migrations/postgres/0011_audit_quarantine.sql"),
    ),
    (
        12,
        "claim order",
        include_str!("migrations/postgres/0012_claim_order.sql"),
    ),
    (
        13,
        "alerts by page",
        include_str!("migrations/postgres/0013_alerts_by_page.sql"),
    ),
    (
        14,
        "link campaigns",
        include_str!("migrations/postgres/0014_link_campaigns.sql"),
    ),
    (
        15,
        "incidents",
        include_str!("migrations/postgres/0015_incidents.sql"),
    ),
    (
        16,
        "incident evidence",
        include_str!("migrations/postgres/0016_incident_evidence.sql"),
    ),
];

fn migrator(list: &[(i64, &'static str, &'static str)]) -> Migrator {
    // Built by hand rather than with `sqlx::migrate!`, which needs sqlx's full macro stack
    // at build time; the result is the same table of versioned, checksummed scripts.
    Migrator {
        migrations: Cow::Owned(
            list.iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect(),
        ),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Every migration this binary knows for `backend`, in order: what a new database gets.
pub fn migrations_of(backend: super::Backend) -> Vec<(i64, &'static str)> {
    let list = match backend {
        super::Backend::Sqlite => SQLITE,
        super::Backend::Postgres => POSTGRES,
    };
    list.iter().map(|(v, d, _)| (*v, *d)).collect()
}

/// A newer qbo-console migrated this database past what this binary knows.
#[derive(Debug, thiserror::Error)]
#[error(
    "the database's schema is at version {found}, newer than this qbo-console knows (up to {known}): \
     a newer qbo-console has upgraded it. Run that version (or a newer one); an older binary \
     would misread tables it does not know. Nothing was changed"
)]
pub struct NewerSchema {
    pub found: i64,
    pub known: i64,
}

impl Store {
    fn known(&self) -> &'static [(i64, &'static str, &'static str)] {
        match self {
            Store::Sqlite(_) => SQLITE,
            Store::Postgres(_) => POSTGRES,
        }
    }

    /// The versions this binary knows, with their descriptions, in order.
    pub fn known_migrations(&self) -> Vec<(i64, &'static str)> {
        self.known().iter().map(|(v, d, _)| (*v, *d)).collect()
    }

    /// The versions applied to this database (none on a new one).
    pub async fn applied_versions(&self) -> anyhow::Result<Vec<i64>> {
        let exists: bool = match self {
            Store::Sqlite(s) => sqlx::query_scalar(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(&s.pool)
            .await?,
            Store::Postgres(p) => sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&p.pool)
                .await?,
        };
        if !exists {
            return Ok(Vec::new());
        }
        Ok(super::dispatch!(self, p => sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version").fetch_all(p).await)?)
    }

    /// What `migrate` would apply, in order (`db migrate --dry-run`); refused, like
    /// `migrate`, when the database is newer than this binary.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<(i64, &'static str)>> {
        let applied = self.applied_versions().await?;
        self.refuse_newer(&applied)?;
        Ok(self
            .known_migrations()
            .into_iter()
            .filter(|(v, _)| !applied.contains(v))
            .collect())
    }

    fn refuse_newer(&self, applied: &[i64]) -> Result<(), NewerSchema> {
        let known = self.known().last().map_or(0, |m| m.0);
        match applied.iter().copied().max() {
            Some(found) if found > known => Err(NewerSchema { found, known }),
            _ => Ok(()),
        }
    }

    /// Applies every pending migration; returns how many were applied.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let applied = self.applied_versions().await?;
        self.refuse_newer(&applied)?;
        self.migrate_list(self.known()).await
    }

    /// Applies the migrations up to and including `last`: a database as an older release
    /// left it, for the tests of every upgrade path.
    pub async fn migrate_through(&self, last: i64) -> anyhow::Result<usize> {
        let known = self.known();
        let n = known.iter().take_while(|m| m.0 <= last).count();
        self.migrate_list(&known[..n]).await
    }

    async fn migrate_list(
        &self,
        list: &[(i64, &'static str, &'static str)],
    ) -> anyhow::Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        match self {
            Store::Sqlite(s) => migrator(list).run(&s.pool).await,
            Store::Postgres(p) => migrator(list).run(&p.pool).await,
        }
        .context("database migration failed")?;
        let after = self.applied_migrations().await?;
        Ok(after.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> anyhow::Result<usize> {
        let n: i64 = super::dispatch!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").fetch_one(p).await)?;
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::{migrator, SQLITE};
    use crate::Store;

    /// 0004 rebuilds `connections` on SQLite (to let a pending row wait without a realm):
    /// every row and the AUTOINCREMENT high-water mark must survive, or a purged
    /// connection's id could be handed out again and inherit its audit history.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_links_migration_keeps_every_connection_and_never_reuses_a_purged_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = qbo_core::config::DatabaseConfig {
            url: format!("sqlite://{}/t.db", dir.path().display()),
            max_connections: 1,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = Store::connect(&db, None).await.unwrap();
        let Store::Sqlite(s) = &store else {
            unreachable!()
        };
        migrator(&SQLITE[..3]).run(&s.pool).await.unwrap();
        for (id, realm) in [(1, "111"), (2, "222"), (3, "333")] {
            sqlx::query(
                "INSERT INTO connections (id, tenant, realm_id, environment, status, created_at, updated_at, refresh_token) \
                 VALUES ($1, 't', $2, 'sandbox', 'active', '2026-01-01', '2026-01-01', x'0102')",
            )
            .bind(id)
            .bind(realm)
            .execute(&s.pool)
            .await
            .unwrap();
        }
        // Connection 3 was purged.
        sqlx::query("DELETE FROM connections WHERE id = 3")
            .execute(&s.pool)
            .await
            .unwrap();
        assert_eq!(store.migrate().await.unwrap(), SQLITE.len() - 3);
        let kept: Vec<(i64, String, Vec<u8>)> =
            sqlx::query_as("SELECT id, realm_id, refresh_token FROM connections ORDER BY id")
                .fetch_all(&s.pool)
                .await
                .unwrap();
        assert_eq!(
            kept,
            vec![(1, "111".into(), vec![1, 2]), (2, "222".into(), vec![1, 2])]
        );
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO connections (tenant, environment, status, created_at, updated_at) \
             VALUES ('new', 'sandbox', 'pending', '2026-01-02', '2026-01-02') RETURNING id",
        )
        .fetch_one(&s.pool)
        .await
        .unwrap();
        assert_eq!(next, 4);
        // Only a pending row may lack a realm, and a known realm is still unique.
        let no_realm = sqlx::query(
            "INSERT INTO connections (tenant, environment, status, created_at, updated_at) \
             VALUES ('x', 'sandbox', 'active', '2026-01-02', '2026-01-02')",
        )
        .execute(&s.pool)
        .await;
        assert!(no_realm.is_err());
        let twice = sqlx::query(
            "INSERT INTO connections (tenant, realm_id, environment, status, created_at, updated_at) \
             VALUES ('y', '111', 'sandbox', 'active', '2026-01-02', '2026-01-02')",
        )
        .execute(&s.pool)
        .await;
        assert!(twice.is_err());
    }
}
