//! Upgrades (issue 26): a database left at every earlier schema version, with data in it,
//! migrates to the current schema on the engine under test (SQLite, or PostgreSQL with
//! `QBO_CONSOLE_TEST_DATABASE_URL`) and the data reads back through the store; a database
//! newer than the binary is refused with a clear message; `db migrate --dry-run` lists what
//! would run and changes nothing.

use crate::common::{self, World};
use chrono::{DateTime, TimeZone, Utc};
use qbo_sim::SimOptions;
use qbo_store::Store;

/// One value bound to a statement, on either engine.
enum Bind {
    I(i64),
    S(&'static str),
    T(DateTime<Utc>),
    B(Vec<u8>),
}

async fn exec(store: &Store, sql: &str, binds: Vec<Bind>) {
    macro_rules! bound {
        ($q:expr) => {{
            let mut q = $q;
            for b in binds {
                q = match b {
                    Bind::I(v) => q.bind(v),
                    Bind::S(v) => q.bind(v),
                    Bind::T(v) => q.bind(v),
                    Bind::B(v) => q.bind(v),
                };
            }
            q
        }};
    }
    match store {
        Store::Sqlite(s) => {
            bound!(sqlx::query(sql)).execute(&s.pool).await.unwrap();
        }
        Store::Postgres(p) => {
            bound!(sqlx::query(sql)).execute(&p.pool).await.unwrap();
        }
    };
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

/// What a release at schema `v` would have written: connections in two states (one with a
/// sealed-looking refresh token), an audit event about one, and from the versions that have
/// them, a reconnect link and a host application's key.
async fn populate(store: &Store, v: i64) {
    for (id, tenant, realm, status) in [
        (1, "upgrade-live", "9130001", "active"),
        (2, "upgrade-dead", "9130002", "needs_reconnect"),
    ] {
        exec(
            store,
            "INSERT INTO connections (id, tenant, realm_id, environment, status, created_at, updated_at, \
             refresh_token, consecutive_failures) VALUES ($1, $2, $3, 'sandbox', $4, $5, $5, $6, 0)",
            vec![
                Bind::I(id),
                Bind::S(tenant),
                Bind::S(realm),
                Bind::S(status),
                Bind::T(at()),
                Bind::B(vec![1, 2, 3, 4]),
            ],
        )
        .await;
    }
    exec(
        store,
        "INSERT INTO audit_events (seq, at, actor_account, actor_uid, interface, role, action, \
         connection_id, environment, realm_id, tenant, outcome, reason, prev_hash, hash) \
         VALUES (1, '2026-03-01T09:00:00.000000Z', 'ops', 1000, 'cli', 'admin', 'import', 1, \
         'sandbox', '9130001', 'upgrade-live', 'ok', 'created from old.csv line 2', $1, $2)",
        vec![Bind::S(ZERO), Bind::S("ab")],
    )
    .await;
    if v >= 4 {
        exec(
            store,
            "INSERT INTO link_invitations (id, token_hash, connection_id, environment, expected_realm, \
             tenant, status, created_at, created_by, expires_at) \
             VALUES (1, 'h1', 2, 'sandbox', '9130002', 'upgrade-dead', 'open', $1, 'ops', $1)",
            vec![Bind::T(at())],
        )
        .await;
    }
    if v >= 6 {
        exec(
            store,
            "INSERT INTO api_keys (id, name, key_hash, realms, created_at, created_by) \
             VALUES (1, 'books-sync', 'kh1', '', $1, 'ops')",
            vec![Bind::T(at())],
        )
        .await;
    }
}

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_earlier_schema_with_data_migrates_to_the_current_one_and_reads_back() {
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = connect(&common::fresh_database(probe_dir.path()).await).await;
    let known = probe.known_migrations();
    probe.close().await;
    assert!(known.len() >= 14, "{known:?}");
    let latest = known.last().unwrap().0;
    for (i, (v, what)) in known[..known.len() - 1].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let store = connect(&common::fresh_database(dir.path()).await).await;
        store.migrate_through(*v).await.unwrap();
        populate(&store, *v).await;
        let pending = store.pending_migrations().await.unwrap();
        assert_eq!(pending.len(), known.len() - i - 1, "from {v} ({what})");
        let applied = store.migrate().await.unwrap();
        assert_eq!(applied, pending.len(), "from {v} ({what})");
        assert_eq!(
            store.applied_versions().await.unwrap().last(),
            Some(&latest)
        );

        let live = store
            .get_connection(1)
            .await
            .unwrap()
            .expect("connection 1 kept");
        assert_eq!(live.tenant, "upgrade-live", "from {v}");
        assert_eq!(live.realm_id.to_string(), "9130001");
        assert_eq!(live.status.as_str(), "active");
        assert_eq!(live.created_at, at());
        let dead = store
            .get_connection(2)
            .await
            .unwrap()
            .expect("connection 2 kept");
        assert_eq!(dead.status.as_str(), "needs_reconnect", "from {v}");
        let events = store.audit_for_connection(1, 10).await.unwrap();
        assert_eq!(events.len(), 1, "from {v}");
        assert_eq!(
            events[0].reason.as_deref(),
            Some("created from old.csv line 2")
        );
        if *v >= 4 {
            let link = store.invitation(1).await.unwrap().expect("the link kept");
            assert_eq!(
                (link.tenant.as_str(), link.campaign_id),
                ("upgrade-dead", None)
            );
        }
        if *v >= 6 {
            let keys = store.list_api_keys().await.unwrap();
            assert_eq!(keys.len(), 1, "from {v}");
        }
        // What the newest migrations added works on the upgraded data.
        assert!(store.open_incidents().await.unwrap().is_empty());
        assert!(store.campaigns(10).await.unwrap().is_empty());
        store.close().await;
    }
}

async fn connect(url: &str) -> Store {
    Store::connect(
        &qbo_core::config::DatabaseConfig {
            url: url.to_string(),
            max_connections: 1,
            connect_timeout: std::time::Duration::from_secs(10),
        },
        None,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_newer_than_the_binary_is_refused_and_a_dry_run_changes_nothing() {
    let w = World::start(SimOptions::default()).await;
    // A new database: every migration would run, and the dry run applies none (nor makes
    // the SQLite file).
    let file = qbo_store::sqlite_file(&w.db_url).unwrap();
    let existed = file.as_ref().is_some_and(|f| f.exists());
    assert!(
        !existed || w.on_postgres(),
        "a new world has no database file yet"
    );
    let dry = w.ok(&["db", "migrate", "--dry-run"]).await;
    if let Some(f) = &file {
        assert_eq!(f.exists(), existed, "a dry run made {}", f.display());
    }
    assert!(
        dry.contains("would be applied") && dry.contains("0015 incidents"),
        "{dry}"
    );
    let again = w.ok(&["db", "migrate", "--dry-run"]).await;
    assert_eq!(dry, again, "nothing was applied");
    w.ok(&["db", "migrate"]).await;
    let done = w.ok(&["db", "migrate", "--dry-run"]).await;
    assert!(done.contains("nothing to apply"), "{done}");

    // A newer release's migration on record: this binary refuses, naming both versions.
    let store = connect(&w.db_url).await;
    exec(
        &store,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (999, 'from the future', $1, TRUE, $2, 0)",
        vec![Bind::T(Utc::now()), Bind::B(vec![0; 48])],
    )
    .await;
    store.close().await;
    for args in [
        &["db", "migrate"][..],
        &["list"][..],
        &["db", "migrate", "--dry-run"][..],
    ] {
        let out = w.cli(args).await;
        assert!(!out.status.success(), "{args:?}");
        let err = common::stderr(&out);
        assert!(
            err.contains("schema is at version 999")
                && err.contains("newer than this qbo-console knows"),
            "{args:?}: {err}"
        );
    }
}

/// The longest any live connection's access token has been expired, in the daemons' view
/// (`list --json`), at one moment.
async fn worst_lapse(w: &World) -> chrono::Duration {
    let now = Utc::now();
    w.connections_json()
        .await
        .iter()
        .filter(|c| c["status"] == "active")
        .filter_map(|c| c["access_expires_at"].as_str())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| now - t.with_timezone(&Utc))
        .max()
        .unwrap_or_else(chrono::Duration::zero)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_postgresql_restarted_one_at_a_time_leave_no_refresh_gap() {
    if common::postgres_base_url().is_none() {
        // SQLite has one daemon; a restart there is a pause (`daemon_process.rs`).
        return;
    }
    let opts = SimOptions {
        rotation: qbo_sim::Rotation::EveryRefresh,
        previous_token: qbo_sim::PreviousToken::Grace24h,
        access_token_ttl_secs: 8,
        ..SimOptions::default()
    };
    let tuning = common::Tuning {
        intuit_timeout: "1s",
        lease: "2s",
        extra: "refresh_before_expiry = \"5s\"\ntick = \"100ms\"\n".into(),
        ..common::Tuning::default()
    };
    let w = World::start_tuned(opts, tuning).await;
    w.seed(20, "roll").await;
    let sock = |n: &str| w.path(&format!("{n}.sock")).to_str().unwrap().to_string();
    let (sa, sb) = (sock("a"), sock("b"));
    let a = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET", &sa)])
        .await;
    let b = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET", &sb)])
        .await;
    // Watch through two full access-token lifetimes after each step.
    let watch = |label: &'static str| {
        let w = &w;
        async move {
            let start = w.sim.refreshes();
            let mut worst = chrono::Duration::zero();
            for _ in 0..16 {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                worst = worst.max(worst_lapse(w).await);
            }
            let done = w.sim.refreshes() - start;
            assert!(done >= 20, "{label}: only {done} refreshes in 8 s");
            assert!(
                worst <= chrono::Duration::zero(),
                "{label}: an access token lapsed for {worst}"
            );
        }
    };
    watch("both running").await;
    a.stop(&w).await;
    watch("a stopped, b alone").await;
    let a = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET", &sa)])
        .await;
    b.stop(&w).await;
    watch("b stopped, the new a alone").await;
    let b = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET", &sb)])
        .await;
    watch("both restarted").await;
    a.stop(&w).await;
    b.stop(&w).await;
}
