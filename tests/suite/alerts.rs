//! Alerts, pass by pass on the simulated clock, delivered to a local receiver: one alert
//! per change of state (a customer's disconnect, rejected client credentials), none more
//! on later passes or after a restart, retries with backoff when the receiver fails, a
//! daily digest of what is still open, and every delivery attempt on the audit record.

use crate::common;

use chrono::Duration;
use common::catalogue::assert_catalogued;
use common::receiver::Receiver;
use common::World;
use qbo_sim::SimOptions;
use qbo_store::audit::Action;

async fn world(receiver: &Receiver, alerts: &str) -> World {
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!(
        "[health]\ninterval = \"1d\"\n\n[alerts]\nretry_base = \"1m\"\n{alerts}\n{}",
        receiver.webhook_config()
    ));
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_disconnect_raises_exactly_one_alert() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(2, "al").await;
    let d = w.in_process().await;
    d.tick().await;
    assert_eq!(d.alerts_pass().await.opened, 0);
    w.sim.disconnect(&grants[0].realm_id);
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    d.health_pass().await;
    let r = d.alerts_pass().await;
    assert_eq!((r.opened, r.delivered), (1, 1), "{r:?}");
    let got = rx.accepted();
    assert_eq!(got.len(), 1, "{got:#?}");
    let alert = &got[0];
    assert_eq!(alert["event"], "opened");
    assert_eq!(alert["condition"]["risk"], "needs_reconnect");
    assert_eq!(alert["condition"]["connection"]["tenant"], "al-0");
    assert_eq!(alert["condition"]["environment"], "sandbox");
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("al-0") && text.contains("needs_reconnect"),
        "{text}"
    );
    assert!(text.contains("reconnect link"), "{text}");

    // No flood: later passes, ticks and checks add nothing.
    for _ in 0..5 {
        w.advance(&d, Duration::hours(1));
        d.tick().await;
        d.health_pass().await;
        let r = d.alerts_pass().await;
        assert_eq!((r.opened, r.delivered), (0, 0), "{r:?}");
    }
    // Nor does a restart: what was alerted is in the database.
    let again = w.in_process().await;
    assert_eq!(again.alerts_pass().await.opened, 0);
    assert_eq!(rx.accepted().len(), 1);

    // The sync status says why, and the console's forecast shows the alert.
    let list = w.connections_json().await;
    let dead = list.iter().find(|c| c["tenant"] == "al-0").unwrap();
    assert_eq!(dead["last_sync_status"], "failed");
    let f = d.forecast(30).await;
    assert_eq!(f.alerts.len(), 1);
    assert_eq!(f.alerts[0].state, "delivered");

    let events = w.audit_events(30).await;
    let delivered = events
        .iter()
        .find(|e| e["action"] == "alert delivered")
        .expect("the delivery is audited");
    assert_catalogued(delivered, Action::AlertDelivered, "alerts");
    assert_eq!(delivered["tenant"], "al-0");
    assert!(
        !delivered.to_string().contains(&rx.url),
        "the URL stays out of the log"
    );
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_receiver_gets_the_alert_later_with_backoff() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(1, "retry").await;
    let d = w.in_process().await;
    d.tick().await;
    rx.fail_next(2);
    w.sim.disconnect(&grants[0].realm_id);
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    let r = d.alerts_pass().await;
    assert_eq!((r.opened, r.retrying), (1, 1), "{r:?}");
    // Not before its time: the first wait is [alerts] retry_base (1m), then 2m.
    assert_eq!(d.alerts_pass().await.retrying, 0);
    assert_eq!(rx.refused(), 1);
    w.advance(&d, Duration::seconds(61));
    assert_eq!(d.alerts_pass().await.retrying, 1);
    w.advance(&d, Duration::seconds(61));
    assert_eq!(d.alerts_pass().await, Default::default());
    w.advance(&d, Duration::seconds(61));
    assert_eq!(d.alerts_pass().await.delivered, 1);
    assert_eq!((rx.refused(), rx.accepted().len()), (2, 1));

    let events = w.audit_events(20).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "alert delivery failed")
        .collect();
    assert_eq!(failed.len(), 2, "{events:#?}");
    assert_catalogued(failed[0], Action::AlertDeliveryFailed, "alerts");
    assert!(
        failed[0]["reason"].as_str().unwrap().contains("HTTP 500"),
        "{}",
        failed[0]
    );
    assert!(events.iter().any(|e| e["action"] == "alert delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_is_given_up_after_max_attempts() {
    let rx = Receiver::start().await;
    let w = world(&rx, "max_attempts = 2").await;
    let grants = w.seed(1, "quit").await;
    let d = w.in_process().await;
    d.tick().await;
    rx.fail_next(10);
    w.sim.disconnect(&grants[0].realm_id);
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    d.alerts_pass().await;
    w.advance(&d, Duration::minutes(2));
    assert_eq!(d.alerts_pass().await.given_up, 1);
    w.advance(&d, Duration::hours(2));
    assert_eq!(d.alerts_pass().await, Default::default());
    assert_eq!(rx.refused(), 2);
    let f = d.forecast(30).await;
    assert_eq!(f.alerts[0].state, "failed");
    let events = w.audit_events(5).await;
    let last = events
        .iter()
        .rfind(|e| e["action"] == "alert delivery failed")
        .unwrap();
    assert!(
        last["reason"].as_str().unwrap().contains("given up"),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daily_digest_lists_what_is_still_open() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(2, "dig").await;
    let d = w.in_process().await;
    d.tick().await;
    d.alerts_pass().await;
    w.sim.disconnect(&grants[1].realm_id);
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    d.alerts_pass().await;
    assert_eq!(rx.accepted().len(), 1);
    w.advance(&d, Duration::hours(23));
    d.tick().await;
    d.health_pass().await;
    let r = d.alerts_pass().await;
    assert_eq!((r.digests, r.opened), (1, 0), "{r:?}");
    let got = rx.accepted();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["event"], "digest");
    let open = got[1]["conditions"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["connection"]["tenant"], "dig-1");
    assert!(got[1]["text"]
        .as_str()
        .unwrap()
        .contains("1 condition still open"));
    // Once a day.
    w.advance(&d, Duration::hours(1));
    assert_eq!(d.alerts_pass().await.digests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_conditions_at_once_are_a_few_alerts_and_one_count_not_a_flood() {
    let burst = qbo_service::alerts::ALERT_BURST;
    let n = burst + 7;
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(n, "storm").await;
    let d = w.in_process().await;
    d.tick().await;
    assert_eq!(d.alerts_pass().await.opened, 0);
    for g in &grants {
        w.sim.disconnect(&g.realm_id);
    }
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    let r = d.alerts_pass().await;
    assert_eq!((r.opened, r.delivered), (n, burst + 1), "{r:?}");
    let got = rx.accepted();
    let named = got.iter().filter(|m| m["event"] == "opened").count();
    assert_eq!(named, burst, "{got:#?}");
    let many: Vec<_> = got.iter().filter(|m| m["event"] == "opened_many").collect();
    assert_eq!(many.len(), 1, "{got:#?}");
    assert_eq!(many[0]["count"], 7);
    assert_eq!(many[0]["by_risk"]["needs_reconnect"], 7);
    let text = many[0]["text"].as_str().unwrap();
    assert!(
        text.contains("7 more conditions opened (needs_reconnect 7)"),
        "{text}"
    );
    // Every condition is open all the same: none is alerted again, nothing more is sent.
    w.advance(&d, Duration::hours(1));
    d.tick().await;
    assert_eq!(d.alerts_pass().await, Default::default());
    assert_eq!(rx.accepted().len(), burst + 1);
    // The digest counts them all.
    w.advance(&d, Duration::hours(23));
    d.tick().await;
    let r = d.alerts_pass().await;
    assert_eq!((r.digests, r.opened), (1, 0), "{r:?}");
    let digest = rx.accepted().pop().unwrap();
    assert_eq!(digest["event"], "digest");
    assert_eq!(digest["count"], n);
    assert_eq!(digest["conditions"].as_array().unwrap().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_client_credentials_raise_one_alert_for_the_environment() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    w.seed(3, "creds").await;
    std::fs::write(w.path("sandbox.secret"), "not-the-secret").unwrap();
    let d = w.in_process().await;
    d.tick().await;
    let r = d.alerts_pass().await;
    assert_eq!(r.opened, 1, "{r:?}");
    let got = rx.accepted();
    assert_eq!(got[0]["condition"]["risk"], "credentials_rejected");
    assert!(got[0]["condition"]["connection"].is_null());
    assert!(got[0]["text"]
        .as_str()
        .unwrap()
        .contains("[environments.sandbox]"));
    // It is an incident about our own credentials, and says so.
    let incidents: serde_json::Value =
        serde_json::from_str(&w.ok(&["incidents", "--json"]).await).unwrap();
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(incidents[0]["class"], "invalid_client");
    assert!(incidents[0]["ended_at"].is_null());
    let shown = w.ok(&["incidents", "show", "1"]).await;
    assert!(
        shown.contains("OUR client credentials") && shown.contains("[environments.sandbox]"),
        "{shown}"
    );
    // The pause lifts, the probe fails again: still the one alert.
    for _ in 0..3 {
        w.advance(&d, Duration::minutes(6));
        d.tick().await;
        assert_eq!(d.alerts_pass().await.opened, 0);
    }
    assert_eq!(rx.accepted().len(), 1);
    // Health checks leave the paused environment alone: its credentials are known bad.
    w.advance(&d, Duration::days(1));
    d.tick().await;
    let calls = w.sim.stats().invalid_clients;
    let r = d.health_pass().await;
    assert_eq!((r.checked, r.skipped), (0, 3), "{r:?}");
    assert_eq!(w.sim.stats().invalid_clients, calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_to_a_webhook_removed_from_the_config_is_given_up_at_once() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(1, "moved").await;
    let d = w.in_process().await;
    d.tick().await;
    rx.fail_next(1);
    w.sim.disconnect(&grants[0].realm_id);
    w.advance(&d, Duration::hours(2));
    d.tick().await;
    assert_eq!(d.alerts_pass().await.retrying, 1);
    w.append_config("[health]\ninterval = \"1d\"\n");
    let restarted = w.in_process().await;
    // Its own clock is behind the first one's: well past the retry either way.
    w.advance(&restarted, Duration::hours(3));
    let r = restarted.alerts_pass().await;
    assert_eq!((r.given_up, r.opened), (1, 0), "{r:?}");
    let events = w.audit_events(3).await;
    let last = events
        .iter()
        .rfind(|e| e["action"] == "alert delivery failed")
        .unwrap();
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains("no longer configured"), "{reason}");
}

#[tokio::test]
async fn an_alert_url_must_be_https_unless_on_loopback() {
    let w = World::start(SimOptions::default()).await;
    w.append_config(
        "[[alerts.webhook]]\nname = \"ops\"\nurl = \"http://alerts.example.com/hook\"\n",
    );
    let out = w.cli(&["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("[[alerts.webhook]] \"ops\" url") && err.contains("https://"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_alerts_at_start_and_a_restart_does_not_alert_again() {
    let rx = Receiver::start().await;
    let w = world(&rx, "").await;
    let grants = w.seed(2, "srv").await;
    w.ok(&["refresh", "--all"]).await;
    w.sim.disconnect(&grants[1].realm_id);
    // The refresh that finds the grant dead, before any daemon runs.
    w.cli(&["refresh", "srv-1"]).await;
    let wait_for = |n: usize| {
        let rx = &rx;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while rx.accepted().len() < n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{n} alerts expected, got {:?}",
                    rx.accepted()
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    let daemon = w.start_daemon(&[]).await;
    wait_for(1).await;
    daemon.stop(&w).await;
    assert_eq!(
        rx.accepted()[0]["condition"]["connection"]["tenant"],
        "srv-1"
    );
    // Started again, the daemon's first pass finds the condition already alerted.
    let daemon = w.start_daemon(&[]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let events = w.audit_events(50).await;
    daemon.stop(&w).await;
    assert_eq!(rx.accepted().len(), 1, "{:?}", rx.accepted());
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "alert delivered")
            .count(),
        1
    );
    w.assert_no_secrets().await;
}
