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
    (
        5,
        "audit archive",
        include_str!("migrations/sqlite/0005_audit_archive.sql"),
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
        5,
        "audit archive",
        include_str!("migrations/postgres/0005_audit_archive.sql"),
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

impl Store {
    /// Applies every pending migration; returns how many were applied.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        let before = self.applied_migrations().await.unwrap_or(0);
        match self {
            Store::Sqlite(s) => migrator(SQLITE).run(&s.pool).await,
            Store::Postgres(p) => migrator(POSTGRES).run(&p.pool).await,
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
