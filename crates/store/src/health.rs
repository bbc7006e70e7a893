//! Whether the database takes writes. A full disk leaves reads working (a `COUNT` still
//! answers), so health cannot be probed by reading: it is what the latest writes met. A
//! write refused for lack of space (or an I/O or read-only error) marks the store failing,
//! counts the failure by cause and logs it; the next write that commits clears it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a refused write health reports it without asking again. Past that, a
/// probe write decides: a small write can fit where a large one did not, so the probe
/// alone would hide a failure the moment after it happened.
pub const FAILURE_HOLD: Duration = Duration::from_secs(30);

/// Why the database refused a write, as far as it concerns the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteCause {
    /// SQLITE_FULL, PostgreSQL 53100 `disk_full` (or another 53xxx resource shortage).
    DiskFull,
    /// SQLITE_IOERR, PostgreSQL 58030 `io_error`.
    IoError,
    /// SQLITE_READONLY, PostgreSQL 25006 (a read-only standby).
    ReadOnly,
}

impl WriteCause {
    pub const ALL: [WriteCause; 3] = [
        WriteCause::DiskFull,
        WriteCause::IoError,
        WriteCause::ReadOnly,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteCause::DiskFull => "disk_full",
            WriteCause::IoError => "io_error",
            WriteCause::ReadOnly => "read_only",
        }
    }

    /// What the operator reads: the cause, then what to do about it.
    pub fn explain(self) -> &'static str {
        match self {
            WriteCause::DiskFull => {
                "disk full: the database cannot store this write; free space on the filesystem \
                 that holds the database ([database] url) — the daemon recovers by itself once there is room"
            }
            WriteCause::IoError => {
                "I/O error: the database could not write to its storage; check the disk and the \
                 kernel log for the filesystem that holds the database ([database] url)"
            }
            WriteCause::ReadOnly => {
                "read-only database: it refuses writes; make the database ([database] url) writable \
                 for the daemon's user, or point url at the primary"
            }
        }
    }

    /// The operator-facing cause of a database error, if it is one; constraint violations
    /// and the like are the request's problem, not the storage's. The driver decides how
    /// to read the code, not its shape: PostgreSQL's SQLSTATEs are five digits too
    /// ("53100", "21000"), so a code that parses as a number is not a SQLite one.
    pub fn of(e: &sqlx::Error) -> Option<WriteCause> {
        let sqlx::Error::Database(db) = e else {
            return None;
        };
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            return WriteCause::of_sqlstate(pg.code());
        }
        if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
            return WriteCause::of_sqlite_code(db.code()?.parse().ok()?);
        }
        None
    }

    /// A PostgreSQL SQLSTATE. 53000, the class's generic `insufficient_resources`, counts
    /// as the disk too: either way the operator has to make room.
    fn of_sqlstate(code: &str) -> Option<WriteCause> {
        match code {
            "53100" | "53000" => Some(WriteCause::DiskFull),
            "58030" => Some(WriteCause::IoError),
            "25006" => Some(WriteCause::ReadOnly),
            _ => None,
        }
    }

    /// A SQLite result code: extended codes carry the primary one in the low byte.
    fn of_sqlite_code(code: i32) -> Option<WriteCause> {
        match code & 0xff {
            13 => Some(WriteCause::DiskFull),
            10 => Some(WriteCause::IoError),
            8 => Some(WriteCause::ReadOnly),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    pub cause: String,
}

#[derive(Debug)]
struct Failure {
    cause: WriteCause,
    error: String,
    at: Instant,
}

/// Shared by every clone of one `Store`.
#[derive(Debug, Default)]
pub struct WriteHealth {
    failing: Mutex<Option<Failure>>,
    /// Registered by `Metrics` as `qbo_database_write_failures_total{cause}`.
    pub failures: Family<CauseLabel, Counter>,
    /// Registered by `Metrics` as `qbo_audit_write_failures_total`; fed by `PendingAudit`.
    pub audit_failures: Counter,
}

impl WriteHealth {
    /// Why writes are failing, as one line, or `None` while they succeed.
    pub fn failing(&self) -> Option<String> {
        self.state()
            .as_ref()
            .map(|f| format!("writes failing: {}: {}", f.cause.explain(), f.error))
    }

    /// Whether the latest failure is older than `FAILURE_HOLD`, so a probe should decide.
    pub fn due_for_probe(&self) -> bool {
        self.state()
            .as_ref()
            .is_some_and(|f| f.at.elapsed() >= FAILURE_HOLD)
    }

    /// Counts and logs a failed write.
    pub(crate) fn failed(&self, cause: WriteCause, error: &sqlx::Error) {
        self.failures
            .get_or_create(&CauseLabel {
                cause: cause.as_str().to_string(),
            })
            .inc();
        let was = self.state().replace(Failure {
            cause,
            error: error.to_string(),
            at: Instant::now(),
        });
        // One error line when writes start failing (or fail differently), then warnings:
        // a scheduler retrying every tick must not bury the first one.
        // The driver's message may quote a value written (a tenant's name): escaped.
        let error = qbo_core::text::Safe(&error.to_string()).to_string();
        if was.map(|f| f.cause) != Some(cause) {
            tracing::error!(cause = cause.as_str(), error = %error, "database writes failing: {}", cause.explain());
        } else {
            tracing::warn!(cause = cause.as_str(), error = %error, "database write failed");
        }
    }

    /// A write committed: the database takes writes again.
    pub(crate) fn succeeded(&self) {
        if let Some(f) = self.state().take() {
            tracing::warn!(
                cause = f.cause.as_str(),
                "database writes succeed again; recovered without a restart"
            );
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Failure>> {
        // A panic while holding this lock leaves a plain value behind, still meaningful.
        self.failing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Audit events appended in a transaction that has not committed yet. Dropped while
/// pending (the transaction failed, or its commit did), they count as one audit write
/// failure: whatever the cause, those records and the change they described are gone.
#[derive(Debug)]
pub(crate) struct PendingAudit {
    health: std::sync::Arc<WriteHealth>,
    pub(crate) pending: bool,
}

impl PendingAudit {
    pub(crate) fn new(health: std::sync::Arc<WriteHealth>) -> PendingAudit {
        PendingAudit {
            health,
            pending: false,
        }
    }
}

impl Drop for PendingAudit {
    fn drop(&mut self) {
        if self.pending {
            self.health.audit_failures.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// The error PostgreSQL itself returns for a statement raising `sqlstate`, or `None`
    /// (with the reason on stderr) when no test server is configured.
    async fn postgres_error(sqlstate: &str) -> Option<sqlx::Error> {
        let Ok(url) = std::env::var("QBO_CONSOLE_TEST_DATABASE_URL") else {
            eprintln!("skipped: QBO_CONSOLE_TEST_DATABASE_URL is not set, no PostgreSQL to raise {sqlstate}");
            return None;
        };
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .expect("connect to QBO_CONSOLE_TEST_DATABASE_URL");
        let sql = format!(
            "DO $$ BEGIN RAISE EXCEPTION 'raised by a test' USING ERRCODE = '{sqlstate}'; END $$"
        );
        let e = sqlx::query(&sql)
            .execute(&mut conn)
            .await
            .expect_err("the DO block raises");
        let sqlx::Error::Database(db) = &e else {
            panic!("not a database error: {e}");
        };
        assert_eq!(db.code().as_deref(), Some(sqlstate));
        Some(e)
    }

    #[tokio::test]
    async fn postgres_disk_full_is_read_as_disk_full() {
        if let Some(e) = postgres_error("53100").await {
            assert_eq!(WriteCause::of(&e), Some(WriteCause::DiskFull));
        }
    }

    #[tokio::test]
    async fn a_postgres_error_with_a_numeric_sqlstate_is_not_read_as_a_sqlite_code() {
        // 21000 & 0xff is 8 (SQLITE_READONLY), 22026 & 0xff is 10 (SQLITE_IOERR): neither
        // is about storage, and neither may turn /healthz unhealthy.
        for sqlstate in ["21000", "22026"] {
            if let Some(e) = postgres_error(sqlstate).await {
                assert_eq!(WriteCause::of(&e), None, "SQLSTATE {sqlstate}");
            }
        }
    }

    #[tokio::test]
    async fn a_full_sqlite_database_is_read_as_disk_full() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        // A page cap stands in for the filesystem: past it SQLite answers SQLITE_FULL.
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&mut conn)
            .await
            .expect("create");
        sqlx::query("PRAGMA max_page_count = 3")
            .execute(&mut conn)
            .await
            .expect("cap the pages");
        let e = sqlx::query("INSERT INTO t VALUES (zeroblob(100000))")
            .execute(&mut conn)
            .await
            .expect_err("the row does not fit");
        let sqlx::Error::Database(db) = &e else {
            panic!("not a database error: {e}");
        };
        assert_eq!(db.code().as_deref(), Some("13"), "{e}");
        assert_eq!(WriteCause::of(&e), Some(WriteCause::DiskFull));
    }

    #[tokio::test]
    async fn a_sqlite_constraint_violation_is_not_a_storage_failure() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .expect("create");
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
            .expect("first row");
        let e = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await
            .expect_err("a duplicate key");
        assert_eq!(WriteCause::of(&e), None, "{e}");
    }

    #[test]
    fn a_failure_is_reported_until_a_write_succeeds() {
        let h = WriteHealth::default();
        assert_eq!(h.failing(), None);
        let e = sqlx::Error::Protocol("disk".into());
        h.failed(WriteCause::DiskFull, &e);
        h.failed(WriteCause::DiskFull, &e);
        let why = h.failing().expect("failing after a failed write");
        assert!(!h.due_for_probe(), "a fresh failure is reported as it is");
        assert!(why.starts_with("writes failing: disk full"), "{why}");
        assert_eq!(
            h.failures
                .get_or_create(&CauseLabel {
                    cause: "disk_full".into()
                })
                .get(),
            2
        );
        h.succeeded();
        assert_eq!(h.failing(), None);
    }
}
