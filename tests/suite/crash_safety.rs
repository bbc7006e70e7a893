//! Crash safety: `refresh --all` killed with SIGKILL at random moments, fifty times, while the
//! emulator rotates on every refresh with Intuit's 24-hour grace for the previous token.
//! Afterwards every connection refreshes and the audit chain verifies.

use crate::common;

use common::{Tuning, World};
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use rand::Rng;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_refreshes_loses_nothing() {
    let opts = SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::Grace24h,
        token_latency: Duration::from_millis(15),
        ..SimOptions::default()
    };
    let tuning = Tuning {
        intuit_timeout: "1s",
        lease: "2s",
        ..Tuning::default()
    };
    let w = World::start_tuned(opts, tuning).await;
    w.seed(20, "crash").await;
    w.sim.reset_stats();

    let mut killed_mid_run = 0;
    let mut wal_scans = 0;
    for _ in 0..50 {
        let mut child = w
            .command(&["refresh", "--all"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let wait = rand::thread_rng().gen_range(20..400);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        // start_kill sends SIGKILL.
        child.start_kill().ok();
        let out = child.wait_with_output().await.unwrap();
        w.keep(&out);
        // A killed process leaves its write-ahead log un-checkpointed: sealed tokens only,
        // never one in the clear.
        if w.scan_wal_for_secrets() {
            wal_scans += 1;
        }
    }
    assert!(
        killed_mid_run >= 25,
        "only {killed_mid_run} of 50 kills landed while the process ran"
    );
    assert!(
        w.sim.stats().refreshes > 0,
        "no refresh ever reached the emulator"
    );
    if common::postgres_base_url().is_none() {
        assert!(
            wal_scans >= 10,
            "only {wal_scans} kills left a write-ahead log to scan"
        );
    }

    // Leases left by killed processes expire; then everything refreshes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let out = w.ok(&["refresh", "--all", "--json"]).await;
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.len(), 20);
    assert!(reports.iter().all(|r| r["outcome"] == "refreshed"), "{out}");
    // And once more, to prove the tokens just stored are the live ones.
    let out = w.ok(&["refresh", "--all", "--json"]).await;
    assert!(serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .iter()
        .all(|r| r["outcome"] == "refreshed"));
    let stats = w.sim.stats();
    println!("{killed_mid_run} kills mid-run, {wal_scans} WALs scanned; emulator: {stats:?}");
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    // Proof that some kill landed where it hurts: after Intuit rotated the token and before
    // the new one was committed. Those connections came back through the previous token's
    // grace, exactly as in production; without such a kill this test would prove little.
    assert!(
        stats.grace_refreshes > 0,
        "no kill landed between Intuit's answer and the commit: {stats:?}"
    );
    let verify = w.ok(&["audit", "verify"]).await;
    assert!(verify.contains("intact"), "{verify}");
    w.assert_no_secrets().await;
}
