//! Retention of the audit log: nothing is ever deleted by default; with
//! `[retention] audit_days`, older events go to a signed, verified archive first, and the
//! chain left in the database verifies from the archived head. Ordinary deletes stay
//! impossible.

use crate::common;

use common::World;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_sim::SimOptions;
use qbo_store::audit::Action;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_events_are_archived_with_a_signed_manifest_and_the_chain_verifies_from_the_archived_head(
) {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "ret").await;
    w.ok(&["refresh", "--all"]).await;

    // By default nothing is archived, ever.
    let out = w.cli(&["audit", "archive"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("[retention] audit_days"),
        "{}",
        common::stderr(&out)
    );

    let dir = w.path("archive");
    std::fs::create_dir(&dir).unwrap();
    w.append_config(&format!(
        "[retention]\naudit_days = 30\narchive_dir = \"{}\"\n",
        dir.display()
    ));
    // Nothing is 30 days old yet.
    let out = w.ok(&["audit", "archive"]).await;
    assert!(out.contains("nothing to archive"), "{out}");

    // Thirty-one days later, as the daemon sees it.
    let d = w.in_process().await;
    w.advance(&d, chrono::Duration::days(31));
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    let r = d.service.audit_archive(&admin).await.unwrap();
    let through = r.through_seq.expect("something was archived");
    assert_eq!(r.archived as i64, through, "{r:?}");
    assert!(through >= 6, "{r:?}");

    // The archive proves itself with the public key alone.
    let key = w.ok(&["audit", "pubkey"]).await.trim().to_string();
    let file = r.file.clone().unwrap();
    let verify = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .env_clear()
        .args([
            "audit", "verify", "--json", "--export", &file, "--pubkey", &key,
        ])
        .output()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["rows"], through);
    assert_eq!(v["first_seq"], 1);

    // The database keeps the rest, verified from the archived head.
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["audit", "verify", "--json"]).await).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["archived_through"], through, "{v}");
    let archived_ev = w
        .audit_events(20)
        .await
        .into_iter()
        .find(|e| e["action"] == "audit archive")
        .expect("the archive is on record");
    common::catalogue::assert_catalogued(&archived_ev, Action::AuditArchive, &me());
    assert!(archived_ev["reason"].as_str().unwrap().contains(&file));

    // Ordinary deletes remain impossible, and so does rewriting the archived head.
    for sql in [
        format!("DELETE FROM audit_events WHERE seq = {}", through + 1),
        "DELETE FROM audit_archive".to_string(),
        "UPDATE audit_archive SET through_hash = 'x'".to_string(),
        format!(
            "INSERT INTO audit_archive (through_seq, through_hash, archived_at, file, sha256, manifest) VALUES ({}, 'x', 'x', 'x', 'x', 'x')",
            through
        ),
    ] {
        let e = w.try_sql(&sql).await.unwrap_err();
        assert!(
            e.contains("append-only") || e.contains("only moves forward"),
            "{sql}: {e}"
        );
    }

    // A month on, a second archive continues from the first; the chain still verifies,
    // now from the newer head.
    w.advance(&d, chrono::Duration::days(31));
    let r2 = d.service.audit_archive(&admin).await.unwrap();
    let through2 = r2.through_seq.expect("the newer events are due too");
    assert!(through2 > through);
    let v: serde_json::Value =
        serde_json::from_str(&w.ok(&["audit", "verify", "--json"]).await).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["archived_through"].clone()),
        (true.into(), through2.into()),
        "{v}"
    );

    // Damage after an archive is still named.
    w.drop_audit_guards().await;
    w.exec_sql(&[&format!(
        "UPDATE audit_events SET reason = 'x' WHERE seq = {}",
        through2 + 1
    )])
    .await;
    let out = w.cli(&["audit", "verify", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["first_bad_seq"].clone(), v["kind"].clone()),
        ((through2 + 1).into(), "changed".into()),
        "{v}"
    );
    w.assert_no_secrets().await;
}
