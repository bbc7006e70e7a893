//! A test world: an in-process `qbo-sim`, a temporary directory with a key, secrets and a
//! config file pointing at the emulator, and a database (temp-file SQLite, or a fresh
//! PostgreSQL database when `QBO_CONSOLE_TEST_DATABASE_URL` is set). Commands run the real
//! binary; everything they print is kept so the secrecy check can scan it.

#![allow(dead_code)]

pub mod catalogue;
pub mod receiver;
pub mod tmux;

use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_service::Service;
use qbo_sim::{self as sim, SeededGrant, SimHandle, SimOptions};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

pub const SANDBOX_CLIENT: &str = "sim-sandbox-client";
pub const SANDBOX_SECRET: &str = "sim-sandbox-secret";
pub const PRODUCTION_CLIENT: &str = "sim-production-client";
pub const PRODUCTION_SECRET: &str = "sim-production-secret";

pub struct World {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The config file as first written; `append_config` adds to it.
    base_config: String,
    pub db_url: String,
    pub sim: SimHandle,
    outputs: Mutex<Vec<String>>,
}

/// Settings tests commonly change: short timeouts so a held request or a dead process
/// costs seconds, not minutes.
pub struct Tuning {
    pub intuit_timeout: &'static str,
    pub lease: &'static str,
    pub backoff_base: &'static str,
    pub backoff_cap: &'static str,
    pub max_connections: u32,
    /// More TOML, placed inside [scheduler] (and after it, for further sections).
    pub extra: String,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            intuit_timeout: "2s",
            lease: "5s",
            backoff_base: "1s",
            backoff_cap: "10s",
            max_connections: 8,
            extra: String::new(),
        }
    }
}

