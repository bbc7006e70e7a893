//! Key rotation beside a running daemon: `keys rotate` re-seals every stored token under
//! the new key while `serve` refreshes under Intuit's strictest rotation, survives a
//! SIGKILL by running again, and leaves every token's fingerprint as it was.

use crate::common;

use common::{Tuning, World};
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TENANTS: usize = 24;
/// The first few tenants are refreshed through the daemon all along; the others only the
/// rotation can move to the new key.
const REFRESHED: usize = 6;

fn strict() -> SimOptions {
    SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        token_latency: Duration::from_millis(10),
        ..SimOptions::default()
    }
}

async fn key_status(w: &World) -> serde_json::Value {
    serde_json::from_str(&w.ok(&["keys", "status", "--json"]).await).expect("keys status --json")
}

/// The key id every sealed value of the database names, with the count of values and
/// connections under each, read straight from the store.
async fn sealed_by_key(w: &World) -> HashMap<String, (i64, i64)> {
    let svc = w.service().await;
    let store = &svc.lifecycle_for_tests().store;
    let mut by_key: HashMap<String, (i64, std::collections::BTreeSet<i64>)> = HashMap::new();
    for c in w.connections_json().await {
        let id = c["id"].as_i64().unwrap();
        let sealed = store.load_sealed(id).await.unwrap().unwrap();
        for v in [
            sealed.access_token,
            sealed.refresh_token,
            sealed.previous_refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            let key = qbo_core::vault::sealed_key_id(&v).expect("a sealed value");
            let e = by_key.entry(key).or_default();
            e.0 += 1;
            e.1.insert(id);
        }
    }
    by_key
        .into_iter()
        .map(|(k, (values, conns))| (k, (values, conns.len() as i64)))
        .collect()
}

