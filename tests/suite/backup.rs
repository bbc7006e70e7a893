//! Backups (issue 26): `db backup` while `serve` refreshes, a backup that opens and whose
//! chain and manifest verify, and the restore drill whose verdicts match what `qbo-sim`
//! says of the tokens the backup holds.

use crate::common::catalogue::assert_catalogued;
use crate::common::{self, World};
use chrono::Duration;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::backup::{RestoreDrill, Verdict};
use qbo_service::Selection;
use qbo_sim::{PreviousToken, Rotation, SimOptions, TokenStanding};
use qbo_store::audit::Action;
use serde_json::Value;

fn me() -> String {
    // SAFETY: getuid cannot fail and has no preconditions.
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// A configuration like the world's, on another SQLite file: to open a backup as the
/// product would after a restore.
fn config_on(w: &World, db: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&w.config).unwrap();
    let url = text
        .lines()
        .find(|l| l.trim_start().starts_with("url = \"sqlite:"))
        .expect("the world's SQLite url")
        .to_string();
    let moved = text.replace(&url, &format!("url = \"sqlite://{}\"", db.display()));
    let path = w.path("on-backup.toml");
    std::fs::write(&path, moved).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_serve_refreshes_opens_verifies_and_matches_its_manifest() {
    let w = World::start_on_sqlite(SimOptions::default()).await;
    w.seed(30, "bk").await;
    let d = w.start_daemon(&[]).await;
    let file = w.path("nightly.db");
    let file_arg = file.to_str().unwrap().to_string();
    // One round of refreshes on record, then more committing while the snapshot is taken.
    w.ok(&["refresh", "--all"]).await;
    let refreshing = async {
        for _ in 0..3 {
            w.ok(&["refresh", "--all"]).await;
        }
    };
    let backing_up = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        w.ok(&["db", "backup", &file_arg, "--json"]).await
    };
    let ((), out) = tokio::join!(refreshing, backing_up);
    let r: Value = serde_json::from_str(&out).unwrap();
    let m = &r["manifest"];
    assert_eq!(m["connections"], 30, "{m}");
    // At least the import and the first round: a point between commits, whichever.
    assert!(m["audit_head_seq"].as_i64().unwrap() >= 60, "{m}");
    assert!(m["not_included"]
        .as_str()
        .unwrap()
        .contains("token encryption key"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The manifest verifies, offline, with the daemon's key; a changed byte does not.
    let pubkey = w.ok(&["audit", "pubkey"]).await.trim().to_string();
    let ok = w
        .ok(&["db", "verify-backup", &file_arg, "--pubkey", &pubkey])
        .await;
    assert!(ok.contains("intact"), "{ok}");
    // The backup opens as a database, and its audit chain verifies (on a copy: opening a
    // database as the product does records the opening).
    let copy = w.path("opened.db");
    std::fs::copy(&file, &copy).unwrap();
    let on_backup = config_on(&w, &copy);
    let on = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
            .arg("--config")
            .arg(&on_backup)
            .arg("--embedded")
            .args(args)
            .output()
            .unwrap()
    };
    let verified = on(&["audit", "verify"]);
    assert!(verified.status.success(), "{}", common::stderr(&verified));
    let listed = on(&["list", "--json"]);
    let rows: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.len(), 30);

    // A backup never overwrites a file.
    let again = w.cli(&["db", "backup", &file_arg]).await;
    assert_eq!(again.status.code(), Some(2), "{}", common::stderr(&again));
    assert!(common::stderr(&again).contains("never overwrites"));
    // The backup is on record, as an admin's act.
    let events = w.audit_events(1000).await;
    let ev = events
        .iter()
        .find(|e| e["action"] == "database backup" && e["outcome"] == "ok")
        .expect("the backup is recorded");
    assert_catalogued(ev, Action::DatabaseBackup, &me());

    // A restore refuses while serve runs.
    let running = w.cli(&["db", "restore", &file_arg, "--yes"]).await;
    assert_eq!(
        running.status.code(),
        Some(2),
        "{}",
        common::stderr(&running)
    );
    assert!(
        common::stderr(&running).contains("refuses while serve runs"),
        "{}",
        common::stderr(&running)
    );
    d.stop(&w).await;
    let kept = || {
        std::fs::read_dir(w.path("."))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".before-restore-"))
    };
    // Without --yes: the drill, and nothing changed.
    let shown = w.ok(&["db", "restore", &file_arg]).await;
    assert!(
        shown.contains("nothing was changed") && shown.contains("live"),
        "{shown}"
    );
    assert!(!kept());
    assert_ne!(w.audit_events(1).await[0]["action"], "database restored");
    let restored = w.ok(&["db", "restore", &file_arg, "--yes"]).await;
    assert!(
        restored.contains("the replaced database is kept at"),
        "{restored}"
    );
    assert!(kept(), "the replaced database is kept aside");
    // The restored chain: the backup's head, then the restore itself; intact.
    let newest = w.audit_events(3).await;
    let last = newest
        .iter()
        .find(|e| e["action"] == "database restored")
        .expect("the restore is on record");
    assert_eq!(
        last["seq"].as_i64().unwrap(),
        m["audit_head_seq"].as_i64().unwrap() + 1,
        "{last}"
    );
    assert_catalogued(last, Action::DatabaseRestored, &me());
    assert!(
        last["reason"].as_str().unwrap().contains("drill: "),
        "{last}"
    );
    let verify = w.ok(&["audit", "verify"]).await;
    assert!(verify.contains("intact"), "{verify}");

    // Tampered: one byte changed in the middle.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let bad = w
        .cli(&["db", "verify-backup", &file_arg, "--pubkey", &pubkey])
        .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(common::stderr(&bad).contains("does not match its manifest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_restore_drill_says_of_each_token_what_qbo_sim_says() {
    let w = World::start_on_sqlite(SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::Grace24h,
        ..SimOptions::default()
    })
    .await;
    let grants = w.seed(9, "dr").await;
    let d = w.in_process().await;
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    let file = w.path("before.db");
    d.service
        .db_backup(&admin, file.to_str().unwrap())
        .await
        .expect("backup");
    let names =
        |r: std::ops::Range<usize>| Selection::Named(r.map(|i| format!("dr-{i}")).collect());
    // dr-0..2 rotate, then a day and more passes: the backup's tokens are past their grace.
    d.service.refresh(&admin, &names(0..3)).await.unwrap();
    w.advance(&d, Duration::hours(25));
    // dr-3..5 rotate now: the backup's tokens are inside Intuit's grace.
    d.service.refresh(&admin, &names(3..6)).await.unwrap();
    // dr-6..8 are left alone: the backup holds their live tokens.

    let drill: RestoreDrill = d
        .service
        .db_restore_check(&admin, file.to_str().unwrap())
        .await
        .expect("drill");
    let mut sim_says = (0, 0, 0);
    for g in &grants {
        match w.sim.refresh_token_standing(&g.refresh_token) {
            TokenStanding::Current => sim_says.0 += 1,
            TokenStanding::InGrace => sim_says.1 += 1,
            TokenStanding::Refused { .. } => sim_says.2 += 1,
        }
    }
    assert_eq!(sim_says, (3, 3, 3), "the scenario as qbo-sim sees it");
    assert_eq!(
        (drill.live, drill.recoverable, drill.lost),
        sim_says,
        "{}",
        drill.summary()
    );
    for (i, g) in grants.iter().enumerate() {
        let item = drill
            .items
            .iter()
            .find(|x| x.tenant == format!("dr-{i}"))
            .unwrap();
        let expected = match w.sim.refresh_token_standing(&g.refresh_token) {
            TokenStanding::Current => Verdict::Live,
            TokenStanding::InGrace => Verdict::Recoverable,
            TokenStanding::Refused { .. } => Verdict::Lost,
        };
        assert_eq!(item.verdict, expected, "dr-{i}");
    }
    assert!(drill.audit_events_missing >= 6, "{}", drill.summary());
    let text = w.ok(&["db", "restore-check", file.to_str().unwrap()]).await;
    // (The CLI's clock is the wall clock, a day behind this test's: only what does not
    // depend on it is compared.)
    assert!(
        text.contains("3 live") && text.contains("audit events the backup lacks"),
        "{text}"
    );
    let events = w.audit_events(20).await;
    let ev = events
        .iter()
        .find(|e| e["action"] == "restore check")
        .expect("the drill is recorded");
    assert_catalogued(ev, Action::RestoreCheck, &me());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_postgresql_is_refused_with_what_pg_dump_must_include() {
    let w = World::start(SimOptions::default()).await;
    if !w.on_postgres() {
        // Only a PostgreSQL world has the refusal to show; the SQLite runs prove backups.
        return;
    }
    let out = w
        .cli(&["db", "backup", w.path("x.db").to_str().unwrap()])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("pg_dump") && err.contains("audit_events"),
        "{err}"
    );
    assert!(!w.path("x.db").exists());
}
