//! The scheduler, driven pass by pass on a clock the test moves together with the
//! emulator's: years without a touch, an Intuit outage, a dead tenant, an environment with
//! wrong credentials, the 5-year limit, and catch-up by urgency.

use crate::common;

use chrono::Duration;
use common::{Tuning, World};
use qbo_sim::{FaultConfig, FaultKind, PreviousToken, Rotation, SimOptions};

fn strict_rotation() -> SimOptions {
    SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        ..SimOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_hundred_days_without_a_touch() {
    let tuning = Tuning {
        max_connections: 8,
        extra: "refresh_access_tokens = false\nkeep_alive_after = \"20d\"\njitter = \"2d\"\nmax_concurrency = 16\n".into(),
        ..Tuning::default()
    };
    // 500 connections over 800 ticks: about 11,000 refreshes, enough for the spread below
    // to mean something, in half the time 1,000 took.
    let n: u64 = 500;
    let w = World::start_tuned(strict_rotation(), tuning).await;
    w.seed(n as usize, "idle").await;
    let d = w.in_process().await;
    w.sim.reset_stats();
    let first = d.tick().await;
    assert_eq!(first.refreshed as u64, n, "{first:?}");
    for day in 1..=400 {
        w.advance(&d, Duration::hours(12));
        let r = d.tick().await;
        w.advance(&d, Duration::hours(12));
        let r2 = d.tick().await;
        assert_eq!(
            r.failed + r.needs_reconnect + r2.failed + r2.needs_reconnect,
            0,
            "day {day}: {r:?} {r2:?}"
        );
    }
    let stats = w.sim.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    let keep_alive = 20 * 86_400;
    assert!(
        stats.max_refresh_idle_secs <= keep_alive,
        "a refresh token sat unused for {}s, beyond the 20-day keep-alive",
        stats.max_refresh_idle_secs
    );
    // Spread, not a herd: about one keep-alive refresh per connection every ~19 days.
    assert!(
        stats.refreshes > n * 400 / 20 && stats.refreshes < n * 400 / 17,
        "{} refreshes",
        stats.refreshes
    );
    let all = d.connections().await;
    assert_eq!(all.len() as u64, n);
    assert!(all
        .iter()
        .all(|c| c.status.as_str() == "active" && c.refresh_days_left.unwrap() > 75));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_backs_off_within_the_cap_and_heals() {
    let tuning = Tuning {
        backoff_base: "30s",
        backoff_cap: "30m",
        intuit_timeout: "1s",
        lease: "3s",
        // Each connection's own backoff, as without an incident (`incidents.rs` has the
        // circuit breaker).
        extra: "refresh_before_expiry = \"10m\"\n\n[scheduler.incidents]\nmin_connections = 1000\n"
            .into(),
        ..Tuning::default()
    };
    let w = World::start_tuned(strict_rotation(), tuning).await;
    w.seed(50, "outage").await;
    let d = w.in_process().await;
    assert_eq!(d.tick().await.refreshed, 50);

    w.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable));
    w.sim.reset_stats();
    for _ in 0..120 {
        w.advance(&d, Duration::minutes(1));
        let r = d.tick().await;
        assert_eq!(r.needs_reconnect, 0);
    }
    let outage = w.sim.stats();
    // Access tokens fell due ~50 minutes in; from then on each connection retried with a
    // doubling delay (at least half of 30s, 1m, 2m… capped at 30m). Over the remaining
    // ~70 minutes that is at most 8 attempts each; without backoff it would be ~70.
    let per_connection = outage.token_requests as f64 / 50.0;
    assert!(per_connection >= 3.0, "retries did not happen: {outage:?}");
    assert!(
        per_connection <= 9.0,
        "retries exceeded the backoff: {per_connection} per connection"
    );
    let during = d.connections().await;
    assert!(during.iter().all(|c| c.status.as_str() == "active"));
    assert!(during.iter().all(|c| c.consecutive_failures >= 3));

    w.sim.set_faults(FaultConfig::none());
    for _ in 0..31 {
        w.advance(&d, Duration::minutes(1));
        d.tick().await;
    }
    let after = d.connections().await;
    assert!(after.iter().all(|c| c.status.as_str() == "active"
        && c.consecutive_failures == 0
        && c.last_refresh_outcome == Some(qbo_service::LastRefresh::Ok)));
    assert_eq!(w.sim.stats().invalid_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_tenant_gets_one_attempt_and_then_none() {
    let w = World::start(strict_rotation()).await;
    let grants = w.seed(10, "dead").await;
    let d = w.in_process().await;
    assert_eq!(d.tick().await.refreshed, 10);
    w.sim.disconnect(&grants[4].realm_id);
    w.sim.reset_stats();
    let mut died = 0;
    for _ in 0..96 {
        w.advance(&d, Duration::minutes(30));
        died += d.tick().await.needs_reconnect;
    }
    let stats = w.sim.stats();
    assert_eq!(died, 1);
    assert_eq!(
        stats.invalid_grants, 1,
        "exactly one automatic attempt after it died: {stats:?}"
    );
    assert!(!stats.refreshes_by_realm.contains_key(&grants[4].realm_id));
    assert!(
        stats.refreshes >= 9 * 40,
        "the others kept refreshing: {stats:?}"
    );
    let dead: Vec<_> = d
        .connections()
        .await
        .into_iter()
        .filter(|c| c.status.as_str() == "needs_reconnect")
        .collect();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].last_intuit_tid.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_client_credentials_pause_the_environment_and_blame_no_tenant() {
    let w = World::start(SimOptions::default()).await;
    w.seed(12, "creds").await;
    w.seed_production("prod").await;
    std::fs::write(w.path("sandbox.secret"), "not-the-secret").unwrap();
    let d = w.in_process().await;
    w.sim.reset_stats();
    let r = d.tick().await;
    assert!(r.config_errors >= 1, "{r:?}");
    assert_eq!(r.refreshed, 1, "production is not affected: {r:?}");
    let calls = w.sim.stats().invalid_clients;
    assert!(
        calls <= 8,
        "{calls} calls with bad credentials: the pause must stop the batch"
    );
    let paused = d.scheduler.paused();
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0].0.as_str(), "sandbox");
    for _ in 0..4 {
        w.advance(&d, Duration::seconds(30));
        d.tick().await;
    }
    assert_eq!(
        w.sim.stats().invalid_clients,
        calls,
        "no calls while paused"
    );
    let all = d.connections().await;
    assert!(
        all.iter().all(|c| c.status.as_str() == "active"),
        "no tenant marked dead"
    );
    // The pause ends and the scheduler probes again (and would pause again).
    w.advance(&d, Duration::minutes(6));
    d.tick().await;
    assert!(w.sim.stats().invalid_clients > calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_near_the_five_year_limit_are_flagged_expiring() {
    let opts = SimOptions {
        hard_limit_secs: 20 * 86_400,
        ..SimOptions::default()
    };
    let w = World::start(opts).await;
    w.seed(3, "old").await;
    let d = w.in_process().await;
    assert_eq!(d.tick().await.refreshed, 3);
    let all = d.connections().await;
    assert!(
        all.iter()
            .all(|c| c.status.as_str() == "expiring" && c.hard_expires_at.is_some()),
        "{all:?}"
    );
    // Still refreshed on schedule.
    w.advance(&d, Duration::hours(1));
    assert_eq!(d.tick().await.refreshed, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_downtime_the_closest_to_lapse_go_first() {
    let tuning = Tuning {
        extra: "refresh_access_tokens = false\nkeep_alive_after = \"30d\"\nmax_concurrency = 1\n"
            .into(),
        ..Tuning::default()
    };
    let w = World::start_tuned(SimOptions::default(), tuning).await;
    let grants = w.seed(6, "order").await;
    let d = w.in_process().await;
    let admin = qbo_core::identity::Actor::current_process(
        qbo_core::identity::Interface::Cli,
        qbo_core::identity::Role::Admin,
    );
    // Refresh them on different days, newest last, so their 100-day windows end apart.
    for g in grants.iter().rev() {
        d.service
            .refresh(
                &admin,
                &qbo_service::Selection::Named(vec![g.realm_id.clone()]),
            )
            .await
            .unwrap();
        w.advance(&d, Duration::days(1));
    }
    // The daemon was down for 40 days: everything is overdue.
    w.advance(&d, Duration::days(40));
    let before = d.service.audit_tail(&admin, 1).await.unwrap()[0].seq;
    assert_eq!(d.tick().await.refreshed, 6);
    let events = d.service.audit_tail(&admin, 6).await.unwrap();
    assert!(events[0].seq > before);
    let order: Vec<&str> = events
        .iter()
        .map(|e| e.realm_id.as_deref().unwrap())
        .collect();
    let expected: Vec<&str> = grants.iter().rev().map(|g| g.realm_id.as_str()).collect();
    assert_eq!(order, expected, "most urgent (oldest refresh) first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_rate_limit_never_outruns_the_leases() {
    // 4 starts a second, 64 slots, a 4 s lease: with 64 claimed at once, the last would
    // wait 16 s behind the rate limiter, four leases long, and every late one would have to
    // be given back. Claims and slots are sized by the rate, so none is.
    let tuning = Tuning {
        intuit_timeout: "1s",
        lease: "4s",
        extra: "max_concurrency = 64\nrate_per_second = 4\n".into(),
        ..Tuning::default()
    };
    let w = World::start_tuned(SimOptions::default(), tuning).await;
    w.seed(12, "slow").await;
    let d = w.in_process().await;
    w.sim.reset_stats();
    let started = std::time::Instant::now();
    let mut refreshed = 0;
    while refreshed < 12 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "12 refreshes at 4 a second took over 20 s"
        );
        let r = d.tick().await;
        assert_eq!(r.other, 0, "nothing given back, nothing failed: {r:?}");
        refreshed += r.refreshed;
    }
    let stats = w.sim.stats();
    assert_eq!(stats.refreshes, 12, "{stats:?}");
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_that_cannot_be_opened_is_not_retried_every_pass() {
    let tuning = Tuning {
        backoff_base: "30s",
        backoff_cap: "5m",
        ..Tuning::default()
    };
    let w = World::start_tuned(SimOptions::default(), tuning).await;
    w.seed(2, "broken").await;
    let d = w.in_process().await;
    assert_eq!(d.tick().await.refreshed, 2);
    // Row 1 gets row 2's sealed refresh token, which its associated data refuses, and is
    // made due again.
    w.exec_sql(&[
        "UPDATE connections SET refresh_token = (SELECT refresh_token FROM connections WHERE id = 2), \
         next_attempt_at = NULL WHERE id = 1",
    ])
    .await;
    let r = d.tick().await;
    assert_eq!((r.claimed, r.other, r.refreshed), (1, 1, 0), "{r:?}");
    // The pass ended, and the next ones leave the broken row alone until its backoff.
    for _ in 0..3 {
        let r = d.tick().await;
        assert_eq!(r.claimed, 0, "retried at once: {r:?}");
    }
    w.advance(&d, Duration::seconds(31));
    let r = d.tick().await;
    assert_eq!(r.claimed, 1, "retried after the backoff: {r:?}");
}