/// For each connection, every refresh must name as the token it spent the fingerprint the
/// previous event gave the token it stored (the import's, or the last rotation's): the
/// same token, the same fingerprint, whichever key sealed it meanwhile.
fn assert_fingerprints_chain(events: &[serde_json::Value]) -> usize {
    let mut last: HashMap<i64, String> = HashMap::new();
    let mut checked = 0;
    for ev in events {
        let Some(id) = ev["connection_id"].as_i64() else {
            continue;
        };
        let fps: HashMap<&str, &str> = ev["fingerprints"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|p| p.split_once('='))
            .collect();
        if ev["action"] == "import" {
            if let Some(fp) = fps.get("refresh") {
                last.insert(id, fp.to_string());
            }
        } else if ev["action"] == "refresh" && ev["outcome"] == "ok" {
            let used = fps
                .get("refresh_used")
                .expect("a refresh names the token it spent");
            assert_eq!(
                Some(&used.to_string()),
                last.get(&id),
                "connection {id}: the refresh token spent has another fingerprint than when it was stored: {ev}"
            );
            checked += 1;
            if let Some(new) = fps.get("refresh_new") {
                last.insert(id, new.to_string());
            }
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_beside_a_refreshing_daemon_moves_every_value_to_the_new_key_and_resumes_after_sigkill(
) {
    let w = Arc::new(World::start_tuned(strict(), Tuning::default()).await);
    let me = qbo_core::identity::Actor::current_process(
        qbo_core::identity::Interface::Cli,
        qbo_core::identity::Role::Admin,
    )
    .name();
    w.append_config(&format!("[roles]\nadmin = [\"{me}\"]\n"));
    w.seed(TENANTS, "rot").await;
    let old_id = key_status(&w).await["current_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let daemon = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    daemon.stop(&w).await;

    // The operator's procedure: a new key as key_file, the old one kept for opening,
    // the daemon restarted on them.
    let new_key = w.path("new.key");
    w.ok(&["keys", "generate", "--out", new_key.to_str().unwrap()])
        .await;
    let d = w.dir.path().display().to_string();
    w.edit_config(
        &format!("key_file = \"{d}/token.key\""),
        &format!("key_file = \"{d}/new.key\"\nold_key_files = [\"{d}/token.key\"]"),
    );
    let daemon = w.start_daemon(&[]).await;

    // The daemon keeps refreshing some tenants all through the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let refreshes = Arc::new(AtomicUsize::new(0));
    let refresher = {
        let (w, stop, refreshes) = (w.clone(), stop.clone(), refreshes.clone());
        tokio::spawn(async move {
            let targets: Vec<String> = (0..REFRESHED).map(|i| format!("rot-{i}")).collect();
            let mut args = vec!["refresh"];
            args.extend(targets.iter().map(String::as_str));
            while !stop.load(Ordering::Relaxed) {
                let out = w.via_daemon(&args).await;
                assert!(
                    out.status.success(),
                    "a refresh through the daemon failed during the rotation: {}",
                    common::stderr(&out)
                );
                refreshes.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // A rotation killed part way through.
    let mut child = w
        .command(&[
            "keys",
            "rotate",
            "--new-key",
            new_key.to_str().unwrap(),
            "--pace",
            "150ms",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn keys rotate");
    let new_id = loop {
        let s = key_status(&w).await;
        let current = s["current_key_id"].as_str().unwrap().to_string();
        let untouched = s["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key_id"] == old_id.as_str())
            .map_or(0, |k| k["connections"].as_i64().unwrap());
        // Some connections beyond the refreshed ones have moved: the rotation is under way.
        if untouched < (TENANTS - REFRESHED) as i64 - 3 {
            break current;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rotation finished before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.start_kill().unwrap();
    let out = child.wait_with_output().await.unwrap();
    w.keep(&out);
    assert!(!out.status.success(), "the rotation was not killed");
    let halfway = key_status(&w).await;
    assert_eq!(
        halfway["rotation_complete"], false,
        "the kill did not land mid-rotation: {halfway}"
    );
    assert_ne!(new_id, old_id);

    // Run again: it picks up what is left, whatever lease the killed run held.
    let report: serde_json::Value = serde_json::from_str(
        &w.ok(&[
            "keys",
            "rotate",
            "--new-key",
            new_key.to_str().unwrap(),
            "--json",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(report["key_id"], new_id.as_str());

    stop.store(true, Ordering::Relaxed);
    refresher.await.unwrap();
    assert!(
        refreshes.load(Ordering::Relaxed) >= 2,
        "the daemon hardly refreshed during the rotation"
    );
    daemon.stop(&w).await;

    // Every stored value is under the new key, and `keys status` says so with the
    // database's own figures.
    let by_key = sealed_by_key(&w).await;
    assert_eq!(
        by_key.keys().collect::<Vec<_>>(),
        vec![&new_id],
        "values remain under other keys: {by_key:?}"
    );
    let status = key_status(&w).await;
    assert_eq!(status["rotation_complete"], true);
    assert_eq!(status["fingerprint_key"], "configured");
    let keys = status["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{status}");
    assert_eq!(keys[0]["key_id"], new_id.as_str());
    assert_eq!(keys[0]["role"], "current");
    let (values, conns) = by_key[&new_id];
    assert_eq!(keys[0]["values"].as_i64(), Some(values));
    assert_eq!(keys[0]["connections"].as_i64(), Some(conns));
    assert_eq!(conns, TENANTS as i64);

    // The old key is no longer needed: without it every connection opens and refreshes.
    w.edit_config(&format!("\nold_key_files = [\"{d}/token.key\"]"), "");
    std::fs::remove_file(w.path("token.key")).unwrap();
    let refreshed: serde_json::Value =
        serde_json::from_str(&w.ok(&["refresh", "--all", "--json"]).await).unwrap();
    assert_eq!(refreshed.as_array().unwrap().len(), TENANTS);
    assert_eq!(w.sim.stats().invalid_grants, 0, "{:?}", w.sim.stats());

    // The same token kept its fingerprint across the key change, for every connection.
    let events = w.audit_events(100_000).await;
    let checked = assert_fingerprints_chain(&events);
    assert!(
        checked >= TENANTS * 2,
        "only {checked} refreshes were checked"
    );
    let actions: Vec<String> = events
        .iter()
        .filter(|e| e["action"] == "key rotation")
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        actions.iter().filter(|r| r.starts_with("started")).count() == 2
            && actions.iter().any(|r| r.starts_with("finished")),
        "key rotation events: {actions:?}"
    );
    w.ok(&["audit", "verify"]).await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_refuses_a_key_that_is_not_key_file_or_an_install_without_a_fingerprint_key() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "refuse").await;
    let stray = w.path("stray.key");
    w.ok(&["keys", "generate", "--out", stray.to_str().unwrap()])
        .await;
    let before = w.snapshot().await;
    let out = w
        .cli(&["keys", "rotate", "--new-key", stray.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("is not [vault] key_file") && err.contains("old_key_files"),
        "{err}"
    );
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused rotation wrote something"
    );

    // An install from before the fingerprint key: rotating would change every fingerprint.
    let d = w.dir.path().display().to_string();
    w.edit_config(
        &format!("fingerprint_key_file = \"{d}/fingerprint.key\"\n"),
        "",
    );
    let current = w.path("token.key");
    let out = w
        .cli(&["keys", "rotate", "--new-key", current.to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("--fingerprint-from"),
        "{}",
        common::stderr(&out)
    );
    let status = key_status(&w).await;
    assert_eq!(status["fingerprint_key"], "derived_from_token_key");
}

/// An install from before the fingerprint key keeps its fingerprints: the key
/// `keys generate --fingerprint-from` writes is the one it derived all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fingerprint_key_made_from_the_old_token_key_keeps_existing_fingerprints() {
    let w = World::start(SimOptions::default()).await;
    let d = w.dir.path().display().to_string();
    w.edit_config(
        &format!("fingerprint_key_file = \"{d}/fingerprint.key\"\n"),
        "",
    );
    w.seed(1, "legacy").await;
    let derived = w.path("derived-fingerprint.key");
    w.ok(&[
        "keys",
        "generate",
        "--fingerprint-from",
        w.path("token.key").to_str().unwrap(),
        "--out",
        derived.to_str().unwrap(),
    ])
    .await;
    w.edit_config(
        &format!("key_file = \"{d}/token.key\""),
        &format!(
            "key_file = \"{d}/token.key\"\nfingerprint_key_file = \"{d}/derived-fingerprint.key\""
        ),
    );
    w.ok(&["refresh", "--all"]).await;
    let status = key_status(&w).await;
    assert_eq!(status["fingerprint_key"], "configured");
    assert_eq!(assert_fingerprints_chain(&w.audit_events(1000).await), 1);
}

/// `keys status` through the daemon: an auditor reads the posture (recorded as a read),
/// a viewer is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_status_answers_an_auditor_through_the_daemon_and_refuses_a_viewer() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "posture").await;
    let me = qbo_core::identity::Actor::current_process(
        qbo_core::identity::Interface::Cli,
        qbo_core::identity::Role::Admin,
    )
    .name();
    w.append_config(&format!("[roles]\nauditor = [\"{me}\"]\n"));
    let d = w.start_daemon(&[]).await;
    let out = w.via_daemon(&["keys", "status", "--json"]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let s: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    assert_eq!(s["rotation_complete"], true);
    assert_eq!(s["keys"][0]["role"], "current");
    assert_eq!(s["keys"][0]["connections"], 3);
    // Access and refresh token of each: nothing has been rotated yet.
    assert_eq!(s["keys"][0]["values"], 6);
    assert_eq!(s["fingerprint_key"], "configured");
    let text = w.via_daemon(&["keys", "status"]).await;
    assert!(
        common::stdout(&text).contains("rotation complete"),
        "{}",
        common::stdout(&text)
    );
    d.stop(&w).await;
    let reads = w
        .audit_events(50)
        .await
        .into_iter()
        .filter(|e| e["action"] == "keys status" && e["role"] == "auditor")
        .count();
    assert_eq!(reads, 2, "each keys status is recorded as a read");

    w.append_config(&format!("[roles]\nviewer = [\"{me}\"]\n"));
    let d = w.start_daemon(&[]).await;
    let out = w.via_daemon(&["keys", "status"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    d.stop(&w).await;
}
