//! Intuit's webhooks: signed notifications in both formats accepted and recorded per realm,
//! each event id once; everything else refused and counted in /metrics.

use crate::common;

use common::catalogue::assert_catalogued;
use common::{DaemonProc, World};
use qbo_daemon::webhooks::signature::sign;
use qbo_sim::SimOptions;
use qbo_store::audit::Action;
use std::time::Duration;

pub(crate) const VERIFIER: &str = "intuit-verifier-token-for-tests";

/// A daemon with a verifier token, and the URL its webhook route answers on. The one place
/// that knows which listener carries the webhooks (the token API's, until the public
/// listener exists).
async fn daemon_with_webhooks(w: &World) -> (DaemonProc, String) {
    common::write_secret(&w.path("verifier.token"), VERIFIER);
    w.append_config(&format!(
        "[webhooks]\nverifier_token_file = \"{}\"\n",
        w.path("verifier.token").display()
    ));
    let d = w.start_daemon(&[]).await;
    let url = format!("{}{}", d.api_url(), qbo_daemon::webhooks::PATH);
    (d, url)
}

pub(crate) async fn post(url: &str, body: &[u8], signature: Option<&str>) -> u16 {
    let mut r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        r = r.header("intuit-signature", s);
    }
    r.send()
        .await
        .expect("the webhook route answers")
        .status()
        .as_u16()
}

async fn metrics(d: &DaemonProc) -> String {
    d.get("/metrics").await.1
}

