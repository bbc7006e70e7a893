//! The database: one `Store` over SQLite (the embedded default) or PostgreSQL (several
//! daemons sharing the work), chosen by the URL scheme. Queries are written once and bound
//! at run time (no compile-time macros, so building needs no database); `dispatch!` expands
//! each body for both backends so the type checker sees each concretely.

mod api_keys;
pub mod audit;
mod backup;
mod connection_scan;
mod connections;
mod health;
mod imports;
mod incidents;
mod keys;
mod leases;
mod links;
mod migrate;
pub use migrate::{migrations_of, NewerSchema};
mod monitoring;
mod revocation;
mod rows;
mod schedule;
mod wal;
mod world;

pub use api_keys::ApiKeyRecord;
pub use backup::{read_backup, read_backup_facts, BackupFacts, StoredRefresh};
pub use connection_scan::ListMark;
pub use health::{CauseLabel, WriteCause, WriteHealth};
pub use imports::{Present, SealedPair};
pub use incidents::{Evidence, IncidentMember, SAMPLE_TIDS};
pub use keys::SealedUnder;
pub use leases::{Lease, Purpose, Unanswered};
pub use links::{Campaign, Invitation, Reconnected, StateMatch};
pub use monitoring::{AlertCondition, AlertDelivery, HealthDue, HealthMark, NewAlert, SyncFacts};
pub use rows::{ConnectionFilter, ConnectionRecord, NewConnection, SealedTokens, TokenUpdate};
pub use schedule::Claimed;
pub use wal::WalCheckpoint;
pub use world::{world_tenant, WorldCounts, WORLD_WORDS};

use anyhow::Context;
use qbo_core::config::ConfigError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pub pool: PgPool,
    health: Arc<WriteHealth>,
    snapshot_turn: Arc<tokio::sync::Mutex<()>>,
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
    health: Arc<WriteHealth>,
    snapshot_turn: Arc<tokio::sync::Mutex<()>>,
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
            $crate::Store::Sqlite(s) => {
                let $c = &s.pool;
                $body
            }
            $crate::Store::Postgres(s) => {
                let $c = &s.pool;
                $body
            }
        }
    };
}

/// Same as `dispatch!`, for a single-statement write: on SQLite it waits for this
/// process's write turn first (see `SqliteStore`). A failure the storage caused is
/// recorded in the store's write health and named in the error.
macro_rules! dispatch_write {
    ($on:expr, $c:ident => $body:expr) => {{
        let r = match $on {
            $crate::Store::Sqlite(s) => {
                let _turn = s.write_turn().await;
                let $c = &s.pool;
                $body
            }
            $crate::Store::Postgres(s) => {
                let $c = &s.pool;
                $body
            }
        };
        $on.checked(r)
    }};
}
pub(crate) use dispatch;
pub(crate) use dispatch_write;

/// Same as `dispatch!`, for an open transaction. A failure the storage caused is recorded
/// in the store's write health and named in the error.
macro_rules! dispatch_tx {
    ($on:expr, $c:ident => $body:expr) => {{
        let r = match &mut $on.inner {
            $crate::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        };
        $on.checked(r)
    }};
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
    health: Arc<WriteHealth>,
    pub(crate) audit: health::PendingAudit,
}

impl Tx {
    /// The changes this transaction has made so far, taken out to be told separately (the
    /// refresh writer tells held audit events with the first op's changes).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }
}

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// A read-only transaction (see `Store::snapshot`). Dropping it ends it.
pub(crate) struct Snapshot {
    pub(crate) inner: TxInner,
    /// Declared after `inner`, so the connection goes back before the next snapshot opens.
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Snapshot {
    /// Ends the transaction now rather than when the connection is next used.
    pub(crate) async fn end(self) -> anyhow::Result<()> {
        let Snapshot { inner, _turn } = self;
        match inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        }
        .context("cannot end the read transaction")
    }
}

pub use qbo_core::domain::Change;

/// The PostgreSQL channel that carries `Change`s between daemons.
pub const NOTIFY_CHANNEL: &str = "qbo_console_changes";