/// The test defaults for `[scheduler]`, with `extra`'s keys taking precedence.
fn scheduler_section(extra: &str) -> String {
    let mut out = String::new();
    let given: Vec<&str> = extra
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .collect();
    for (k, v) in [
        ("jitter", "\"0s\""),
        ("tick", "\"200ms\""),
        ("max_concurrency", "8"),
        ("rate_per_second", "1000"),
    ] {
        if !given.contains(&k) {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out.push_str(extra);
    out
}

/// Writes a key or client secret file owner-only (0600), as qbo-console requires of them,
/// whatever the test process's umask.
pub fn write_secret(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Makes `cmd` run under `mask` (e.g. 0o022, the common default that lets every account
/// read what a process creates), whatever the test process's own umask.
pub fn with_umask(cmd: &mut tokio::process::Command, mask: libc::mode_t) {
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
}

/// Skips a test that needs root (a mount, another group), saying why on stderr, which the
/// harness shows, unlike captured stdout. With `QBO_CONSOLE_REQUIRE_ROOT_TESTS=1` (CI, which
/// runs as root) the skip is a failure instead: there, such a test must run.
pub fn skip_root_test(why: &str) {
    if std::env::var("QBO_CONSOLE_REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
        panic!("{why}, and QBO_CONSOLE_REQUIRE_ROOT_TESTS=1 says this test must run here");
    }
    eprintln!("skipped: {why}");
}

pub fn postgres_base_url() -> Option<String> {
    std::env::var("QBO_CONSOLE_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh, empty database for one test.
pub async fn fresh_database(dir: &Path) -> String {
    match postgres_base_url() {
        None => format!("sqlite://{}/qbo.db", dir.display()),
        Some(base) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to the test PostgreSQL");
            let name = format!("qbo_t_{}", qbo_core::vault::hex(&rand::random::<[u8; 6]>()));
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (prefix, _) = base.rsplit_once('/').expect("database URL has a path");
            format!("{prefix}/{name}")
        }
    }
}

impl World {
    pub async fn start(opts: SimOptions) -> World {
        Self::start_tuned(opts, Tuning::default()).await
    }

    pub async fn start_tuned(opts: SimOptions, t: Tuning) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = fresh_database(dir.path()).await;
        Self::start_in(dir, db_url, opts, t).await
    }

    /// A world on a SQLite file (`qbo.db`) even when the suite runs on PostgreSQL: for
    /// what only a database file has (its mode, its WAL).
    pub async fn start_on_sqlite(opts: SimOptions) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}/qbo.db", dir.path().display());
        Self::start_in(dir, db_url, opts, Tuning::default()).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        db_url: String,
        opts: SimOptions,
        t: Tuning,
    ) -> World {
        let sim = sim::start(opts).await.expect("start qbo-sim");
        let key = dir.path().join("token.key");
        write_secret(&key, qbo_core::vault::generate_key().as_str());
        write_secret(
            &dir.path().join("fingerprint.key"),
            qbo_core::vault::generate_key().as_str(),
        );
        write_secret(
            &dir.path().join("audit-signing.key"),
            qbo_core::vault::generate_key().as_str(),
        );
        write_secret(&dir.path().join("sandbox.secret"), SANDBOX_SECRET);
        write_secret(&dir.path().join("production.secret"), PRODUCTION_SECRET);
        let base = sim.base_url();
        let d = dir.path().display();
        let config = dir.path().join("qbo-console.toml");
        let text = format!(
            r#"[database]
url = "{db_url}"
max_connections = {max}

[vault]
key_file = "{d}/token.key"
fingerprint_key_file = "{d}/fingerprint.key"

[audit]
signing_key_file = "{d}/audit-signing.key"

[environments.sandbox]
client_id = "{SANDBOX_CLIENT}"
client_secret_file = "{d}/sandbox.secret"
redirect_uri = "http://localhost:8080/callback"
authorization_endpoint = "{base}/connect/oauth2"
token_endpoint = "{base}/oauth2/v1/tokens/bearer"
revocation_endpoint = "{base}/v2/oauth2/tokens/revoke"
api_base = "{base}"

[environments.production]
client_id = "{PRODUCTION_CLIENT}"
client_secret_file = "{d}/production.secret"
redirect_uri = "https://ops.example.com/qbo/callback"
authorization_endpoint = "{base}/connect/oauth2"
token_endpoint = "{base}/oauth2/v1/tokens/bearer"
revocation_endpoint = "{base}/v2/oauth2/tokens/revoke"
api_base = "{base}"

[intuit]
timeout = "{timeout}"
connect_timeout = "1s"

[refresh]
lease = "{lease}"
backoff_base = "{bb}"
backoff_cap = "{bc}"

[daemon]
socket = "{d}/ops.sock"
http_listen = "127.0.0.1:0"
shutdown_grace = "5s"

[api]
listen = "127.0.0.1:0"

[scheduler]
{scheduler}
[log]
level = "info"
"#,
            max = t.max_connections,
            timeout = t.intuit_timeout,
            lease = t.lease,
            bb = t.backoff_base,
            bc = t.backoff_cap,
            scheduler = scheduler_section(&t.extra),
        );
        std::fs::write(&config, &text).unwrap();
        World {
            dir,
            config,
            base_config: text,
            db_url,
            sim,
            outputs: Mutex::new(Vec::new()),
        }
    }

    /// Whether this world's database is PostgreSQL: by its own URL, since a test may put
    /// one world on SQLite even when the PostgreSQL variable is set.
    pub fn on_postgres(&self) -> bool {
        self.db_url.starts_with("postgres")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CLI as an operator runs it: a client of the daemon's socket.
    pub fn daemon_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"));
        c.arg("--config").arg(&self.config).args(args);
        c.env_remove("QBO_CONSOLE_LOG");
        c.kill_on_drop(true);
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.path("ops.sock")
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"));
        c.arg("--config").arg(&self.config);
        // The credential-core tests run the service in the CLI process; daemon tests use
        // `daemon_command`, which talks to the socket.
        c.arg("--embedded").args(args);
        c.env_remove("QBO_CONSOLE_LOG");
        c.kill_on_drop(true);
        c
    }

    /// Runs the binary to completion and keeps what it printed.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().await.expect("run qbo-console");
        self.keep(&out);
        out
    }

    pub fn keep(&self, out: &Output) {
        let mut o = self.outputs.lock().unwrap();
        o.push(String::from_utf8_lossy(&out.stdout).into_owned());
        o.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }

    /// The latest `n` audit events, parsed from `audit tail --json` (run embedded).
    pub async fn audit_events(&self, n: usize) -> Vec<serde_json::Value> {
        self.ok(&["audit", "tail", "-n", &n.to_string(), "--json"])
            .await
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit tail --json prints JSON lines"))
            .collect()
    }

    /// Runs and insists on exit 0, returning stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "qbo-console {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates `n` consented grants at the emulator and imports them.
    pub async fn seed(&self, n: usize, prefix: &str) -> Vec<SeededGrant> {
        let mut grants = Vec::new();
        let mut csv = String::from("tenant,realm_id,environment,refresh_token,access_token,access_expires_at,company_name\n");
        let now = chrono::Utc::now();
        for i in 0..n {
            let g = self
                .sim
                .seed_grant(SANDBOX_CLIENT, None, Some(&format!("{prefix} Company {i}")))
                .expect("seed grant");
            let exp = (now + chrono::Duration::seconds(g.expires_in)).to_rfc3339();
            csv.push_str(&format!(
                "{prefix}-{i},{},sandbox,{},{},{exp},{}\n",
                g.realm_id, g.refresh_token, g.access_token, g.company_name
            ));
            grants.push(g);
        }
        let file = self.path(&format!("{prefix}.csv"));
        std::fs::write(&file, csv).unwrap();
        self.ok(&["import", file.to_str().unwrap()]).await;
        // The import file holds tokens on purpose; it is not part of what must stay clean.
        std::fs::remove_file(&file).unwrap();
        grants
    }

    /// Creates one production grant at the emulator and imports it as `tenant`.
    pub async fn seed_production(&self, tenant: &str) -> SeededGrant {
        let g = self
            .sim
            .seed_grant(PRODUCTION_CLIENT, None, None)
            .expect("seed grant");
        let file = self.path(&format!("{tenant}.csv"));
        std::fs::write(
            &file,
            format!(
                "tenant,realm_id,environment,refresh_token\n{tenant},{},production,{}\n",
                g.realm_id, g.refresh_token
            ),
        )
        .unwrap();
        self.ok(&["import", file.to_str().unwrap()]).await;
        std::fs::remove_file(&file).unwrap();
        g
    }

    pub fn load_config(&self) -> Config {
        Config::load(Some(&self.config)).expect("test config loads")
    }

    /// The same service the CLI uses, in this process.
    pub async fn service(&self) -> Service {
        Service::open(&self.load_config(), Clock::System)
            .await
            .expect("open service")
    }

    pub async fn connections_json(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["list", "--json"]).await;
        serde_json::from_str(&out).expect("list --json is a JSON array")
    }

    /// No token the emulator ever issued may appear in the database files (WAL included),
    /// the PostgreSQL data directory when known, anything a command printed, or the audit
    /// log as exported.
    pub async fn assert_no_secrets(&self) {
        let tokens = self.sim.issued_tokens();
        assert!(
            !tokens.is_empty(),
            "the emulator issued no tokens; the check would prove nothing"
        );
        let finder = aho_corasick::AhoCorasick::new(&tokens).unwrap();
        let audit = self.ok(&["audit", "tail", "-n", "100000", "--json"]).await;
        let mut blobs: Vec<(String, Vec<u8>)> =
            vec![("audit tail --json".into(), audit.into_bytes())];
        for (i, o) in self.outputs.lock().unwrap().iter().enumerate() {
            blobs.push((format!("command output #{i}"), o.clone().into_bytes()));
        }
        let mut files = Vec::new();
        collect_files(self.dir.path(), &mut files);
        if self.on_postgres() {
            // On PostgreSQL the data directory is what must be clean; a scan that read
            // nothing of it would prove nothing. Every file but the other tests' databases:
            // this world's own (`base/OID`), the temporary files queries spill
            // (`base/pgsql_tmp`), the WAL and the shared catalogues. The other databases
            // hold other tests' tokens and, read whole, grew the scan past 20 GB of memory
            // in a long run.
            let pgdata = std::env::var("QBO_CONSOLE_TEST_PGDATA").expect(
                "QBO_CONSOLE_TEST_PGDATA must name the PostgreSQL data directory (as .ci/run sets it)",
            );
            let oid: (sqlx::postgres::types::Oid,) = {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_as("SELECT oid FROM pg_database WHERE datname = current_database()")
                    .fetch_one(&mut c)
                    .await
                    .unwrap()
            };
            let base = Path::new(&pgdata).join("base");
            let ours = base.join(oid.0 .0.to_string());
            let tmp = base.join("pgsql_tmp");
            let mut server = Vec::new();
            collect_files(Path::new(&pgdata), &mut server);
            server.retain(|f| !f.starts_with(&base) || f.starts_with(&ours) || f.starts_with(&tmp));
            assert!(
                server
                    .iter()
                    .any(|f| f.to_string_lossy().contains("pg_wal")),
                "nothing read from the PostgreSQL data directory {pgdata} (is it readable?)"
            );
            assert!(
                server.iter().any(|f| f.starts_with(&ours)),
                "nothing read of this test's database {} (is it readable?)",
                ours.display()
            );
            files.extend(server);
        } else {
            assert!(
                files
                    .iter()
                    .any(|f| f.to_string_lossy().ends_with("qbo.db")),
                "no database file found to scan"
            );
        }
        let clean = |name: &str, bytes: &[u8]| {
            if let Some(m) = finder.find(bytes) {
                panic!(
                    "a token issued by the emulator appears in {name} at byte {}",
                    m.start()
                );
            }
        };
        for (name, bytes) in &blobs {
            clean(name, bytes);
        }
        // One file at a time: the WAL alone can be a gigabyte.
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                clean(&f.display().to_string(), &bytes);
            }
        }
    }
}

