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
