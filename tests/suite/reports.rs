//! `support-bundle` and `report posture`: what they contain, who may have them, that they
//! hold no token, secret or code, and that asking for one is on record.

use crate::common;

use common::catalogue::assert_catalogued;
use common::World;
use qbo_sim::{FaultConfig, FaultKind, Rotation, SimOptions};
use qbo_store::audit::Action;
use serde_json::Value;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

fn every_refresh() -> SimOptions {
    SimOptions {
        rotation: Rotation::EveryRefresh,
        ..SimOptions::default()
    }
}

fn keys_of(v: &Value) -> HashSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Neither report may hold a client secret or a key: the values the world wrote to files.
fn assert_no_configured_secret(w: &World, text: &str) {
    for secret in [common::SANDBOX_SECRET, common::PRODUCTION_SECRET] {
        assert!(!text.contains(secret), "a client secret in {text}");
    }
    for key in ["token.key", "fingerprint.key"] {
        let k = std::fs::read_to_string(w.path(key)).unwrap();
        assert!(!text.contains(k.trim()), "the {key} in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_support_bundle_lists_every_intuit_call_with_status_and_tid_the_fingerprints_around_each_refresh_and_the_backoff(
) {
    let w = World::start(every_refresh()).await;
    let grants = w.seed(1, "sb").await;
    let d = w.in_process().await;
    // The scheduler's first refresh; then Intuit fails three attempts running and recovers.
    assert_eq!(d.tick().await.refreshed, 1);
    w.sim.set_realm_faults(
        &grants[0].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    w.advance(&d, chrono::Duration::hours(2));
    for _ in 0..3 {
        assert_eq!(d.tick().await.failed, 1);
        w.advance(&d, chrono::Duration::minutes(1));
    }
    w.sim.clear_realm_faults(&grants[0].realm_id);
    assert_eq!(d.tick().await.refreshed, 1);
    // An operator's refresh and verify.
    w.ok(&["refresh", "sb-0"]).await;
    w.ok(&["verify", "sb-0"]).await;

    let out = w
        .ok(&["support-bundle", "sb-0", "--since", "7d", "--json"])
        .await;
    let b: Value = serde_json::from_str(&out).expect("support-bundle --json is one object");
    assert_eq!(
        keys_of(&b),
        [
            "generated_at",
            "generated_by",
            "window",
            "since",
            "connection",
            "configuration",
            "status_history",
            "intuit_calls",
            "refreshes",
            "scheduler",
            "incidents",
            "truncated"
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        "{b}"
    );
    assert_eq!(b["window"], "7d");
    assert_eq!(b["generated_by"], me().as_str());
    assert_eq!(b["connection"]["tenant"], "sb-0");
    assert_eq!(b["connection"]["realm_id"], grants[0].realm_id.as_str());
    assert_eq!(b["configuration"]["client_id"], common::SANDBOX_CLIENT);
    assert_eq!(
        b["configuration"]["redirect_uri"],
        "http://localhost:8080/callback"
    );
    assert_eq!(
        b["configuration"]["scopes"],
        serde_json::json!(["com.intuit.quickbooks.accounting"])
    );

    // Every Intuit call: six refreshes (five by the scheduler, one by hand) and a verify,
    // each with its endpoint, HTTP status and the tid Intuit gave it.
    let calls = b["intuit_calls"].as_array().unwrap();
    let summary: Vec<(String, Option<u64>)> = calls
        .iter()
        .map(|c| {
            (
                c["endpoint"].as_str().unwrap().to_string(),
                c["http_status"].as_u64(),
            )
        })
        .collect();
    let token = |s: u64| ("token".to_string(), Some(s));
    assert_eq!(
        summary,
        vec![
            token(200),
            token(503),
            token(503),
            token(503),
            token(200),
            token(200),
            ("companyinfo".to_string(), Some(200)),
        ],
        "{calls:?}"
    );
    for c in calls {
        assert!(
            c["intuit_tid"].as_str().is_some_and(|t| !t.is_empty()),
            "{c}"
        );
    }
    let failed: Vec<&Value> = calls.iter().filter(|c| c["outcome"] == "failed").collect();
    assert!(
        failed.iter().all(|c| c["error_class"] == "transient"),
        "{failed:?}"
    );

    // Fingerprints before and after each refresh: each successful refresh spends the token
    // the one before it stored, and a failed one spends the same token again.
    let refreshes = b["refreshes"].as_array().unwrap();
    assert_eq!(refreshes.len(), 6);
    let import_fp = w
        .audit_events(100)
        .await
        .into_iter()
        .find(|e| e["action"] == "import")
        .unwrap()["fingerprints"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .find_map(|p| p.strip_prefix("refresh="))
        .unwrap()
        .to_string();
    let mut holding = import_fp;
    for r in refreshes {
        assert_eq!(r["refresh_used"].as_str(), Some(holding.as_str()), "{r}");
        if r["outcome"] == "ok" {
            let new = r["refresh_new"].as_str().expect("rotated on every refresh");
            assert_ne!(new, holding);
            assert!(r["access_new"].as_str().unwrap().starts_with("fp:"));
            holding = new.to_string();
        }
    }

    // The scheduler's attempts: five, three failed, each failure with the backoff chosen,
    // growing from [refresh] backoff_base (1s) up to its cap (10s).
    let sch = &b["scheduler"];
    assert_eq!(
        (sch["backoff_base"].as_str(), sch["backoff_cap"].as_str()),
        (Some("1s"), Some("10s"))
    );
    let attempts = sch["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 5, "{attempts:?}");
    let backoffs: Vec<Duration> = attempts
        .iter()
        .filter(|a| a["outcome"] == "failed")
        .map(|a| humantime::parse_duration(a["backoff"].as_str().expect("a backoff")).unwrap())
        .collect();
    assert_eq!(backoffs.len(), 3);
    for (i, b) in backoffs.iter().enumerate() {
        let full = Duration::from_secs(1 << i);
        assert!(
            *b >= full / 2 && *b <= full,
            "failure {}: backoff {b:?}",
            i + 1
        );
    }
    assert!(attempts[1..]
        .iter()
        .all(|a| a["secs_since_previous"].as_i64().is_some()));
    assert_eq!(sch["consecutive_failures"], 0);
    let history = b["status_history"].as_array().unwrap();
    assert_eq!(history.first().unwrap()["action"], "import");
    assert_eq!(history.last().unwrap()["action"], "verify");

    // The Markdown file, written owner-only, says the same, and asking is on record.
    let file = w.path("bundle.md");
    let out = w
        .cli(&["support-bundle", "sb-0", "-o", file.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains(file.to_str().unwrap()));
    let md = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for c in calls {
        assert!(md.contains(c["intuit_tid"].as_str().unwrap()), "{md}");
    }
    assert!(md.contains(&holding) && md.contains("| 503 |"), "{md}");
    assert!(
        md.contains(common::SANDBOX_CLIENT) && md.contains("## Scheduler attempts and backoff")
    );
    let ev = w.audit_events(1).await.remove(0);
    assert_catalogued(&ev, Action::SupportBundle, &me());
    assert_eq!(ev["tenant"], "sb-0");
    assert!(
        ev["reason"].as_str().unwrap().contains("7 Intuit calls"),
        "{ev}"
    );

    assert_no_configured_secret(&w, &md);
    assert_no_configured_secret(&w, &out_text(&b));
    // Every token the emulator issued, against the bundle file (under the world's
    // directory) and everything printed.
    w.assert_no_secrets().await;
}

fn out_text(v: &Value) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_window_or_target_is_refused_with_exit_2_and_nothing_recorded() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "bw").await;
    let before = w.snapshot().await;
    let out = w
        .cli(&["support-bundle", "bw-0", "--since", "forever"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(err.contains("\"forever\"") && err.contains("30d"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = w.cli(&["support-bundle", "nobody"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("no connection matches"));
    let out = w.cli(&["report", "posture", "--format", "pdf"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(w.snapshot().await, before, "bad input changed the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_posture_report_states_scopes_keys_roles_chain_retention_and_endpoints_from_the_live_installation(
) {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "ps").await;
    w.append_config(&format!(
        "[roles]\nadmin = [\"{}\"]\nauditor = [\"@audit\", \"carol\"]\n\n[retention]\nrevoked_days = 30\n",
        me()
    ));
    let out = w.ok(&["report", "posture", "--format", "json"]).await;
    let r: Value = serde_json::from_str(&out).expect("report posture --format json");
    assert_eq!(
        keys_of(&r),
        [
            "generated_at",
            "generated_by",
            "configuration_file",
            "environments",
            "scopes",
            "encryption",
            "roles",
            "audit",
            "retention",
            "outbound_endpoints"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    let envs = r["environments"].as_array().unwrap();
    assert_eq!(envs.len(), 2);
    let prod = envs
        .iter()
        .find(|e| e["environment"] == "production")
        .unwrap();
    assert_eq!(prod["redirect_uri"], "https://ops.example.com/qbo/callback");
    assert_eq!(prod["client_id"], common::PRODUCTION_CLIENT);
    // Honest about the accounting scope: Intuit grants write with it, though the console
    // sends no write call.
    assert_eq!(
        prod["write_capable_scopes"],
        serde_json::json!(["com.intuit.quickbooks.accounting"])
    );
    assert_eq!(r["scopes"]["write_capable_scope_requested"], true);
    assert_eq!(r["scopes"]["write_calls_made"], false);
    assert!(r["scopes"]["explanation"]
        .as_str()
        .unwrap()
        .contains("no read-only accounting scope"));
    let enc = &r["encryption"];
    assert!(enc["algorithm"]
        .as_str()
        .unwrap()
        .starts_with("AES-256-GCM"));
    let status: Value = serde_json::from_str(&w.ok(&["keys", "status", "--json"]).await).unwrap();
    assert_eq!(enc["keys"]["current_key_id"], status["current_key_id"]);
    assert_eq!(enc["keys"]["keys"][0]["connections"], 3);
    // Over plain HTTP to the emulator: the report says so rather than claiming HTTPS.
    assert!(enc["in_transit"].as_str().unwrap().starts_with("NOT all"));
    let roles = r["roles"].as_array().unwrap();
    let auditor = roles.iter().find(|x| x["role"] == "auditor").unwrap();
    assert_eq!(auditor["members"], serde_json::json!(["@audit", "carol"]));
    assert!(auditor["may"]
        .as_array()
        .unwrap()
        .contains(&Value::from("read the audit log")));
    assert_eq!(r["audit"]["verify"]["ok"], true);
    assert!(r["audit"]["location"]
        .as_str()
        .unwrap()
        .contains("audit_events"));
    assert_eq!(r["retention"]["revoked_days"], 30);
    let host = w.sim.local_addr().ip().to_string();
    let endpoints = r["outbound_endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 6);
    assert!(endpoints
        .iter()
        .all(|e| e["host"] == host.as_str() && e["https"] == false));

    let md = w.ok(&["report", "posture"]).await;
    for heading in [
        "## Scopes and redirect URIs",
        "## Token encryption",
        "## Who holds which role",
        "## Audit log",
        "## Retention",
        "## Outbound endpoints the daemon calls",
    ] {
        assert!(md.contains(heading), "{heading} missing from {md}");
    }
    assert!(md.contains("`revoked_days` = 30"), "{md}");
    let ev = w.audit_events(1).await.remove(0);
    assert_catalogued(&ev, Action::PostureReport, &me());
    assert!(
        ev["reason"].as_str().unwrap().contains("chain intact"),
        "{ev}"
    );
    assert_no_configured_secret(&w, &out);
    assert_no_configured_secret(&w, &md);
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn support_gets_bundles_over_the_socket_and_auditors_get_the_posture_each_refused_the_other()
{
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "rl").await;
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let out = w.via_daemon(&["support-bundle", "rl-0", "--json"]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let b: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(b["connection"]["tenant"], "rl-0");
    let out = w.via_daemon(&["report", "posture"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    d.stop(&w).await;

    w.append_config(&format!("[roles]\nauditor = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let out = w
        .via_daemon(&["report", "posture", "--format", "json"])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let out = w.via_daemon(&["support-bundle", "rl-0"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    d.stop(&w).await;

    let events = w.audit_events(100).await;
    let of = |action: Action| -> Vec<(String, String)> {
        events
            .iter()
            .filter(|e| e["action"] == action.as_str())
            .map(|e| {
                assert_catalogued(e, action, &me());
                (
                    e["role"].as_str().unwrap().to_string(),
                    e["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |r: &str, o: &str| (r.to_string(), o.to_string());
    assert_eq!(
        of(Action::SupportBundle),
        [pair("support", "ok"), pair("auditor", "denied")]
    );
    assert_eq!(
        of(Action::PostureReport),
        [pair("support", "denied"), pair("auditor", "ok")]
    );
}
