//! `list --where FILTER --limit N`: the console's filter language on the command line,
//! judged by the daemon, with the shape of `list --json` unchanged.

use crate::common;

use common::World;
use qbo_sim::SimOptions;

fn tenants(json: &str) -> Vec<String> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).expect("list --json is JSON");
    let mut t: Vec<String> = rows
        .iter()
        .map(|r| r["tenant"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

async fn list_events(w: &World) -> Vec<serde_json::Value> {
    w.audit_events(10_000)
        .await
        .into_iter()
        .filter(|e| e["action"] == "list")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_takes_the_consoles_filter_and_a_limit_and_refuses_a_bad_one_naming_it() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(5, "lw").await;
    for g in &grants[..2] {
        w.sim.disconnect(&g.realm_id);
    }
    // Exit 1: two of the five need their customer now.
    let refreshed = w.cli(&["refresh", "--all"]).await;
    assert_eq!(
        refreshed.status.code(),
        Some(1),
        "{}",
        common::stderr(&refreshed)
    );
    // A viewer may list: the least role that can.
    let me = qbo_core::identity::account_name(unsafe { libc::getuid() });
    w.append_config(&format!("[roles]\nviewer = [\"{me}\"]\n"));
    let d = w.start_daemon(&[]).await;

    let all = w.via_daemon(&["list", "--json"]).await;
    assert!(all.status.success(), "{}", common::stderr(&all));
    assert_eq!(tenants(&common::stdout(&all)).len(), 5);

    let dead = w
        .via_daemon(&["list", "--json", "--where", "status:needs_reconnect"])
        .await;
    assert!(dead.status.success(), "{}", common::stderr(&dead));
    assert_eq!(tenants(&common::stdout(&dead)), ["lw-0", "lw-1"]);

    let live_one = w
        .via_daemon(&["list", "--json", "--where", "status:active", "--limit", "1"])
        .await;
    assert!(live_one.status.success(), "{}", common::stderr(&live_one));
    let one = tenants(&common::stdout(&live_one));
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(
        ["lw-2", "lw-3", "lw-4"].contains(&one[0].as_str()),
        "{one:?}"
    );

    // The human table takes the same flags.
    let table = w
        .via_daemon(&["list", "--where", "status:needs_reconnect"])
        .await;
    let text = common::stdout(&table);
    assert!(
        text.contains("lw-0") && text.contains("lw-1") && !text.contains("lw-2"),
        "{text}"
    );

    let recorded = list_events(&w).await;
    assert!(
        recorded.iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("where \"status:active\"") && r.contains("limit 1"))),
        "the read is on record with its filter and limit: {recorded:#?}"
    );

    // Bad input: exit 2, the term and the forms named, nothing read and nothing recorded.
    let before = list_events(&w).await.len();
    let bad = w.via_daemon(&["list", "--where", "stauts:active"]).await;
    assert_eq!(bad.status.code(), Some(2), "{}", common::stderr(&bad));
    let err = common::stderr(&bad);
    assert!(
        err.contains("stauts:active") && err.contains("valid forms"),
        "{err}"
    );
    let zero = w.via_daemon(&["list", "--limit", "0"]).await;
    assert_eq!(zero.status.code(), Some(2), "{}", common::stderr(&zero));
    assert!(
        common::stderr(&zero).contains("--limit 0"),
        "{}",
        common::stderr(&zero)
    );
    assert_eq!(
        list_events(&w).await.len(),
        before,
        "a refused list records nothing"
    );
    d.stop(&w).await;
}

/// `list --json` is written a page at a time (1,000 rows a page): across pages nothing is
/// lost or repeated, the order is the listing's, and `--jsonl` has the same objects one per
/// line; through the daemon and embedded alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_json_streams_across_pages_in_the_listings_order_and_jsonl_has_the_same_rows() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1_205, "page").await;
    let embedded = w.cli(&["list", "--json"]).await;
    assert!(embedded.status.success(), "{}", common::stderr(&embedded));
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&common::stdout(&embedded)).expect("list --json is one JSON array");
    assert_eq!(rows.len(), 1_205);
    let keys: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["tenant"].as_str().unwrap().to_string(),
                r["environment"].as_str().unwrap().to_string(),
                r["realm_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "in the listing's order, each once");

    let me = qbo_core::identity::account_name(unsafe { libc::getuid() });
    w.append_config(&format!("[roles]\nviewer = [\"{me}\"]\n"));
    let d = w.start_daemon(&[]).await;
    let streamed = w.via_daemon(&["list", "--jsonl"]).await;
    assert!(streamed.status.success(), "{}", common::stderr(&streamed));
    let lines: Vec<serde_json::Value> = common::stdout(&streamed)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // The daemon's own work (its health checks) may change a row's sync and last actor
    // between two reads; which connections, in which order, with which identity, may not.
    let settled = |rows: &[serde_json::Value]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                serde_json::json!([
                    r["id"],
                    r["tenant"],
                    r["environment"],
                    r["realm_id"],
                    r["company_name"],
                    r["created_at"]
                ])
            })
            .collect()
    };
    assert_eq!(
        settled(&lines),
        settled(&rows),
        "the same objects, one per line"
    );
    let limited = w
        .via_daemon(&["list", "--json", "--limit", "1001", "--where", "page"])
        .await;
    let limited: Vec<serde_json::Value> =
        serde_json::from_str(&common::stdout(&limited)).expect("JSON");
    assert_eq!(limited.len(), 1_001);
    assert_eq!(settled(&limited), settled(&rows[..1_001]));
    d.stop(&w).await;
}
