//! Who the audit record says acted, and what a SIGTERM does to refreshes in flight.
//!
//! Identity comes from the kernel (the process uid, or the socket peer's credentials and
//! its own `/proc/<pid>/environ`), never from `$USER`/`$LOGNAME`. `SSH_CONNECTION` is
//! reduced to the client's IP address, and a value that does not start with one is not
//! recorded at all.
//!
//! `Daemon::shutdown` promises: stop taking work, let in-flight refreshes finish within
//! `[daemon] shutdown_grace`, abandon the rest; an abandoned refresh never committed, so
//! the previous token stays stored and its lease expires.

use crate::common;

use chrono::{DateTime, Utc};
use common::{Tuning, World};
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use std::process::Output;
use std::time::{Duration, Instant};

const SSH: &str = "203.0.113.7 52311 10.0.0.5 22";
/// What `identity::ssh_client_address` makes of `SSH`: the client IP alone.
const SSH_CLIENT: &str = "203.0.113.7";

fn uid() -> u32 {
    // SAFETY: getuid cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}

fn me() -> String {
    qbo_core::identity::account_name(uid())
}

/// Runs a prepared command to completion, keeps its output for the secrecy scan and
/// insists on exit 0.
async fn run_ok(w: &World, mut cmd: tokio::process::Command, what: &str) -> Output {
    let out = cmd.output().await.expect("run qbo-console");
    w.keep(&out);
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        out.status.code(),
        common::stdout(&out),
        common::stderr(&out)
    );
    out
}

/// An embedded CLI command with the given identity-looking environment, and none inherited
/// from whoever runs the tests.
fn embedded(w: &World, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = w.command(args);
    c.env_remove("SSH_CONNECTION").envs(env.iter().copied());
    c
}

/// The CLI as a client of the daemon's socket, with the given environment.
fn via_socket(w: &World, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut c = w.daemon_command(args);
    c.env_remove("SSH_CONNECTION").envs(env.iter().copied());
    c
}

/// The newest `refresh` event for `tenant` made through `interface`.
fn newest_refresh<'a>(
    events: &'a [serde_json::Value],
    tenant: &str,
    interface: &str,
) -> &'a serde_json::Value {
    events
        .iter()
        .rev()
        .find(|e| e["action"] == "refresh" && e["tenant"] == tenant && e["interface"] == interface)
        .unwrap_or_else(|| panic!("no {interface} refresh event for {tenant} in {events:#?}"))
}

fn assert_actor_is_me(ev: &serde_json::Value) {
    assert_eq!(ev["outcome"], "ok", "{ev}");
    assert_eq!(ev["actor_account"], me().as_str(), "{ev}");
    assert_eq!(ev["actor_uid"].as_u64(), Some(u64::from(uid())), "{ev}");
    assert!(!ev.to_string().contains("mallory"), "{ev}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_actor_is_the_process_uid_not_user() {
    assert_ne!(
        me(),
        "mallory",
        "the test needs an account not named mallory"
    );
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "who").await;
    let liar = [("USER", "mallory"), ("LOGNAME", "mallory")];
    let out = run_ok(
        &w,
        embedded(&w, &["refresh", "who-0", "--json"], &liar),
        "refresh who-0",
    )
    .await;
    let r: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["outcome"], "refreshed", "{r:?}");
    // Reads are on the record too, under the same real identity.
    run_ok(&w, embedded(&w, &["list"], &liar), "list").await;

    let events = w.audit_events(100_000).await;
    let ev = newest_refresh(&events, "who-0", "cli");
    assert_actor_is_me(ev);
    assert_eq!(ev["role"], "admin", "{ev}");
    assert!(ev["actor_ssh"].is_null(), "no SSH session: {ev}");
    let list = events
        .iter()
        .rev()
        .find(|e| e["action"] == "list")
        .expect("the list is on the record");
    assert_actor_is_me(list);
    assert!(
        events
            .iter()
            .all(|e| e["actor_account"] != "mallory" && !e.to_string().contains("mallory")),
        "$USER/$LOGNAME leaked into the audit record"
    );
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ssh_connection_is_recorded_as_the_client_address_embedded_and_via_the_daemon() {
    // What the function promises, pinned here so the end-to-end checks mean something.
    use qbo_core::identity::ssh_client_address;
    assert_eq!(ssh_client_address(Some(SSH)).as_deref(), Some(SSH_CLIENT));
    assert_eq!(
        ssh_client_address(Some("2001:db8::1 52311 2001:db8::5 22")).as_deref(),
        Some("2001:db8::1")
    );
    assert_eq!(ssh_client_address(Some("not an address")), None);
    assert_eq!(ssh_client_address(Some("")), None);

    let w = World::start(SimOptions::default()).await;
    w.seed(4, "ssh").await;
    let with = |v: &'static str| [("SSH_CONNECTION", v), ("USER", "mallory")];

    // Embedded: the CLI process's own environment.
    run_ok(
        &w,
        embedded(&w, &["refresh", "ssh-0"], &with(SSH)),
        "refresh ssh-0",
    )
    .await;
    run_ok(
        &w,
        embedded(&w, &["refresh", "ssh-1"], &with("not an address")),
        "refresh ssh-1",
    )
    .await;
    run_ok(
        &w,
        embedded(
            &w,
            &["refresh", "ssh-2"],
            &with("2001:db8::1 52311 2001:db8::5 22"),
        ),
        "refresh ssh-2",
    )
    .await;
    let events = w.audit_events(100_000).await;
    let ev = newest_refresh(&events, "ssh-0", "cli");
    assert_actor_is_me(ev);
    assert_eq!(ev["actor_ssh"], SSH_CLIENT, "{ev}");
    let ev = newest_refresh(&events, "ssh-1", "cli");
    assert_actor_is_me(ev);
    assert!(
        ev["actor_ssh"].is_null(),
        "a garbage SSH_CONNECTION is not recorded: {ev}"
    );
    let ev = newest_refresh(&events, "ssh-2", "cli");
    assert_eq!(ev["actor_ssh"], "2001:db8::1", "{ev}");

    // Through the daemon: the daemon reads SSH_CONNECTION from the calling process (the
    // daemon itself has none), and the uid from the socket's peer credentials.
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    let out = run_ok(
        &w,
        via_socket(&w, &["refresh", "ssh-3", "--json"], &with(SSH)),
        "refresh ssh-3 via the daemon",
    )
    .await;
    let r: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["outcome"], "refreshed", "{r:?}");
    run_ok(
        &w,
        via_socket(&w, &["refresh", "ssh-1", "--json"], &with("not an address")),
        "refresh ssh-1 via the daemon",
    )
    .await;
    let status = d.stop(&w).await;
    assert!(status.success(), "{status:?}");

    let events = w.audit_events(100_000).await;
    let ev = newest_refresh(&events, "ssh-3", "cli");
    assert_actor_is_me(ev);
    assert_eq!(ev["actor_ssh"], SSH_CLIENT, "{ev}");
    assert_eq!(ev["role"], "admin", "{ev}");
    let ev = newest_refresh(&events, "ssh-1", "cli");
    assert_actor_is_me(ev);
    assert!(
        ev["actor_ssh"].is_null(),
        "a garbage SSH_CONNECTION is not recorded by the daemon either: {ev}"
    );
    // The scheduler's own refreshes are not blamed on the caller's session.
    let sched = newest_refresh(&events, "ssh-3", "scheduler");
    assert_ne!(sched["actor_ssh"], SSH_CLIENT, "{sched}");
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains("not an address")),
        "SSH_CONNECTION must never be recorded verbatim"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
    w.assert_no_secrets().await;
}

