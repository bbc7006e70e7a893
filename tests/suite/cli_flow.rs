//! The everyday path through the CLI: import, list, show, refresh, verify, audit, keys, db.

use crate::common;

use common::World;
use qbo_sim::SimOptions;
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_list_refresh_verify_and_audit() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(3, "flow").await;

    let table = w.ok(&["list"]).await;
    for h in [
        "TENANT",
        "REALM",
        "STATUS",
        "ACCESS TOKEN",
        "REFRESH WINDOW",
        "LAST SYNC",
    ] {
        assert!(table.contains(h), "{table}");
    }
    assert!(
        table.contains("flow-0") && table.contains("✓ active") && table.contains("3 connections"),
        "{table}"
    );

    // Imported with a known access expiry and an unknown refresh window.
    let list = w.connections_json().await;
    assert_eq!(list.len(), 3);
    assert!(list[0]["access_expires_in_secs"].as_i64().unwrap() > 3000);
    assert!(list[0]["refresh_days_left"].is_null());
    assert_eq!(
        w.ok(&["list", "--status", "needs-reconnect", "--json"])
            .await
            .trim(),
        "[]"
    );
    assert_eq!(w.connections_json().await.len(), 3);
    let bad = w.cli(&["list", "--status", "sleepy"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(common::stderr(&bad).contains("unknown status \"sleepy\""));

    // Nothing is due right after import; refresh by name fills the 100-day window.
    let due: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["refresh", "--due", "--json"]).await).unwrap();
    assert!(due.is_empty(), "{due:?}");
    let out = w.ok(&["refresh", "flow-1", "--json"]).await;
    let r: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(r[0]["outcome"], "refreshed");
    assert_eq!(r[0]["tenant"], "flow-1");
    assert!(r[0]["intuit_tid"].is_string());
    let show: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", &grants[1].realm_id, "--json"]).await).unwrap();
    let c = &show["connection"];
    assert_eq!(c["refresh_days_left"].as_i64().unwrap(), 99);
    assert!(
        c["hard_expires_at"].is_string(),
        "the 5-year limit was asked for and stored"
    );
    assert!(show["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "refresh"));

    // Verify records the company name and the sync status.
    let out = w.ok(&["verify", "flow-2", "flow-0", "--json"]).await;
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|x| x["outcome"] == "ok"), "{out}");
    let show: serde_json::Value =
        serde_json::from_str(&w.ok(&["show", "flow-2", "--json"]).await).unwrap();
    assert_eq!(show["connection"]["last_sync_status"], "ok");
    assert_eq!(show["connection"]["company_name"], "flow Company 2");
    let human = w.ok(&["show", "flow-2"]).await;
    assert!(human.contains("last sync         ok"), "{human}");

    // The audit trail names the actor and interface; tail --json is one object per line.
    // Reads are on the record too: the two `show`s come after the verify.
    let tail = w.ok(&["audit", "tail", "-n", "5", "--json"]).await;
    let mut lines: Vec<serde_json::Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let shows = lines.split_off(3);
    for s in &shows {
        assert_eq!(s["action"], "show");
        assert_eq!(s["tenant"], "flow-2");
        assert_eq!(s["outcome"], "ok");
        assert_eq!(s["fingerprints"], "", "a read involves no token");
    }
    assert_eq!(lines[2]["action"], "verify");
    assert_eq!(lines[2]["interface"], "cli");
    assert_eq!(
        lines[2]["actor_account"],
        qbo_core::identity::account_name(unsafe { libc::getuid() })
    );
    assert!(lines[0]["seq"].as_i64().unwrap() < lines[2]["seq"].as_i64().unwrap());
    let human = w.ok(&["audit", "tail"]).await;
    assert!(human.contains("import") && human.contains("refresh") && human.contains("verify"));

    // Refresh --all exits 0 only when everything succeeded.
    w.ok(&["refresh", "--all"]).await;
    w.sim.disconnect(&grants[0].realm_id);
    let out = w.cli(&["refresh", "--all"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stdout(&out).contains("NEEDS RECONNECT"));
    assert!(common::stdout(&out).contains("2 of 3 refreshed"));
    // A dead connection is no longer part of --all.
    w.ok(&["refresh", "--all"]).await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_update_replaces_tokens_and_keeps_the_row() {
    let w = World::start(SimOptions::default()).await;
    let g = w.seed(1, "upd").await.remove(0);
    let id = w.connections_json().await[0]["id"].clone();
    let fresh = w
        .sim
        .seed_grant(common::SANDBOX_CLIENT, Some(&g.realm_id), None)
        .unwrap();
    let file = w.path("upd.json");
    std::fs::write(
        &file,
        format!("[{{\"tenant\":\"upd-renamed\",\"realm_id\":\"{}\",\"environment\":\"sandbox\",\"refresh_token\":\"{}\"}}]", g.realm_id, fresh.refresh_token),
    )
    .unwrap();
    let out = w.cli(&["import", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "existing pairs need --update");
    let out = w
        .ok(&["import", file.to_str().unwrap(), "--update", "--json"])
        .await;
    std::fs::remove_file(&file).unwrap();
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["updated"], 1);
    let list = w.connections_json().await;
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["tenant"], "upd-renamed");
    // Unknown access expiry after an update: it is due now.
    let due: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["refresh", "--due", "--json"]).await).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0]["outcome"], "refreshed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_migrations() {
    let w = World::start(SimOptions::default()).await;
    let key = w.path("new.key");
    w.ok(&["keys", "generate", "--out", key.to_str().unwrap()])
        .await;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&key).unwrap();
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim())
            .unwrap()
            .len(),
        32
    );
    let again = w
        .cli(&["keys", "generate", "--out", key.to_str().unwrap()])
        .await;
    assert_eq!(again.status.code(), Some(2));
    assert!(common::stderr(&again).contains("refusing to overwrite"));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    // Every migration the source holds, however many features have added one.
    let migrations = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/store/src/migrations/sqlite"),
    )
    .unwrap()
    .count();
    let out = w.ok(&["db", "migrate"]).await;
    assert!(
        out.contains(&format!("{migrations} migration(s) applied")),
        "{out}"
    );
    let out = w.ok(&["db", "migrate"]).await;
    assert!(out.contains("0 migration(s) applied"), "{out}");
    for verb in [
        "import", "list", "show", "refresh", "verify", "audit", "db", "keys",
    ] {
        w.ok(&[verb, "--help"]).await;
    }
}

