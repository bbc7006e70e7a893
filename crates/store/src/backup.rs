//! Backups of a SQLite database: an online snapshot (`VACUUM INTO`, one read transaction,
//! so a consistent point while the daemon goes on writing) and reading a snapshot back
//! for its manifest and for the restore drill. PostgreSQL is backed up with its own tools.

use super::{dispatch, Store};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Row};
use std::path::Path;

/// What a backup holds, as its manifest and the drill read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    pub schema_version: i64,
    pub connections: i64,
    pub audit_head_seq: i64,
    pub audit_head_hash: String,
}

/// One connection's stored refresh token in a database (a backup, or the live one).
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub id: i64,
    pub tenant: String,
    pub environment: Environment,
    pub realm_id: Option<String>,
    pub status: String,
    pub refresh_token: Option<Vec<u8>>,
    pub previous_refresh_token: Option<Vec<u8>>,
    pub previous_refresh_replaced_at: Option<DateTime<Utc>>,
}

const STORED: &str = "SELECT id, tenant, environment, realm_id, status, refresh_token, \
     previous_refresh_token, previous_refresh_replaced_at FROM connections ORDER BY id";

fn stored<R: Row>(r: &R) -> anyhow::Result<StoredRefresh>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> DateTime<Utc>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let env: String = r.try_get("environment")?;
    Ok(StoredRefresh {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        environment: env.parse()?,
        realm_id: r.try_get("realm_id")?,
        status: r.try_get("status")?,
        refresh_token: r.try_get("refresh_token")?,
        previous_refresh_token: r.try_get("previous_refresh_token")?,
        previous_refresh_replaced_at: r.try_get("previous_refresh_replaced_at")?,
    })
}

impl Store {
    /// Writes a consistent snapshot of the live SQLite database to `path` (which must not
    /// exist): one read transaction, the daemon's writes going on beside it.
    pub async fn backup_into(&self, path: &Path) -> anyhow::Result<()> {
        let Store::Sqlite(s) = self else {
            anyhow::bail!("an online backup by qbo-console is of SQLite only");
        };
        let target = path
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&s.pool)
            .await?;
        Ok(())
    }

    /// The live database's connections with their stored refresh tokens (sealed).
    pub async fn stored_refresh_tokens(&self) -> anyhow::Result<Vec<StoredRefresh>> {
        match self {
            Store::Sqlite(s) => sqlx::query(STORED)
                .fetch_all(&s.pool)
                .await?
                .iter()
                .map(stored)
                .collect(),
            Store::Postgres(s) => sqlx::query(STORED)
                .fetch_all(&s.pool)
                .await?
                .iter()
                .map(stored)
                .collect(),
        }
    }

    /// The live database's schema version and chain head.
    pub async fn backup_facts(&self) -> anyhow::Result<BackupFacts> {
        let (schema_version, connections, audit_head_seq, audit_head_hash) = dispatch!(self, p => {
            sqlx::query_as::<_, (i64, i64, i64, String)>(FACTS).fetch_one(p).await
        })?;
        Ok(BackupFacts {
            schema_version,
            connections,
            audit_head_seq,
            audit_head_hash,
        })
    }
}

const FACTS: &str =
    "SELECT (SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success), \
     (SELECT COUNT(*) FROM connections), \
     COALESCE((SELECT last_seq FROM audit_head), 0), \
     COALESCE((SELECT last_hash FROM audit_head), '')";

async fn open_backup(path: &Path) -> anyhow::Result<sqlx::SqliteConnection> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    Ok(sqlx::SqliteConnection::connect_with(&opts).await?)
}

async fn facts_of(c: &mut sqlx::SqliteConnection) -> anyhow::Result<BackupFacts> {
    let (schema_version, connections, audit_head_seq, audit_head_hash) =
        sqlx::query_as::<_, (i64, i64, i64, String)>(FACTS)
            .fetch_one(c)
            .await?;
    Ok(BackupFacts {
        schema_version,
        connections,
        audit_head_seq,
        audit_head_hash,
    })
}

/// What a backup file holds, for its manifest: read only, without its rows.
pub async fn read_backup_facts(path: &Path) -> anyhow::Result<BackupFacts> {
    let mut c = open_backup(path).await?;
    let facts = facts_of(&mut c).await?;
    c.close().await?;
    Ok(facts)
}

/// A backup file opened read only: what it holds, and its connections' stored tokens.
pub async fn read_backup(path: &Path) -> anyhow::Result<(BackupFacts, Vec<StoredRefresh>)> {
    let mut c = open_backup(path).await?;
    let facts = facts_of(&mut c).await?;
    let rows = sqlx::query(STORED)
        .fetch_all(&mut c)
        .await?
        .iter()
        .map(stored)
        .collect::<anyhow::Result<Vec<_>>>()?;
    c.close().await?;
    Ok((facts, rows))
}
