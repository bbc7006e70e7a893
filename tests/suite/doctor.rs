//! `qbo-console doctor` (issue 26): it passes on the demo's installation, and for each
//! problem an operator meets on day two (a key open to others, a missing database, a
//! damaged chain head, a port taken, Intuit out of reach, a clock ten minutes off) it fails
//! and names the fix.

use crate::common::tmux::{header_total, Tmux};
use crate::common::{self, World};
use qbo_sim::SimOptions;
use serde_json::Value;
use std::time::Duration;

/// `doctor --json` with these environment overrides: its exit code and the checks.
async fn doctor(w: &World, env: &[(&str, &str)]) -> (i32, Vec<Value>) {
    let out = w
        .daemon_command(&["doctor", "--json"])
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (
        out.status.code().unwrap(),
        v["checks"].as_array().unwrap().clone(),
    )
}

/// The one failed check, with its fix: there must be exactly one, naming `fix`.
fn failed_with<'a>(checks: &'a [Value], check: &str, fix: &str) -> &'a Value {
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let c = failed[0];
    assert_eq!(c["check"], check, "{c}");
    let said = c["fix"].as_str().unwrap_or_default();
    assert!(said.contains(fix), "{fix:?} not in the fix of {c}");
    c
}

/// A token endpoint whose clock is ten minutes ahead: every answer's `Date` says so.
async fn clock_ahead() -> String {
    let app = axum::Router::new().fallback(|| async {
        let date = (chrono::Utc::now() + chrono::Duration::minutes(10))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        ([("date", date)], "method not allowed")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/oauth2/v1/tokens/bearer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn doctor_names_the_fix_for_each_day_two_problem() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "doc").await;
    let (code, checks) = doctor(&w, &[]).await;
    assert_eq!(code, 0, "a sound installation passes: {checks:#?}");
    assert!(checks
        .iter()
        .any(|c| c["check"] == "clock" && c["status"] == "ok"));

    // A key file open to others.
    use std::os::unix::fs::PermissionsExt;
    let key = w.path("token.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, checks) = doctor(&w, &[]).await;
    assert_eq!(code, 1);
    failed_with(&checks, "secret", &format!("chmod 600 {}", key.display()));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A listener's port taken by another program.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let (code, checks) = doctor(&w, &[("QBO_CONSOLE__API__LISTEN", &port)]).await;
    assert_eq!(code, 1);
    failed_with(&checks, "listener", "ss -ltnp");
    drop(taken);

    // Intuit's token endpoint out of reach.
    let (code, checks) = doctor(
        &w,
        &[(
            "QBO_CONSOLE__ENVIRONMENTS__SANDBOX__TOKEN_ENDPOINT",
            "http://127.0.0.1:1/oauth2/v1/tokens/bearer",
        )],
    )
    .await;
    assert_eq!(code, 1);
    failed_with(&checks, "intuit", "HTTPS_PROXY");

    // This host's clock ten minutes behind Intuit's.
    let ahead = clock_ahead().await;
    let (code, checks) = doctor(
        &w,
        &[(
            "QBO_CONSOLE__ENVIRONMENTS__PRODUCTION__TOKEN_ENDPOINT",
            &ahead,
        )],
    )
    .await;
    assert_eq!(code, 1);
    let c = failed_with(&checks, "clock", "timedatectl set-ntp true");
    assert!(c["detail"].as_str().unwrap().contains("behind"), "{c}");

    // The audit chain's head damaged.
    let store = qbo_store::Store::connect(
        &qbo_core::config::DatabaseConfig {
            url: w.db_url.clone(),
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
        },
        None,
    )
    .await
    .unwrap();
    let damage = "UPDATE audit_head SET last_hash = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff' WHERE id = 1";
    match &store {
        qbo_store::Store::Sqlite(s) => sqlx::query(damage).execute(&s.pool).await.map(|_| ()),
        qbo_store::Store::Postgres(p) => sqlx::query(damage).execute(&p.pool).await.map(|_| ()),
    }
    .unwrap();
    store.close().await;
    let (code, checks) = doctor(&w, &[]).await;
    assert_eq!(code, 1);
    failed_with(&checks, "audit chain", "audit verify");

    // The database missing.
    let missing = if w.on_postgres() {
        let (prefix, _) = w.db_url.rsplit_once('/').unwrap();
        format!("{prefix}/qbo_t_never_created")
    } else {
        format!("sqlite://{}", w.path("gone.db").display())
    };
    let (code, checks) = doctor(&w, &[("QBO_CONSOLE__DATABASE__URL", &missing)]).await;
    assert_eq!(code, 1);
    let fix = if w.on_postgres() {
        "[database] url"
    } else {
        "db migrate"
    };
    failed_with(&checks, "database", fix);
    assert!(!w.path("gone.db").exists(), "doctor creates nothing");

    // A configuration that does not parse: exit 2, said as a failed check.
    let (code, checks) = doctor(&w, &[("QBO_CONSOLE__SCHEDULER__TICK", "soon")]).await;
    assert_eq!(code, 2);
    failed_with(&checks, "config", "config.example.toml");
}

#[test]
fn doctor_passes_on_the_demos_installation() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let line = crate::demo_tmux::demo_line(&tmp, "--tenants 20");
    let t = Tmux::start(dir.path(), "doctor", 100, 30, &line);
    t.wait_for("the table of 20 tenants", Duration::from_secs(120), |s| {
        header_total(s) == Some(20)
    });
    let demo = crate::demo_tmux::demo_dir(&tmp);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .arg("--config")
        .arg(demo.join("qbo-console.toml"))
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}{}", common::stderr(&out));
    for seen in [
        "✓ database",
        "✓ audit chain",
        "held by the running daemon",
        "✓ clock",
    ] {
        assert!(text.contains(seen), "{seen:?} in:\n{text}");
    }
    t.keys(&["q"]);
    t.wait_for("the shell after q", Duration::from_secs(30), |s| {
        s.contains("DEMO-EXITED")
    });
}