/// Every connection's lease, as stored (owner, until), for those that have one.
async fn leases(w: &World) -> Vec<(Option<String>, Option<DateTime<Utc>>)> {
    use sqlx::Connection;
    let sql = "SELECT lease_owner, lease_until FROM connections \
               WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL";
    if common::postgres_base_url().is_some() {
        let mut c = sqlx::PgConnection::connect(&w.db_url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&w.db_url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    }
}

/// Every connection's sealed access and refresh token, by id.
type Sealed = Vec<(i64, Option<Vec<u8>>, Option<Vec<u8>>)>;

async fn stored_tokens(w: &World) -> Sealed {
    use sqlx::Connection;
    let sql = "SELECT id, access_token, refresh_token FROM connections ORDER BY id";
    if common::postgres_base_url().is_some() {
        let mut c = sqlx::PgConnection::connect(&w.db_url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&w.db_url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    }
}

/// Starts the daemon, waits until the emulator is holding refreshes, sends SIGTERM and
/// waits for the exit. Returns the status, how long the exit took after the signal, the
/// daemon's log, and when the first token request was seen.
async fn sigterm_mid_refresh(
    w: &World,
    grace: &str,
) -> (std::process::ExitStatus, Duration, String, Instant) {
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    w.sim.reset_stats();
    let mut d = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SHUTDOWN_GRACE", grace)])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.sim.stats().token_requests == 0 {
        assert!(
            Instant::now() < deadline,
            "the scheduler never called the token endpoint:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = Instant::now();
    // Let the rest of the first batch reach the emulator.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        w.sim.stats().refreshes,
        0,
        "refreshes must still be in flight"
    );
    let pid = d.child.id().expect("daemon running") as i32;
    let signalled = Instant::now();
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(30), d.child.wait())
        .await
        .expect("the daemon did not exit within 30 s of SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = d.log();
    w.keep(&Output {
        status,
        stdout: Vec::new(),
        stderr: log.clone().into_bytes(),
    });
    (status, took, log, seen)
}

/// `refresh --all` as the admin (embedded), expecting every connection refreshed.
async fn refresh_all_succeeds(w: &World, n: usize) {
    let out = w.ok(&["refresh", "--all", "--json"]).await;
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.len(), n, "{out}");
    assert!(
        reports.iter().all(|r| r["outcome"] == "refreshed"),
        "every connection refreshes after the shutdown: {out}"
    );
    let stats = w.sim.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    let list = w.connections_json().await;
    assert!(
        list.iter()
            .all(|c| c["status"] == "active" && c["last_refresh_outcome"] == "ok"),
        "{list:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_refreshes_finish_within_the_grace() {
    // Strict rotation: a refresh Intuit answered but whose answer was not stored would
    // leave a dead token behind, and the final `refresh --all` would meet invalid_grant.
    let opts = SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        ..SimOptions::default()
    };
    let tuning = Tuning {
        intuit_timeout: "4s",
        lease: "8s",
        ..Tuning::default()
    };
    let w = World::start_tuned(opts, tuning).await;
    let n = 20;
    w.seed(n, "inflight").await;
    w.sim.set_token_latency(Duration::from_millis(1500));
    let grace = Duration::from_secs(4);
    let (status, took, log, _) = sigterm_mid_refresh(&w, "4s").await;

    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status:?}\n{log}"
    );
    assert!(
        took < grace + Duration::from_secs(2),
        "the daemon took {took:?} to exit (grace {grace:?})\n{log}"
    );
    assert!(
        !log.contains("abandoned"),
        "refreshes of 1.5 s fit in a 4 s grace; none may be abandoned:\n{log}"
    );
    let stats = w.sim.stats();
    // Stopped taking work: only the first wave (at most max_concurrency = 8) reached
    // Intuit; the connections still queued were not started.
    assert!(
        stats.token_requests >= 1 && stats.token_requests <= 8,
        "{stats:?}"
    );
    // Every refresh in flight finished, at Intuit and in the database.
    assert_eq!(
        stats.refreshes, stats.token_requests,
        "every request in flight was answered: {stats:?}"
    );
    let list = w.connections_json().await;
    let stored = list
        .iter()
        .filter(|c| c["last_refresh_outcome"] == "ok")
        .count() as u64;
    assert_eq!(
        stored, stats.refreshes,
        "every refresh Intuit answered was stored before the exit: {list:#?}"
    );
    let events = w.audit_events(100_000).await;
    let audited = events
        .iter()
        .filter(|e| e["action"] == "refresh" && e["interface"] == "scheduler")
        .count() as u64;
    assert_eq!(
        audited, stats.refreshes,
        "one audit event per stored refresh"
    );
    // Nothing left leased: finished ones released their lease on commit, queued ones gave
    // theirs back.
    let left = leases(&w).await;
    assert!(
        left.is_empty(),
        "leases left after a graceful stop: {left:?}"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");

    w.sim.set_token_latency(Duration::ZERO);
    refresh_all_succeeds(&w, n).await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_abandons_refreshes_that_outlast_the_grace_safely() {
    // Intuit's real policy: a replaced refresh token stays usable for 24 hours.
    let tuning = Tuning {
        intuit_timeout: "4s",
        lease: "8s",
        ..Tuning::default()
    };
    let w = World::start_tuned(SimOptions::default(), tuning).await;
    let n = 20;
    w.seed(n, "abandon").await;
    let before = stored_tokens(&w).await;
    let latency = Duration::from_millis(3000);
    w.sim.set_token_latency(latency);
    let grace = Duration::from_millis(500);
    let (status, took, log, seen) = sigterm_mid_refresh(&w, "500ms").await;

    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status:?}\n{log}"
    );
    assert!(
        took < grace + Duration::from_millis(1500),
        "the daemon took {took:?} to exit (grace {grace:?}, refreshes held {latency:?})\n{log}"
    );
    assert!(
        seen.elapsed() < latency,
        "the test was too slow to prove anything"
    );
    assert!(
        log.contains("abandoned"),
        "the daemon says it abandoned refreshes:\n{log}"
    );
    // Nothing committed for the abandoned refreshes: no refresh event, no token change.
    let events = w.audit_events(100_000).await;
    assert!(
        !events.iter().any(|e| e["action"] == "refresh"),
        "an abandoned refresh left an audit event: {events:#?}"
    );
    let list = w.connections_json().await;
    assert!(
        list.iter().all(|c| c["last_refresh_outcome"].is_null()),
        "{list:#?}"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
    // Leases may remain, but each expires within one lease period.
    let left = leases(&w).await;
    let lease = chrono::Duration::seconds(8);
    let now = Utc::now();
    let mut last = now;
    for (owner, until) in &left {
        let until = until.unwrap_or_else(|| panic!("a lease without an end: {left:?}"));
        assert!(owner.is_some(), "{left:?}");
        assert!(
            until <= now + lease,
            "a lease outlives the configured period: {left:?}"
        );
        last = last.max(until);
    }
    // The stored tokens are the ones from before the daemon ran.
    assert_eq!(before, stored_tokens(&w).await, "stored tokens changed");

    // Once the leases have expired, every connection refreshes.
    let wait = (last - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    assert!(
        leases(&w)
            .await
            .iter()
            .all(|(_, u)| u.is_some_and(|u| u < Utc::now())),
        "leases expired"
    );
    w.sim.set_token_latency(Duration::ZERO);
    refresh_all_succeeds(&w, n).await;
    w.assert_no_secrets().await;
}
