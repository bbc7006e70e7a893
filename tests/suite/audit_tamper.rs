//! Tampering: changing, deleting or reordering one audit row makes `audit verify` fail and
//! name that sequence number. The table also refuses updates and deletes outright.

use crate::common;

use common::World;
use qbo_sim::SimOptions;

/// A world with 6 events: 3 imports and 3 refreshes.
async fn world() -> World {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "tamper").await;
    w.ok(&["refresh", "--all"]).await;
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact: 6 events"), "{v}");
    w
}

async fn broken_at(w: &World, seq: i64) {
    let out = w.cli(&["audit", "verify", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "audit verify must fail: {}",
        common::stdout(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], seq, "{v}");
    let human = w.cli(&["audit", "verify"]).await;
    assert!(
        common::stdout(&human).contains(&format!("BROKEN at sequence {seq}")),
        "{}",
        common::stdout(&human)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_is_append_only() {
    let w = world().await;
    assert!(w
        .try_sql("UPDATE audit_events SET reason = 'x' WHERE seq = 2")
        .await
        .unwrap_err()
        .contains("append-only"));
    assert!(w
        .try_sql("DELETE FROM audit_events WHERE seq = 2")
        .await
        .unwrap_err()
        .contains("append-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_row_is_named() {
    let w = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&["UPDATE audit_events SET actor_account = 'mallory' WHERE seq = 4"])
        .await;
    broken_at(&w, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_row_is_named() {
    let w = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&["DELETE FROM audit_events WHERE seq = 3"])
        .await;
    broken_at(&w, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_last_row_is_named() {
    let w = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&["DELETE FROM audit_events WHERE seq = 6"])
        .await;
    broken_at(&w, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_rows_are_named() {
    let w = world().await;
    w.drop_audit_guards().await;
    w.exec_sql(&[
        "UPDATE audit_events SET seq = -2 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = -2",
    ])
    .await;
    broken_at(&w, 2).await;
}