/// The seq numbers of `audit tail --json` output.
fn tail_seqs(out: &str) -> Vec<i64> {
    out.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_longer_than_a_page_is_streamed_whole_oldest_first_in_process_and_over_the_socket() {
    let w = World::start(SimOptions::default()).await;
    // An import records an event per row: more than one page (1,000) of log.
    w.seed(1_300, "tail").await;
    let n = 1_200;
    let seqs = tail_seqs(
        &w.ok(&["audit", "tail", "-n", &n.to_string(), "--json"])
            .await,
    );
    assert_eq!(seqs.len(), n, "exactly the N asked for");
    assert!(
        seqs.windows(2).all(|p| p[1] == p[0] + 1),
        "oldest first, none missing"
    );
    // It ended at the newest event before it: its own read is the next one.
    let read = tail_seqs(&w.ok(&["audit", "tail", "-n", "1", "--json"]).await);
    assert_eq!(read, [seqs[n - 1] + 1]);
    let text = w.ok(&["audit", "tail", "-n", &n.to_string()]).await;
    assert_eq!(text.lines().count(), n, "one line per event");
    assert!(text.lines().all(|l| l.starts_with('#')), "{text:.300}");

    let me = qbo_core::identity::account_name(unsafe { libc::getuid() });
    w.append_config(&format!("[roles]\nauditor = [\"{me}\"]\n"));
    let daemon = w.start_daemon(&[]).await;
    let out = w
        .via_daemon(&["audit", "tail", "-n", "100000", "--json"])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let all = tail_seqs(&String::from_utf8(out.stdout).unwrap());
    assert!(all.len() > n && all.len() < 100_000, "{}", all.len());
    assert!(all.windows(2).all(|p| p[1] == p[0] + 1));
    assert_eq!(all[0], 1, "fewer events than asked for: the whole log");
    daemon.stop(&w).await;
}