/// Polls /metrics until `series` reaches `want` (events are processed after the answer).
async fn wait_metric(d: &DaemonProc, series: &str, want: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics(d).await;
        if common::metric(&m, series) == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{series} never reached {want}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_notifications_in_both_formats_record_the_realms_last_data_change_once_per_event() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(2, "hook").await;
    let (r1, r2) = (&grants[0].realm_id, &grants[1].realm_id);
    let (d, url) = daemon_with_webhooks(&w).await;

    let legacy = format!(
        r#"{{"eventNotifications":[{{"realmId":"{r1}","dataChangeEvent":{{"entities":[{{"name":"Customer","id":"1","operation":"Create","lastUpdated":"2026-01-01T10:00:00Z"}}]}}}}]}}"#
    );
    assert_eq!(
        post(
            &url,
            legacy.as_bytes(),
            Some(&sign(VERIFIER.as_bytes(), legacy.as_bytes()))
        )
        .await,
        200
    );
    let cloud = format!(
        r#"[{{"specversion":"1.0","id":"evt-1","type":"qbo.invoice.updated.v1","source":"intuit","intuitaccountid":"{r2}","intuitentityid":"42","time":"2026-01-02T11:00:00Z","data":{{}}}}]"#
    );
    let sig = sign(VERIFIER.as_bytes(), cloud.as_bytes());
    assert_eq!(post(&url, cloud.as_bytes(), Some(&sig)).await, 200);
    // Intuit redelivers the same event: acknowledged, processed once.
    assert_eq!(post(&url, cloud.as_bytes(), Some(&sig)).await, 200);
    wait_metric(&d, "qbo_webhook_events_total{outcome=\"processed\"}", 2.0).await;
    wait_metric(&d, "qbo_webhook_events_total{outcome=\"replayed\"}", 1.0).await;

    let list = w.connections_json().await;
    let by = |r: &str| list.iter().find(|c| c["realm_id"] == r).unwrap().clone();
    assert_eq!(by(r1)["last_data_change"], "Customer 1 Create");
    assert_eq!(by(r1)["last_data_change_at"], "2026-01-01T10:00:00Z");
    assert_eq!(by(r2)["last_data_change"], "qbo.invoice.updated.v1 42");
    let shown: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", r2, "--json"]).await).unwrap();
    assert_eq!(
        shown["connection"]["last_data_change_at"],
        "2026-01-02T11:00:00Z"
    );
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_badly_signed_oversized_and_malformed_notifications_are_refused_and_counted() {
    let w = World::start(SimOptions::default()).await;
    let (d, url) = daemon_with_webhooks(&w).await;
    let body = br#"[{"specversion":"1.0","id":"evt-9","type":"qbo.customer.created.v1","intuitaccountid":"123","time":"2026-01-02T11:00:00Z","data":{}}]"#;
    let good = sign(VERIFIER.as_bytes(), body);
    assert_eq!(post(&url, body, None).await, 401, "unsigned");
    assert_eq!(
        post(&url, body, Some(&sign(b"another token", body))).await,
        401,
        "wrong key"
    );
    assert_eq!(
        post(&url, body, Some("not base64 at all")).await,
        401,
        "garbage signature"
    );
    // A signature captured from one body, replayed on a modified one.
    let modified = String::from_utf8_lossy(body).replace("evt-9", "evt-10");
    assert_eq!(
        post(&url, modified.as_bytes(), Some(&good)).await,
        401,
        "re-used signature"
    );
    // 1 MiB, signed correctly: refused for its size, before anything else.
    let big = vec![b' '; 1024 * 1024];
    assert_eq!(
        post(&url, &big, Some(&sign(VERIFIER.as_bytes(), &big))).await,
        413
    );
    // Signed but not JSON, or JSON but not a notification.
    for bad in [&b"{\"eventNotifications\": ["[..], b"{\"hello\":1}", b"[]"] {
        assert_eq!(
            post(&url, bad, Some(&sign(VERIFIER.as_bytes(), bad))).await,
            400
        );
    }
    let m = metrics(&d).await;
    let n = |reason: &str| {
        common::metric(
            &m,
            &format!("qbo_webhook_refusals_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(n("unsigned"), Some(1.0), "{m}");
    assert_eq!(n("bad_signature"), Some(3.0), "{m}");
    assert_eq!(n("oversized"), Some(1.0), "{m}");
    assert_eq!(n("malformed"), Some(3.0), "{m}");
    // Nothing was recorded, and the daemon is still well.
    assert_eq!(
        common::metric(&m, "qbo_webhook_events_total{outcome=\"processed\"}"),
        None
    );
    assert_eq!(d.get("/healthz").await.0, 200);
    assert_eq!(
        post(&url, body, Some(&good)).await,
        200,
        "the genuine one still goes through"
    );
    d.stop(&w).await;
}

/// With a public listener configured, Intuit's webhooks are served there (the address Intuit
/// can reach), not on the token API's loopback listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_public_listener_the_webhooks_are_served_there_and_not_on_the_token_api() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(1, "pubhook").await;
    let realm = &grants[0].realm_id;
    let port = crate::common::free_port();
    common::write_secret(&w.path("verifier.token"), VERIFIER);
    // One append: each replaces the last.
    w.append_config(&format!(
        "[public]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}\"\n\
         [webhooks]\nverifier_token_file = \"{}\"\n",
        w.path("verifier.token").display()
    ));
    let d = w.start_daemon(&[]).await;
    let api_url = format!("{}{}", d.api_url(), qbo_daemon::webhooks::PATH);
    let body = format!(
        r#"{{"eventNotifications":[{{"realmId":"{realm}","dataChangeEvent":{{"entities":[{{"name":"Bill","id":"7","operation":"Update","lastUpdated":"2026-03-01T09:00:00Z"}}]}}}}]}}"#
    );
    let sig = sign(VERIFIER.as_bytes(), body.as_bytes());
    let public_url = format!("http://127.0.0.1:{port}{}", qbo_daemon::webhooks::PATH);
    assert_eq!(post(&public_url, body.as_bytes(), Some(&sig)).await, 200);
    assert_eq!(post(&api_url, body.as_bytes(), Some(&sig)).await, 404);
    wait_metric(&d, "qbo_webhook_events_total{outcome=\"processed\"}", 1.0).await;
    let list = w.connections_json().await;
    assert_eq!(list[0]["last_data_change"], "Bill 7 Update");
    d.stop(&w).await;
}

/// A legacy notification of `n` entities (`Customer i Update`, one a second from
/// 2026-04-01T00:00:00Z) spread over `realms` in turn.
fn legacy_batch(realms: &[&str], n: usize) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z").unwrap();
    let notifications: Vec<String> = realms
        .iter()
        .enumerate()
        .map(|(r, realm)| {
            let entities: Vec<String> = (0..n)
                .filter(|i| i % realms.len() == r)
                .map(|i| {
                    let at = (start + chrono::Duration::seconds(i as i64))
                        .with_timezone(&chrono::Utc)
                        .format("%Y-%m-%dT%H:%M:%SZ");
                    format!(
                        r#"{{"name":"Customer","id":"{i}","operation":"Update","lastUpdated":"{at}"}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"realmId":"{realm}","dataChangeEvent":{{"entities":[{}]}}}}"#,
                entities.join(",")
            )
        })
        .collect();
    format!(r#"{{"eventNotifications":[{}]}}"#, notifications.join(","))
}

/// Acknowledged means kept: a daemon SIGKILLed the moment it has answered 200, for a batch
/// of 400 events and then for a single CloudEvent, has every event's effect (each realm's
/// last data change) and its `data change reported` record after a restart. Before, the 200
/// came first and the events were recorded on a task afterwards, so a kill lost them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_acknowledged_right_before_a_sigkill_are_all_recorded_after_a_restart() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(4, "killhook").await;
    let realms: Vec<&str> = grants.iter().map(|g| g.realm_id.as_str()).collect();
    let (d, url) = daemon_with_webhooks(&w).await;
    let n = 400;
    let body = legacy_batch(&realms, n);
    let sig = sign(VERIFIER.as_bytes(), body.as_bytes());
    assert_eq!(post(&url, body.as_bytes(), Some(&sig)).await, 200);
    d.kill(&w).await;

    let (d, url) = daemon_with_webhooks(&w).await;
    let list = w.connections_json().await;
    for (r, realm) in realms.iter().enumerate() {
        let last = (0..n).filter(|i| i % realms.len() == r).max().unwrap();
        let row = list.iter().find(|c| c["realm_id"] == *realm).unwrap();
        assert_eq!(
            row["last_data_change"],
            format!("Customer {last} Update"),
            "{row}"
        );
    }
    let recorded: Vec<serde_json::Value> = w
        .audit_events(2000)
        .await
        .into_iter()
        .filter(|e| e["action"] == Action::DataChangeReported.as_str())
        .collect();
    assert_eq!(recorded.len(), n, "one record per event and connection");
    for i in 0..n {
        let what = format!("\"Customer {i} Update\"");
        assert!(
            recorded
                .iter()
                .any(|e| e["reason"].as_str().unwrap().contains(&what)),
            "no record of event {i}"
        );
    }
    assert_catalogued(&recorded[0], Action::DataChangeReported, "intuit");

    // A single CloudEvent, killed right after its 200.
    let cloud = format!(
        r#"[{{"specversion":"1.0","id":"evt-kill-1","type":"qbo.bill.created.v1","source":"intuit","intuitaccountid":"{}","intuitentityid":"9","time":"2026-05-01T08:00:00Z","data":{{}}}}]"#,
        realms[0]
    );
    let sig = sign(VERIFIER.as_bytes(), cloud.as_bytes());
    assert_eq!(post(&url, cloud.as_bytes(), Some(&sig)).await, 200);
    d.kill(&w).await;
    let d = w.start_daemon(&[]).await;
    let list = w.connections_json().await;
    let row = list.iter().find(|c| c["realm_id"] == realms[0]).unwrap();
    assert_eq!(row["last_data_change"], "qbo.bill.created.v1 9", "{row}");
    let last = w
        .audit_events(10)
        .await
        .into_iter()
        .rfind(|e| e["action"] == Action::DataChangeReported.as_str())
        .expect("the event's record");
    assert!(
        last["reason"].as_str().unwrap().contains("evt-kill-1"),
        "{last}"
    );
    assert_eq!(last["realm_id"], realms[0], "{last}");
    d.stop(&w).await;
}

/// A legacy entry without `lastUpdated`, delivered twice (the second time after a
/// restart): processed and recorded once, the redelivery acknowledged as a replay. Before,
/// its id included the time it was received, so every redelivery was processed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_legacy_payload_delivered_twice_is_processed_once() {
    let w = World::start(SimOptions::default()).await;
    let realm = w.seed(1, "legacy").await.remove(0).realm_id;
    let (d, url) = daemon_with_webhooks(&w).await;
    let body = format!(
        r#"{{"eventNotifications":[{{"realmId":"{realm}","dataChangeEvent":{{"entities":[{{"name":"Invoice","id":"31","operation":"Update"}}]}}}}]}}"#
    );
    let sig = sign(VERIFIER.as_bytes(), body.as_bytes());
    assert_eq!(post(&url, body.as_bytes(), Some(&sig)).await, 200);
    assert_eq!(post(&url, body.as_bytes(), Some(&sig)).await, 200);
    let m = metrics(&d).await;
    let events = |m: &str, outcome: &str| {
        common::metric(
            m,
            &format!("qbo_webhook_events_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(events(&m, "processed"), Some(1.0), "{m}");
    assert_eq!(events(&m, "replayed"), Some(1.0), "{m}");
    d.stop(&w).await;
    // Intuit redelivers again later, to a restarted daemon.
    let (d, url) = daemon_with_webhooks(&w).await;
    assert_eq!(post(&url, body.as_bytes(), Some(&sig)).await, 200);
    let m = metrics(&d).await;
    assert_eq!(events(&m, "processed"), None, "{m}");
    assert_eq!(events(&m, "replayed"), Some(1.0), "{m}");
    let recorded = w
        .audit_events(200)
        .await
        .into_iter()
        .filter(|e| e["action"] == Action::DataChangeReported.as_str())
        .count();
    assert_eq!(recorded, 1);
    d.stop(&w).await;
}