impl World {
    /// SQLite only: when a write-ahead log is on disk now (left behind by a killed process,
    /// un-checkpointed), checks that no token the emulator issued appears in it and returns
    /// true; false when there is none to scan (or on PostgreSQL, whose WAL
    /// `assert_no_secrets` scans).
    pub fn scan_wal_for_secrets(&self) -> bool {
        if self.on_postgres() {
            return false;
        }
        let wal = self.dir.path().join("qbo.db-wal");
        let bytes = std::fs::read(&wal).unwrap_or_default();
        if bytes.is_empty() {
            return false;
        }
        let tokens = self.sim.issued_tokens();
        let finder = aho_corasick::AhoCorasick::new(&tokens).unwrap();
        if let Some(m) = finder.find(&bytes) {
            panic!(
                "a token issued by the emulator appears in the WAL at byte {}",
                m.start()
            );
        }
        !tokens.is_empty()
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Columns of `connections`, for a backend-neutral dump: all but `lease_fence`, which
/// counts the leases ever taken (a refusal after taking one, nothing sent, still moves it:
/// fences only grow, so that no lease can be mistaken for a later one).
const CONNECTION_COLUMNS: &[&str] = &[
    "id",
    "tenant",
    "realm_id",
    "environment",
    "company_name",
    "scopes",
    "status",
    "status_reason",
    "access_expires_at",
    "refresh_issued_at",
    "refresh_expires_at",
    "hard_expires_at",
    "last_refresh_at",
    "last_refresh_outcome",
    "last_error_class",
    "last_error_detail",
    "last_intuit_tid",
    "last_sync_at",
    "last_sync_status",
    "last_sync_detail",
    "consecutive_failures",
    "next_attempt_at",
    "lease_owner",
    "lease_until",
    "inflight_until",
    "unanswered_since",
    "unanswered_by",
    "unanswered_fence",
    "version",
    "created_at",
    "updated_at",
    "access_token",
    "refresh_token",
    "previous_refresh_token",
    "previous_refresh_replaced_at",
];

impl World {
    /// Runs raw SQL against the test database, as an attacker or a careless admin would.
    pub async fn exec_sql(&self, statements: &[&str]) {
        use sqlx::Connection;
        if self.on_postgres() {
            let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
            for s in statements {
                sqlx::query(s)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
            for s in statements {
                sqlx::query(s)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }

    /// Like `exec_sql`, but returns the error text instead of panicking.
    pub async fn try_sql(&self, statement: &str) -> Result<(), String> {
        use sqlx::Connection;
        if self.on_postgres() {
            let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
            sqlx::query(statement)
                .execute(&mut c)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }

    /// Every row of every table as text, to prove an operation changed nothing.
    pub async fn snapshot(&self) -> String {
        use sqlx::Connection;
        if self.on_postgres() {
            let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
            let conn_sql = format!(
                "SELECT ROW({})::text FROM connections ORDER BY id",
                CONNECTION_COLUMNS.join(", ")
            );
            let mut out = String::new();
            for sql in [
                conn_sql.as_str(),
                "SELECT a::text FROM audit_events a ORDER BY seq",
                "SELECT h::text FROM audit_head h",
            ] {
                let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap();
                out.push_str(&rows.join("\n"));
                out.push('\n');
            }
            out
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
            let conn_sql = format!(
                "SELECT {} FROM connections ORDER BY id",
                CONNECTION_COLUMNS
                    .iter()
                    .map(|c| format!("quote({c})"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ")
            );
            let audit_sql = "SELECT seq || '|' || at || '|' || action || '|' || outcome || '|' || hash FROM audit_events ORDER BY seq";
            let mut out = String::new();
            for sql in [
                conn_sql.as_str(),
                audit_sql,
                "SELECT last_seq || '|' || last_hash FROM audit_head",
            ] {
                let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap();
                out.push_str(&rows.join("\n"));
                out.push('\n');
            }
            // Closed, not dropped: a dropped connection closes in the background, and the
            // test may look at the database's side files (WAL, SHM) next.
            c.close().await.unwrap();
            out
        }
    }

    pub async fn drop_audit_guards(&self) {
        if self.on_postgres() {
            self.exec_sql(&["DROP TRIGGER audit_events_no_update ON audit_events"])
                .await;
        } else {
            self.exec_sql(&[
                "DROP TRIGGER audit_events_no_update",
                "DROP TRIGGER audit_events_no_delete",
            ])
            .await;
        }
    }
}

/// A daemon's service and scheduler in this process, on a clock the test moves together
/// with the emulator's.
pub struct InProcess {
    pub service: qbo_service::Service,
    pub scheduler: std::sync::Arc<qbo_service::tasks::Scheduler>,
    /// The daemon's health checks and alerts, run a pass at a time by `health_pass` and
    /// `alerts_pass`.
    pub health: std::sync::Arc<qbo_service::tasks::HealthChecker>,
    pub alerts: qbo_daemon::alerts::Alerter,
    pub clock: Clock,
    stop: tokio::sync::watch::Receiver<bool>,
    _stop_tx: tokio::sync::watch::Sender<bool>,
}

impl World {
    pub async fn in_process(&self) -> InProcess {
        let config = self.load_config();
        let clock = Clock::offset();
        let service = Service::open(&config, clock.clone())
            .await
            .expect("open service");
        // The daemon's own work, each by what it is, as `serve` makes them.
        use qbo_core::identity::{Actor, DaemonTask};
        let scheduler = service.scheduler(
            config.scheduler.clone(),
            Actor::daemon(DaemonTask::Scheduler),
        );
        let health = service.health_checker(
            config.health.clone(),
            Actor::daemon(DaemonTask::HealthCheck),
            &scheduler,
        );
        let alerts = qbo_daemon::alerts::Alerter::new(
            service.clone(),
            &config.alerts,
            Actor::daemon(DaemonTask::Alerts),
        )
        .expect("alert webhooks resolve");
        let (tx, rx) = tokio::sync::watch::channel(false);
        InProcess {
            service,
            scheduler,
            health,
            alerts,
            clock,
            stop: rx,
            _stop_tx: tx,
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, d: &InProcess, by: chrono::Duration) {
        self.sim.advance(by);
        d.clock.advance(by);
    }
}

impl InProcess {
    pub async fn tick(&self) -> qbo_service::tasks::scheduler::TickReport {
        self.scheduler
            .run_once(&self.stop)
            .await
            .expect("scheduler pass")
    }

    pub async fn health_pass(&self) -> qbo_service::tasks::health_checks::HealthReport {
        self.health.run_once(&self.stop).await.expect("health pass")
    }

    pub async fn alerts_pass(&self) -> qbo_service::alerts::AlertReport {
        self.alerts.run_once().await.expect("alerts pass")
    }

    /// The forecast as an admin sees it, on this process's (moved) clock.
    pub async fn forecast(&self, days: u32) -> qbo_engine::forecast::Forecast {
        let admin = qbo_core::identity::Actor::current_process(
            qbo_core::identity::Interface::Cli,
            qbo_core::identity::Role::Admin,
        );
        self.service
            .forecast(&admin, Some(days), None)
            .await
            .unwrap()
    }

    /// The `limit` soonest risks of the forecast, with the count of all.
    pub async fn forecast_limited(&self, days: u32, limit: u32) -> qbo_engine::forecast::Forecast {
        let admin = qbo_core::identity::Actor::current_process(
            qbo_core::identity::Interface::Cli,
            qbo_core::identity::Role::Admin,
        );
        self.service
            .forecast(&admin, Some(days), Some(limit))
            .await
            .unwrap()
    }

    /// The forecast as `forecast --json` streams it, frame by frame.
    pub async fn forecast_streamed(&self, days: u32) -> Vec<qbo_engine::forecast::ForecastFrame> {
        let admin = qbo_core::identity::Actor::current_process(
            qbo_core::identity::Interface::Cli,
            qbo_core::identity::Role::Admin,
        );
        let mut walk = self
            .service
            .forecast_stream_begin(&admin, Some(days))
            .await
            .unwrap();
        let mut frames = Vec::new();
        while let Some(f) = self.service.forecast_stream_next(&mut walk).await.unwrap() {
            frames.push(f);
        }
        frames
    }

    pub async fn connections(&self) -> Vec<qbo_service::ConnectionView> {
        let admin = qbo_core::identity::Actor::current_process(
            qbo_core::identity::Interface::Cli,
            qbo_core::identity::Role::Admin,
        );
        self.service
            .list(&admin, &Default::default())
            .await
            .unwrap()
    }
}

/// A `qbo-console serve` child process.
pub struct DaemonProc {
    pub child: tokio::process::Child,
    pub http: String,
    log: std::sync::Arc<Mutex<String>>,
}

impl World {
    /// Replaces `from` with `to` in the config file as it is now (which must contain it).
    /// `append_config` starts again from the file as first written.
    pub fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "the config has no {from:?}");
        std::fs::write(&self.config, text.replacen(from, to, 1)).unwrap();
    }

    /// Rewrites the config file as first written plus `extra` (new sections only).
    pub fn append_config(&self, extra: &str) {
        std::fs::write(&self.config, format!("{}\n{extra}\n", self.base_config)).unwrap();
    }

    /// Points the config at another database (a SQLite file elsewhere, say); later
    /// `append_config` calls keep it.
    pub fn use_database(&mut self, url: &str) {
        self.base_config = self.base_config.replace(
            &format!("url = \"{}\"", self.db_url),
            &format!("url = \"{url}\""),
        );
        self.db_url = url.to_string();
        std::fs::write(&self.config, &self.base_config).unwrap();
    }

    /// Starts `qbo-console serve` and waits until it says where it listens.
    pub async fn start_daemon(&self, env: &[(&str, &str)]) -> DaemonProc {
        let mut cmd = self.daemon_command(&["serve"]);
        cmd.envs(env.iter().copied());
        self.start_daemon_from(cmd).await
    }

    /// Like `start_daemon`, with at most `n` open files (soft and hard limit), as a
    /// systemd unit's `LimitNOFILE=n` would allow.
    pub async fn start_daemon_with_open_files(&self, env: &[(&str, &str)], n: u64) -> DaemonProc {
        let mut cmd = self.daemon_command(&["serve"]);
        cmd.envs(env.iter().copied());
        // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.start_daemon_from(cmd).await
    }

    /// Starts `cmd` (a `serve` command the test has prepared) and waits until it says where
    /// it listens.
    pub async fn start_daemon_from(&self, mut cmd: tokio::process::Command) -> DaemonProc {
        use tokio::io::AsyncBufReadExt;
        cmd.stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn qbo-console serve");
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let log = std::sync::Arc::new(Mutex::new(String::new()));
        let http = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("daemon exited: {}", log.lock().unwrap()));
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if let Some(i) = line.find("http://") {
                    let rest = &line[i..];
                    break rest.split_whitespace().next().unwrap().to_string();
                }
            }
        })
        .await
        .expect("daemon did not start within 30 s");
        let keep = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = keep.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        DaemonProc { child, http, log }
    }

    /// Waits until a running daemon's scheduler has refreshed every imported connection
    /// (imported ones are due at once).
    pub async fn wait_for_first_pass(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self
            .connections_json()
            .await
            .iter()
            .all(|c| c["last_refresh_outcome"] == "ok")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the scheduler did not refresh the imported connections"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Runs the CLI against the daemon's socket and keeps what it printed.
    pub async fn via_daemon(&self, args: &[&str]) -> Output {
        let out = self
            .daemon_command(args)
            .output()
            .await
            .expect("run qbo-console");
        self.keep(&out);
        out
    }
}

impl DaemonProc {
    /// SIGTERM, and the exit status once it has shut down.
    pub async fn stop(mut self, w: &World) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap() as i32;
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(std::time::Duration::from_secs(30), self.child.wait())
            .await
            .expect("daemon did not stop within 30 s of SIGTERM")
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        w.outputs
            .lock()
            .unwrap()
            .push(self.log.lock().unwrap().clone());
        status
    }

    pub async fn kill(mut self, w: &World) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        w.outputs
            .lock()
            .unwrap()
            .push(self.log.lock().unwrap().clone());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The token API's base URL (`[api] listen`), as the daemon announced it.
    pub fn api_url(&self) -> String {
        let log = self.log();
        let at = log
            .find("token API ")
            .expect("the daemon names its token API listener");
        log[at + "token API ".len()..]
            .split([',', ' ', '\n'])
            .next()
            .unwrap()
            .to_string()
    }

    /// GETs a path on the daemon's HTTP listener: the status and the body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.http))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

/// One sample of an OpenMetrics text, by its series (`name{labels}`); None when absent.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a metric value is a number"))
}

/// A free port on loopback, for a listener a test configures (`[public] listen`), taken
/// below the kernel's ephemeral range. A port from `bind(0)` is released before the daemon
/// binds it, and the outgoing connections of the tests running beside it draw their local
/// ports from that range, so one of them could take it in between (a CI run failed so:
/// "Address already in use"). Below the range only another test's listener could, and
/// ports are handed out in turn within this process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768);
    let (from, to) = (10_000u32, ephemeral_low.min(65_000));
    if to > from + 1_000 {
        let span = to - from;
        let start = std::process::id() % span;
        for _ in 0..span {
            let port = from + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}
