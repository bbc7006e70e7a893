//! Rotation under concurrency: four processes refreshing everything at once, repeatedly,
//! with the emulator rotating the refresh token on every refresh and invalidating the
//! previous one at once. Any lost rotation or double spend shows up as an invalid_grant or a
//! concurrent use at the emulator.

use crate::common;

use common::World;
use futures_util::future::join_all;
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_rotating_on_every_refresh_never_lose_a_token() {
    let opts = SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        // Keeps each token in flight long enough for an overlapping use to be seen.
        token_latency: Duration::from_millis(5),
        ..SimOptions::default()
    };
    let w = World::start(opts).await;
    w.seed(50, "rot").await;
    w.sim.reset_stats();

    let mut rounds = 0;
    let mut coalesced = 0;
    while w.sim.stats().refreshes < 1000 {
        rounds += 1;
        assert!(
            rounds <= 60,
            "1,000 refreshes not reached after 60 rounds: {:?}",
            w.sim.stats()
        );
        let runs = (0..4).map(|_| w.command(&["refresh", "--all", "--json"]).output());
        for out in join_all(runs).await {
            let out = out.expect("run qbo-console");
            w.keep(&out);
            assert!(
                out.status.success(),
                "refresh --all failed in round {rounds}: {}\n{}",
                common::stdout(&out),
                common::stderr(&out)
            );
            let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
            coalesced += reports
                .iter()
                .filter(|r| r["outcome"] == "already_refreshed")
                .count();
        }
    }
    // The processes really did collide: some found a connection refreshed by another while
    // they waited for its lease (run one after another, none would).
    assert!(coalesced > 0, "the four processes never contended");

    let stats = w.sim.stats();
    assert!(stats.refreshes >= 1000);
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert_eq!(stats.concurrent_uses, 0, "{stats:?}");
    assert_eq!(stats.superseded_uses, 0, "{stats:?}");

    // Every connection is still refreshable, and the audit chain held under four writers.
    let out = w.ok(&["refresh", "--all", "--json"]).await;
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.len(), 50);
    assert!(reports.iter().all(|r| r["outcome"] == "refreshed"), "{out}");
    assert_eq!(w.sim.stats().invalid_grants, 0);
    let list = w.connections_json().await;
    assert!(list.iter().all(|c| c["status"] == "active"));
    let verify = w.ok(&["audit", "verify", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&verify).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["events"].as_i64().unwrap() >= 1050);
    // Four writers, one linear chain, and times that never go backwards along it.
    let tail = w.ok(&["audit", "tail", "-n", "100000", "--json"]).await;
    let times: Vec<String> = tail
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["at"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(times.len() >= 1050);
    assert!(
        times.windows(2).all(|p| p[0] <= p[1]),
        "audit times go backwards"
    );
    w.assert_no_secrets().await;
}
