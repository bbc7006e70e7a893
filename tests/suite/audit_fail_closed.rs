//! Fail-closed audit: when the audit event cannot be written, the credential change it
//! records does not happen either (one transaction), and the caller is told.

use crate::common;

use common::World;
use qbo_sim::SimOptions;

/// Makes every insert into the audit table fail, as a full disk or a broken table would.
pub(crate) async fn break_audit_writes(w: &World) {
    if common::postgres_base_url().is_some() {
        w.exec_sql(&[
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit storage unavailable (test)'; END $$",
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
        ])
        .await;
    } else {
        w.exec_sql(
            &["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit storage unavailable (test)'); END"],
        )
        .await;
    }
}

pub(crate) async fn repair_audit_writes(w: &World) {
    w.exec_sql(&[if common::postgres_base_url().is_some() {
        "DROP TRIGGER refuse_audit ON audit_events"
    } else {
        "DROP TRIGGER refuse_audit"
    }])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_record_no_change() {
    // Daily rotation: a refresh whose result could not be stored leaves a token that
    // still works, so the test can show the connection recovers once audit writes do.
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "closed").await;
    let before = w.snapshot().await;
    break_audit_writes(&w).await;

    let refresh = w.cli(&["refresh", "closed-0", "--json"]).await;
    assert_ne!(
        refresh.status.code(),
        Some(0),
        "a refresh without its audit record must not succeed"
    );
    let err = common::stderr(&refresh);
    assert!(err.contains("audit storage unavailable"), "{err}");
    assert!(err.contains("nothing is sent to Intuit"), "{err}");
    let import = w.path("more.csv");
    std::fs::write(
        &import,
        "tenant,realm_id,environment,refresh_token\nextra,9123456,sandbox,RT1-not-real\n",
    )
    .unwrap();
    let imported = w.cli(&["import", import.to_str().unwrap()]).await;
    assert_ne!(imported.status.code(), Some(0));
    // Reads are on the record too: without it, no answer.
    let listed = w.cli(&["list"]).await;
    assert_ne!(listed.status.code(), Some(0));
    // The log was broken before the call: the refresh stopped before reaching Intuit,
    // instead of spending a token whose answer it could not record.
    assert_eq!(
        w.sim.stats().token_requests,
        0,
        "nothing is sent to Intuit that could not be recorded"
    );
    assert_eq!(
        before,
        w.snapshot().await,
        "nothing changed: no new tokens, no new connection, no audit event"
    );

    repair_audit_writes(&w).await;
    let out = w.ok(&["refresh", "--all", "--json"]).await;
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(reports.iter().all(|r| r["outcome"] == "refreshed"), "{out}");
    assert_eq!(w.sim.stats().invalid_grants, 0);
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
    w.assert_no_secrets().await;
}
