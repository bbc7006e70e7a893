//! The daemon's health checks, pass by pass on the simulated clock: CompanyInfo for each
//! live connection once per `[health] interval`, recorded as its sync status and audited
//! as `verify` by the scheduler; a customer's disconnect shown as a failed sync with the
//! reason; Intuit's concurrency limit respected.

use crate::common;

use chrono::Duration;
use common::catalogue::assert_catalogued;
use common::{Tuning, World};
use qbo_sim::SimOptions;
use qbo_store::audit::Action;

fn by_tenant<'a>(all: &'a [serde_json::Value], tenant: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|c| c["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no {tenant} in {all:?}"))
}

async fn world(health: &str) -> World {
    let w = World::start_tuned(SimOptions::default(), Tuning::default()).await;
    w.append_config(&format!("[health]\n{health}\n"));
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_live_connection_is_checked_once_a_day_and_its_sync_recorded() {
    let w = world("interval = \"1d\"").await;
    w.seed(5, "daily").await;
    let d = w.in_process().await;
    d.tick().await;
    w.sim.reset_stats();
    // Imported just now: none is due before its own point in the day.
    let r = d.health_pass().await;
    assert_eq!(r.checked, 0, "{r:?}");
    w.advance(&d, Duration::days(1));
    let r = d.health_pass().await;
    assert_eq!((r.checked, r.ok), (5, 5), "{r:?}");
    assert_eq!(w.sim.stats().company_info_calls, 5);
    // Once a day, not once a pass.
    let r = d.health_pass().await;
    assert_eq!(r.checked, 0, "{r:?}");
    for c in w.connections_json().await {
        assert_eq!(c["last_sync_status"], "ok", "{c}");
    }
    let events = w.audit_events(40).await;
    let checks: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "verify" && e["interface"] == "scheduler")
        .collect();
    assert_eq!(checks.len(), 5, "{events:?}");
    assert_catalogued(checks[0], Action::Verify, "health check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_who_disconnects_shows_as_a_failed_sync_with_the_reason() {
    let w = world("interval = \"1d\"").await;
    let grants = w.seed(2, "gone").await;
    let d = w.in_process().await;
    d.tick().await;
    w.sim.disconnect(&grants[0].realm_id);
    // The scheduler's next refresh finds the grant dead before the daily check comes.
    w.advance(&d, Duration::hours(2));
    let t = d.tick().await;
    assert_eq!(t.needs_reconnect, 1, "{t:?}");
    let r = d.health_pass().await;
    assert_eq!(r.dead, 1, "{r:?}");
    let all = w.connections_json().await;
    let dead = by_tenant(&all, "gone-0");
    assert_eq!(dead["status"], "needs_reconnect", "{dead}");
    assert_eq!(dead["last_sync_status"], "failed", "{dead}");
    let detail = dead["last_sync_detail"].as_str().unwrap();
    assert!(detail.starts_with("needs reconnect: "), "{detail}");
    assert_eq!(by_tenant(&all, "gone-1")["status"], "active");
    // `show` prints the reason beside the status.
    let shown = w.ok(&["show", "gone-0"]).await;
    assert!(shown.contains("needs reconnect: "), "{shown}");
    // Recorded once, not on every pass.
    assert_eq!(d.health_pass().await.dead, 0);
    let events = w.audit_events(10).await;
    let ev = events
        .iter()
        .find(|e| e["action"] == "verify" && e["tenant"] == "gone-0")
        .expect("the failed sync is audited");
    assert_eq!(ev["outcome"], "failed");
    assert_catalogued(ev, Action::Verify, "health check");
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_401_right_after_a_good_refresh_is_recorded_as_the_customers_disconnect() {
    let w = world("interval = \"1d\"").await;
    let grants = w.seed(1, "lag").await;
    let d = w.in_process().await;
    d.tick().await;
    // Intuit's OAuth service still refreshes the grant; the API refuses its tokens.
    w.sim.disconnect_api_only(&grants[0].realm_id);
    w.advance(&d, Duration::days(1));
    let r = d.health_pass().await;
    assert_eq!((r.checked, r.failed), (1, 1), "{r:?}");
    let all = w.connections_json().await;
    let c = by_tenant(&all, "lag-0");
    // Not marked dead on the API's word alone: keep-alive refreshes go on, so nothing is
    // lost if the 401 was Intuit's mistake. The sync status and the forecast say it.
    assert_eq!(c["status"], "active", "{c}");
    assert_eq!(c["last_sync_status"], "failed");
    let detail = c["last_sync_detail"].as_str().unwrap();
    assert!(
        detail.starts_with("customer disconnected:") && detail.contains("fault 3201"),
        "{detail}"
    );
    let f = d.forecast(30).await;
    assert_eq!(f.items.len(), 1, "{f:?}");
    assert_eq!(f.items[0].risk.as_str(), "customer_disconnected");
    assert!(f.items[0].action.contains("reconnect link"));
    // One refresh for the check, not a second one to retry the 401 of a fresh token.
    assert_eq!(w.sim.stats().company_info_unauthorized, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_checks_never_run_more_than_the_concurrency_limit_at_once() {
    let w = world("interval = \"1h\"\nmax_concurrency = 3").await;
    w.seed(12, "many").await;
    let d = w.in_process().await;
    d.tick().await;
    w.sim
        .set_company_info_latency(std::time::Duration::from_millis(150));
    w.advance(&d, Duration::hours(1));
    let r = d.health_pass().await;
    assert_eq!(r.checked, 12, "{r:?}");
    // Three at once, proven reached, never four.
    assert_eq!(w.sim.stats().company_info_max_in_flight, 3);
}

#[tokio::test]
async fn health_settings_beyond_intuits_limits_are_refused() {
    let w = World::start(SimOptions::default()).await;
    w.append_config("[health]\nmax_concurrency = 11\n");
    let out = w.cli(&["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("[health] max_concurrency 11") && err.contains("10"),
        "{err}"
    );
}

/// A pass reads the live connections a page at a time (2,000): a table longer than a page is
/// checked whole, each connection once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_over_more_than_one_page_checks_every_connection_once() {
    let w = World::start(SimOptions::default()).await;
    let n = 2_003;
    w.seed(n, "paged").await;
    let d = w.in_process().await;
    w.advance(&d, Duration::days(1));
    let r = d.health_pass().await;
    // Each exactly once: a page boundary neither skips nor repeats a connection. (A second
    // pass is not asserted empty: the clock runs on, and a connection whose point in the
    // interval falls in the seconds the first pass took is due again, as it should be.)
    assert_eq!((r.checked, r.ok), (n, n), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_one_database_check_each_connection_once_between_them() {
    // Both read the same pages of candidates at the same moment; each check is taken by
    // one of them before it calls Intuit.
    let w = world("interval = \"1d\"").await;
    let n = 60;
    w.seed(n, "pair").await;
    let a = w.in_process().await;
    let b = w.in_process().await;
    a.tick().await;
    w.advance(&a, Duration::days(1));
    b.clock.advance(Duration::days(1));
    w.sim.reset_stats();
    let (ra, rb) = tokio::join!(a.health_pass(), b.health_pass());
    assert_eq!(ra.checked + rb.checked, n, "{ra:?} {rb:?}");
    assert_eq!(w.sim.stats().company_info_calls, n as u64);
    let events = w.audit_events(400).await;
    let checks = events
        .iter()
        .filter(|e| e["action"] == "verify" && e["interface"] == "scheduler")
        .count();
    assert_eq!(checks, n);
}
