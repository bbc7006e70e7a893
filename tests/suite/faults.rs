//! Faults: 30% of the emulator's answers replaced by 503s, timeouts, XML 429s and garbage
//! never mark a connection dead; a customer-side disconnect does, with reason and intuit_tid.

use crate::common;

use common::{Tuning, World};
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::Selection;
use qbo_sim::{FaultConfig, FaultKind, SimOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_never_kill_a_connection_but_a_disconnect_does() {
    let tuning = Tuning {
        intuit_timeout: "1s",
        lease: "2s",
        ..Tuning::default()
    };
    let w = World::start_tuned(SimOptions::default(), tuning).await;
    let grants = w.seed(20, "fault").await;
    w.sim.set_faults(FaultConfig {
        rate: 0.3,
        kinds: vec![
            FaultKind::ServiceUnavailable,
            FaultKind::Timeout,
            FaultKind::RateLimited,
            FaultKind::Garbage,
        ],
        timeout_hold: Duration::from_secs(3),
        surfaces: Vec::new(),
    });
    let svc = w.service().await;
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    let mut failed = 0;
    let mut classes = std::collections::HashSet::new();
    for _ in 0..8 {
        for r in svc.refresh(&admin, &Selection::All).await.unwrap() {
            let v = serde_json::to_value(&r).unwrap();
            assert_ne!(v["outcome"], "needs_reconnect", "{v}");
            assert_ne!(v["outcome"], "config_error", "{v}");
            if v["outcome"] == "failed" {
                failed += 1;
                classes.insert(v["error_class"].as_str().unwrap().to_string());
            }
        }
    }
    let stats = w.sim.stats();
    assert!(stats.faults_injected >= 20, "{stats:?}");
    assert!(failed >= 20, "only {failed} refreshes failed");
    assert!(
        classes.contains("transient") && classes.contains("rate_limited"),
        "{classes:?}"
    );
    assert_eq!(stats.invalid_grants, 0);
    let list = w.connections_json().await;
    assert!(
        list.iter().all(|c| c["status"] == "active"),
        "a fault marked a connection dead"
    );
    assert!(list
        .iter()
        .any(|c| c["consecutive_failures"].as_i64().unwrap() > 0
            || c["last_refresh_outcome"] == "ok"));

    // The customer disconnects inside QuickBooks: the next refresh marks it.
    w.sim.set_faults(FaultConfig::none());
    let victim = &grants[3];
    w.sim.disconnect(&victim.realm_id);
    let out = w.cli(&["refresh", &victim.realm_id, "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "a failed refresh must exit 1");
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["outcome"], "needs_reconnect");
    let tid = reports[0]["intuit_tid"]
        .as_str()
        .expect("intuit_tid kept")
        .to_string();
    assert!(!tid.is_empty());
    let show: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", &victim.realm_id, "--json"]).await).unwrap();
    let c = &show["connection"];
    assert_eq!(c["status"], "needs_reconnect");
    assert_eq!(c["last_intuit_tid"], tid.as_str());
    assert!(
        c["status_reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{c}"
    );
    assert_eq!(c["last_error_class"], "invalid_grant");
    // The others are untouched and the event is in the audit trail with its intuit_tid.
    let others = w.connections_json().await;
    assert_eq!(
        others
            .iter()
            .filter(|c| c["status"] == "needs_reconnect")
            .count(),
        1
    );
    let audit = w.ok(&["audit", "tail", "-n", "5", "--json"]).await;
    assert!(
        audit
            .lines()
            .any(|l| l.contains("invalid_grant") && l.contains(&tid)),
        "{audit}"
    );
    w.assert_no_secrets().await;
}