/// An operator's input the store could not use (an export file or its manifest, a public
/// key, a time, a database URL), phrased for them: what is wrong and what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl From<String> for InputError {
    fn from(s: String) -> Self {
        InputError(s)
    }
}

impl From<&str> for InputError {
    fn from(s: &str) -> Self {
        InputError(s.to_string())
    }
}

/// The file a `sqlite:` URL names (`Ok(None)` for other schemes). A database that lives
/// only in memory or in a nameless temporary file loses every connection and the audit log
/// when the process exits, so neither is accepted.
pub fn sqlite_file(url: &str) -> Result<Option<std::path::PathBuf>, InputError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:"
        || params
            .split('&')
            .any(|p| p.eq_ignore_ascii_case("mode=memory"));
    if in_memory {
        return Err(InputError::from(
            "an in-memory database loses every connection and the audit log when \
                    the process exits; use sqlite:///var/lib/qbo-console/qbo-console.db",
        ));
    }
    if path.is_empty() {
        return Err(InputError::from(
            "names no file (SQLite would use a temporary one per connection); use \
                    sqlite://PATH, e.g. sqlite:///var/lib/qbo-console/qbo-console.db",
        ));
    }
    let path = urlencoding::decode(path)
        .map_err(|_| "the path is not valid UTF-8 once percent-decoded".to_string())?;
    Ok(Some(std::path::PathBuf::from(path.into_owned())))
}

