//! The database: one `Store` over SQLite (the embedded default) or PostgreSQL (several
//! daemons sharing the work), chosen by the URL scheme. Queries are written once and bound
//! at run time (no compile-time macros, so building needs no database); `dispatch!` expands
//! each body for both backends so the type checker sees each concretely.

mod connections;
mod migrate;
mod rows;
mod schedule;

pub use rows::{ConnectionFilter, ConnectionRecord, NewConnection, SealedTokens, TokenUpdate};
pub use schedule::Claimed;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$c` bound to the concrete pool/connection of either backend.
macro_rules! dispatch {
    ($on:expr, $c:ident => $body:expr) => {
        match $on {
            $crate::store::Store::Sqlite($c) => $body,
            $crate::store::Store::Postgres($c) => $body,
        }
    };
}
pub(crate) use dispatch;

/// Same as `dispatch!`, for an open transaction.
macro_rules! dispatch_tx {
    ($on:expr, $c:ident => $body:expr) => {
        match &mut $on.inner {
            $crate::store::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use dispatch_tx;

/// A write transaction. Dropping it without `commit` rolls back. It remembers what it
/// changed, so that subscribers hear of it once it commits.
pub struct Tx {
    pub(crate) inner: TxInner,
    pub(crate) changes: Vec<Change>,
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Something subscribers (the TUI, `watch`) want to hear about: an audit event was
/// appended, usually with the connection it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub audit_seq: i64,
    pub connection_id: Option<i64>,
}

/// The PostgreSQL channel that carries `Change`s between daemons.
pub const NOTIFY_CHANNEL: &str = "qbo_console_changes";

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        let shown = crate::config::redact_url(url);
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("database url {shown} is not a valid SQLite URL"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed refresh token survives power loss, not just a crash.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot open SQLite database {shown}"))?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .with_context(|| format!("database url {shown} is not a valid PostgreSQL URL"))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
            Ok(Store::Postgres(pool))
        } else {
            anyhow::bail!("database url {shown}: unsupported scheme; use sqlite://PATH or postgres://USER@HOST/DB")
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes can fail with
    /// SQLITE_BUSY when another writer got there first, and busy_timeout cannot help it.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        let inner = match self {
            Store::Sqlite(p) => TxInner::Sqlite(
                p.begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("cannot start a database transaction")?,
            ),
            Store::Postgres(p) => TxInner::Postgres(
                p.begin()
                    .await
                    .context("cannot start a database transaction")?,
            ),
        };
        Ok(Tx {
            inner,
            changes: Vec::new(),
        })
    }

    pub async fn close(&self) {
        dispatch!(self, p => p.close().await)
    }
}

impl Tx {
    /// Commits, returning what changed so the caller can tell subscribers.
    pub async fn commit(self) -> anyhow::Result<Vec<Change>> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        }
        .context("cannot commit the database transaction")?;
        Ok(self.changes)
    }
}
