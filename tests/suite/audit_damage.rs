//! `audit verify` on the database names the same kinds of damage as the offline check of
//! an export: changed, missing, inserted, reordered, truncated, each with the first bad
//! sequence number.

use crate::common;

use common::World;
use qbo_sim::SimOptions;

/// A world with imports and refreshes, and the sequence number of its last event.
async fn world() -> (World, i64) {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "dmg").await;
    w.ok(&["refresh", "--all"]).await;
    // The tail records its own reading, one event after the last it showed.
    let last = w.audit_events(1).await[0]["seq"].as_i64().unwrap() + 1;
    (w, last)
}

async fn verdict(w: &World) -> serde_json::Value {
    let out = w.cli(&["audit", "verify", "--json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stdout(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks the human wording, then the JSON. Each `audit verify` appends its own record
/// after the walk, so a second run may see the damage from the other side (a cut-off end
/// becomes a gap once something follows it); the kind is asserted on the first.
async fn assert_damage(w: &World, seq: i64, kind: &str) {
    let out = w.cli(&["audit", "verify"]).await;
    let human = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(
        human.contains(&format!("BROKEN at sequence {seq} ({kind})")),
        "{human}"
    );
    let v = verdict(w).await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["first_bad_seq"], seq, "{v}");
}

const COLUMNS: &str = "at, actor_account, actor_uid, actor_ssh, interface, role, action, connection_id, \
    environment, realm_id, tenant, outcome, error_class, reason, intuit_tid, request_id, fingerprints, prev_hash, hash";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_field_is_named_changed() {
    let (w, _) = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&["UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 4"])
        .await;
    assert_damage(&w, 4, "changed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_row_is_named_missing_and_a_deleted_end_truncated() {
    let (w, last) = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&[&format!("DELETE FROM audit_events WHERE seq = {last}")])
        .await;
    assert_damage(&w, last, "truncated").await;
    w.exec_sql(&["DELETE FROM audit_events WHERE seq = 3"])
        .await;
    assert_damage(&w, 3, "missing").await;
    let v = verdict(&w).await;
    assert_eq!(v["kind"], "missing", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_added_past_the_head_is_named_inserted() {
    let (w, last) = world().await;
    // No guard needs dropping: inserting is what the log allows, but not past its head.
    w.exec_sql(&[&format!(
        "INSERT INTO audit_events (seq, {COLUMNS}) SELECT {}, {COLUMNS} FROM audit_events WHERE seq = 2",
        last + 1
    )])
    .await;
    // Walked without recording: the verify's own record could not take the sequence
    // number the stray row holds.
    let svc = w.service().await;
    let v = qbo_store::audit::verify(&svc.lifecycle_for_tests().store)
        .await
        .unwrap();
    assert!(!v.ok);
    assert_eq!(v.first_bad_seq, Some(last + 1), "{v:?}");
    assert_eq!(v.kind, Some(qbo_store::audit::Damage::Inserted), "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_rows_are_named_reordered() {
    let (w, _) = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&[
        "UPDATE audit_events SET seq = -5 WHERE seq = 5",
        "UPDATE audit_events SET seq = 5 WHERE seq = 6",
        "UPDATE audit_events SET seq = 6 WHERE seq = -5",
    ])
    .await;
    assert_damage(&w, 5, "reordered").await;
}