impl Store {
    /// Opens the database `db` names. A SQLite file is created here, before SQLite sees
    /// it, owner-only (or 0640 for `file_group`), and refused when open to others.
    pub async fn connect(
        db: &qbo_core::config::DatabaseConfig,
        file_group: Option<&str>,
    ) -> anyhow::Result<Store> {
        let url = db.url.as_str();
        let max_connections = db.max_connections;
        let shown = qbo_core::text::redact_url(url);
        if url.starts_with("sqlite:") {
            let file = sqlite_file(url)
                .map_err(|m| ConfigError(format!("[database] url {shown:?}: {m}")))?;
            if let Some(path) = &file {
                qbo_core::file_modes::NewFiles { group: file_group }.prepare_database(path)?;
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
                .after_release(|c, _| Box::pin(release_outside_transaction(c)))
                .connect_with(opts)
                .await
                .with_context(|| format!("cannot open SQLite database {shown}"))?;
            Ok(Store::Sqlite(SqliteStore {
                pool,
                gate: Default::default(),
                health: Default::default(),
                snapshot_turn: Default::default(),
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
                .after_release(|c, _| Box::pin(release_outside_transaction(c)))
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
            Ok(Store::Postgres(PgStore {
                pool,
                health: Default::default(),
                snapshot_turn: Default::default(),
            }))
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
                    .pool
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
            health: self.write_health_arc(),
            audit: health::PendingAudit::new(self.write_health_arc()),
        })
    }

    /// Opens a read-only transaction: every query in it sees the database as of one
    /// moment, whatever commits meanwhile. SQLite in WAL mode keeps a read transaction's
    /// snapshot from its first read; PostgreSQL needs REPEATABLE READ (READ COMMITTED
    /// would take a new snapshot per statement).
    ///
    /// One at a time per store, the others waiting their turn without a connection: a
    /// snapshot holds a pool connection for as long as it is open (`audit verify` walks the
    /// whole chain in one), and a few opened together would take every pooled connection,
    /// stalling writers (refreshes, the audit log) until the pool's acquire timeout.
    pub(crate) async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let turn = match self {
            Store::Sqlite(s) => s.snapshot_turn.clone(),
            Store::Postgres(p) => p.snapshot_turn.clone(),
        }
        .lock_owned()
        .await;
        let inner = match self {
            Store::Sqlite(s) => TxInner::Sqlite(
                s.pool
                    .begin()
                    .await
                    .context("cannot start a read transaction")?,
            ),
            Store::Postgres(p) => TxInner::Postgres(
                p.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .context("cannot start a read transaction")?,
            ),
        };
        Ok(Snapshot { inner, _turn: turn })
    }

    /// Whether the database takes writes, as the latest writes found.
    pub fn write_health(&self) -> &WriteHealth {
        match self {
            Store::Sqlite(s) => &s.health,
            Store::Postgres(p) => &p.health,
        }
    }

    fn write_health_arc(&self) -> Arc<WriteHealth> {
        match self {
            Store::Sqlite(s) => s.health.clone(),
            Store::Postgres(p) => p.health.clone(),
        }
    }

    /// Names a storage failure in a single-statement write's error and records it.
    pub(crate) fn checked<T>(&self, r: Result<T, sqlx::Error>) -> anyhow::Result<T> {
        checked(self.write_health(), r)
    }

    /// Writes one row and commits, to learn whether the database takes writes again;
    /// success clears the failing state. A no-op update still writes a page (and on
    /// PostgreSQL a new row version), so it meets a full disk like any other write.
    pub async fn probe_write(&self) -> anyhow::Result<()> {
        let mut tx = self.begin().await?;
        dispatch_tx!(tx, c => sqlx::query("UPDATE audit_head SET last_seq = last_seq WHERE id = 1")
            .execute(c).await.map(|r| r.rows_affected()))?;
        let health = tx.health.clone();
        tx.commit().await?;
        health.succeeded();
        Ok(())
    }

    pub async fn close(&self) {
        dispatch!(self, p => p.close().await)
    }

    /// Every daemon's commits as PostgreSQL tells them (LISTEN on `NOTIFY_CHANNEL`), or
    /// `None` on SQLite, where the one daemon is the only writer.
    pub async fn change_listener(&self) -> anyhow::Result<Option<ChangeListener>> {
        use anyhow::Context;
        let Store::Postgres(pg) = self else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect_with(&pg.pool)
            .await
            .context("cannot LISTEN on PostgreSQL")?;
        listener
            .listen(NOTIFY_CHANNEL)
            .await
            .context("cannot LISTEN on PostgreSQL")?;
        Ok(Some(ChangeListener(listener)))
    }
}

/// A LISTEN connection to PostgreSQL on the channel commits are told on.
pub struct ChangeListener(sqlx::postgres::PgListener);

impl ChangeListener {
    /// The next change any daemon committed: `Ok(None)` for a notification that cannot be
    /// read (logged), an error when the connection was lost (the next call reconnects).
    pub async fn next(&mut self) -> anyhow::Result<Option<Change>> {
        let n = self.0.recv().await?;
        match serde_json::from_str::<Change>(n.payload()) {
            Ok(c) => Ok(Some(c)),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable change notification");
                Ok(None)
            }
        }
    }
}

impl Tx {
    /// Abandons the transaction and waits for the rollback before the next writer's turn.
    pub async fn rollback(self) -> anyhow::Result<()> {
        let Tx {
            inner,
            _turn,
            mut audit,
            ..
        } = self;
        // Given up on purpose: its events were never meant to stand alone.
        audit.pending = false;
        match inner {
            TxInner::Sqlite(t) => t.rollback().await,
            TxInner::Postgres(t) => t.rollback().await,
        }
        .context("cannot roll back the database transaction")?;
        drop(_turn);
        Ok(())
    }

    /// Commits, returning what changed so the caller can tell subscribers. A failed commit
    /// leaves its connection to the pool's release check (`release_outside_transaction`),
    /// which closes it if the rollback could not end the transaction.
    pub async fn commit(self) -> anyhow::Result<Vec<Change>> {
        let Tx {
            inner,
            changes,
            _turn,
            health,
            mut audit,
        } = self;
        let r = match inner {
            TxInner::Sqlite(t) => t.commit().await,
            TxInner::Postgres(t) => t.commit().await,
        };
        checked(&health, r).context("cannot commit the database transaction")?;
        audit.pending = false;
        drop(_turn);
        // Only a commit that wrote something proves the database takes writes.
        if !changes.is_empty() {
            health.succeeded();
        }
        Ok(changes)
    }

