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

use crate::config::ConfigError;
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
    Sqlite(SqliteStore),
    Postgres(PgPool),
}

/// A SQLite pool and the gate its writers pass one at a time.
///
/// SQLite lets one writer in at a time. A writer that finds the lock taken waits in
/// SQLite's busy handler, which sleeps in steps of 1 to 100 ms without knowing when the
/// lock frees; under load (the scheduler claiming while the group-commit writer commits)
/// most of the time went there with both cores idle. Writers of this process queue at this
/// gate instead and go in the moment the previous one finishes; the busy handler remains
/// for writers in other processes (CLI, a second tool).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub pool: SqlitePool,
    gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Waits for this process's turn to write; hold the guard until the write is done.
    pub(crate) async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.gate.clone().lock_owned().await
    }
}

/// Runs `$body` with `$c` bound to the concrete pool/connection of either backend.
macro_rules! dispatch {
    ($on:expr, $c:ident => $body:expr) => {
        match $on {
            $crate::store::Store::Sqlite(s) => {
                let $c = &s.pool;
                $body
            }
            $crate::store::Store::Postgres($c) => $body,
        }
    };
}

/// Same as `dispatch!`, for a single-statement write: on SQLite it waits for this
/// process's write turn first (see `SqliteStore`).
macro_rules! dispatch_write {
    ($on:expr, $c:ident => $body:expr) => {
        match $on {
            $crate::store::Store::Sqlite(s) => {
                let _turn = s.write_turn().await;
                let $c = &s.pool;
                $body
            }
            $crate::store::Store::Postgres($c) => $body,
        }
    };
}
pub(crate) use dispatch;
pub(crate) use dispatch_write;

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

/// Splits `rows` into pieces of a few fixed sizes (largest first), so a multi-row
/// statement built for each piece has one of only a handful of texts. Both backends cache
/// prepared statements by text; a statement built for every batch size would be parsed
/// and planned afresh on almost every group commit.
pub(crate) fn fixed_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    const SIZES: [usize; 4] = [128, 32, 8, 1];
    std::iter::from_fn(move || {
        let size = SIZES.into_iter().find(|s| *s <= rows.len())?;
        let (piece, rest) = rows.split_at(size);
        rows = rest;
        Some(piece)
    })
}

/// A write transaction. Dropping it without `commit` rolls back. It remembers what it
/// changed, so that subscribers hear of it once it commits.
pub struct Tx {
    pub(crate) inner: TxInner,
    pub(crate) changes: Vec<Change>,
    /// SQLite: this process's write turn, held until commit or `rollback`. A transaction
    /// merely dropped queues its ROLLBACK on the connection's worker and gives the turn up
    /// at once, so the next writer may briefly meet SQLite's busy handler: correct, only
    /// slower. Paths that abandon a transaction on purpose call `rollback`.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
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
    /// Opens the database `db` names. A SQLite file is created here, before SQLite sees
    /// it, owner-only (or 0640 for `file_group`), and refused when open to others.
    pub async fn connect(
        db: &crate::config::DatabaseConfig,
        file_group: Option<&str>,
    ) -> anyhow::Result<Store> {
        let url = db.url.as_str();
        let max_connections = db.max_connections;
        let shown = crate::config::redact_url(url);
        if url.starts_with("sqlite:") {
            let file = crate::config::sqlite_file(url)
                .map_err(|m| ConfigError(format!("[database] url {shown:?}: {m}")))?;
            if let Some(path) = &file {
                crate::file_modes::NewFiles { group: file_group }.prepare_database(path)?;
            }
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
            Ok(Store::Sqlite(SqliteStore {
                pool,
                gate: Default::default(),
            }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)
                .with_context(|| format!("database url {shown} is not a valid PostgreSQL URL"))?;
            let server = format!("{}:{}", opts.get_host(), opts.get_port());
            // The pool retries a refused connection until its acquire timeout, and a host
            // that drops packets holds the TCP handshake for minutes: bound the first
            // connection by what the operator chose, and name the server that did not answer.
            let connecting = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(60))
                .connect_with(opts);
            let wait = humantime::format_duration(db.connect_timeout);
            let pool = match tokio::time::timeout(db.connect_timeout, connecting).await {
                Ok(Ok(pool)) => pool,
                Ok(Err(e)) => {
                    return Err(ConfigError(format!(
                        "cannot connect to PostgreSQL at {server} ([database] url {shown}): {}; \
                         check the url and that the server accepts connections",
                        e.to_string().replace('\n', " ")
                    ))
                    .into())
                }
                Err(_) => {
                    return Err(ConfigError(format!(
                        "no answer from PostgreSQL at {server} within {wait} ([database] url \
                         {shown}); check that the server runs and is reachable from here, or \
                         raise [database] connect_timeout"
                    ))
                    .into())
                }
            };
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
        let (inner, turn) = match self {
            Store::Sqlite(s) => {
                let turn = s.write_turn().await;
                let t = s
                    .pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .context("cannot start a database transaction")?;
                (TxInner::Sqlite(t), Some(turn))
            }
            Store::Postgres(p) => {
                let t = p
                    .begin()
                    .await
                    .context("cannot start a database transaction")?;
                (TxInner::Postgres(t), None)
            }
        };
        Ok(Tx {
            inner,
            changes: Vec::new(),
            _turn: turn,
        })
    }

    pub async fn close(&self) {
        dispatch!(self, p => p.close().await)
    }
}

impl Tx {
    /// Abandons the transaction and waits for the rollback before the next writer's turn.
    pub async fn rollback(self) -> anyhow::Result<()> {
        let Tx { inner, _turn, .. } = self;
        match inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        }
        .context("cannot roll back the database transaction")?;
        drop(_turn);
        Ok(())
    }

    /// Commits, returning what changed so the caller can tell subscribers.
    pub async fn commit(self) -> anyhow::Result<Vec<Change>> {
        let Tx {
            inner,
            changes,
            _turn,
        } = self;
        match inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        }
        .context("cannot commit the database transaction")?;
        drop(_turn);
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::fixed_chunks;

    #[test]
    fn fixed_chunks_cover_every_row_once_in_a_few_sizes() {
        for n in [0usize, 1, 7, 8, 9, 31, 32, 33, 127, 128, 129, 300, 1000] {
            let rows: Vec<usize> = (0..n).collect();
            let pieces: Vec<&[usize]> = fixed_chunks(&rows).collect();
            let joined: Vec<usize> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
            assert_eq!(joined, rows, "n = {n}");
            assert!(
                pieces.iter().all(|p| [128, 32, 8, 1].contains(&p.len())),
                "n = {n}: sizes {:?}",
                pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
            );
            // Largest first: never a smaller piece before a larger one.
            assert!(pieces.windows(2).all(|w| w[0].len() >= w[1].len()));
        }
    }
}