    /// Names a storage failure in a statement's error and records it.
    pub(crate) fn checked<T>(&self, r: Result<T, sqlx::Error>) -> anyhow::Result<T> {
        checked(&self.health, r)
    }
}

fn checked<T>(health: &WriteHealth, r: Result<T, sqlx::Error>) -> anyhow::Result<T> {
    r.map_err(|e| match WriteCause::of(&e) {
        Some(cause) => {
            health.failed(cause, &e);
            anyhow::Error::from(e).context(cause.explain())
        }
        None => e.into(),
    })
}

/// The pool's check before a connection is reused. A transaction that failed (its COMMIT
/// refused by a full disk, say) is rolled back when dropped; but SQLite may already have
/// rolled it back itself, the ROLLBACK then fails, and the driver still counts the
/// connection as inside a transaction: reused, every `begin` on it would fail ("non-zero
/// transaction depth") until a restart. Such a connection is closed instead; the pool opens
/// a fresh one.
async fn release_outside_transaction<C: sqlx::Connection>(c: &mut C) -> Result<bool, sqlx::Error> {
    if c.is_in_transaction() {
        // A dropped transaction's ROLLBACK is queued on the connection; the ping runs
        // after it, so the depth read next is the one the rollback left.
        c.ping().await?;
    }
    Ok(!c.is_in_transaction())
}

#[cfg(test)]
mod tests {
    use super::{fixed_chunks, Store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_left_inside_an_ended_transaction_is_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        // One connection, so the next transaction would get the same one back.
        let db = qbo_core::config::DatabaseConfig {
            url,
            max_connections: 1,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = Store::connect(&db, None).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        // What SQLite does by itself when a full disk refuses the COMMIT: the transaction
        // ends, the driver is not told, and the ROLLBACK of the dropped transaction fails.
        dispatch_tx!(tx, c => sqlx::query("ROLLBACK").execute(c).await.map(|_| ())).unwrap();
        drop(tx);
        let tx = store
            .begin()
            .await
            .expect("the next transaction starts on a sound connection");
        tx.commit().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_completes_while_audit_verifies_queue_behind_a_long_one() {
        let dir = tempfile::tempdir().unwrap();
        // Two connections: the verify walking the chain holds one, and the writer needs the
        // other however many more verifies are asked for meanwhile.
        let db = qbo_core::config::DatabaseConfig {
            url: format!("sqlite://{}/t.db", dir.path().display()),
            max_connections: 2,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = Store::connect(&db, None).await.unwrap();
        store.migrate().await.unwrap();
        // A walk in progress, held open for as long as the test needs it.
        let walking = store.snapshot().await.unwrap();
        let verifies: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { crate::audit::verify(&store).await })
            })
            .collect();
        // Give them time to ask for their connections (each one would take the free
        // connection and finish, ahead of the write, if they did not queue).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // A hang detector, not a benchmark: without the turn the write waits on the pool.
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let mut tx = store.begin().await.unwrap();
            dispatch_tx!(tx, c => sqlx::query("CREATE TABLE written (v INTEGER)").execute(c).await.map(|_| ()))
                .unwrap();
            tx.commit().await.unwrap();
        })
        .await
        .expect("the write completes while verifies are under way");
        assert!(
            verifies.iter().all(|v| !v.is_finished()),
            "the verifies waited for the walk in progress, holding no connection"
        );
        walking.end().await.unwrap();
        for v in verifies {
            let report = v.await.unwrap().unwrap();
            assert!(report.ok, "{report:?}");
        }
    }

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

    #[test]
    fn sqlite_urls_must_name_a_file() {
        use super::sqlite_file;
        use std::path::PathBuf;
        assert_eq!(
            sqlite_file("sqlite:///var/lib/q.db"),
            Ok(Some(PathBuf::from("/var/lib/q.db")))
        );
        assert_eq!(
            sqlite_file("sqlite://a%20b.db?mode=rwc"),
            Ok(Some(PathBuf::from("a b.db")))
        );
        assert_eq!(sqlite_file("postgres://x/y"), Ok(None));
        for bad in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://q.db?mode=memory",
            "sqlite://",
            "sqlite:",
            "sqlite://?cache=shared",
        ] {
            assert!(sqlite_file(bad).is_err(), "{bad}");
        }
    }
}
