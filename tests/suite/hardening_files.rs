//! The files that hold credentials or their traces: what this program creates is
//! owner-only under the common umask 022 (group-readable only for `[daemon] file_group`),
//! and what it finds open to other accounts is refused, naming the file and the fix.

use crate::common;

use common::World;
use qbo_sim::SimOptions;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs the embedded CLI under umask 022.
async fn run_022(w: &World, args: &[&str]) -> Output {
    let mut cmd = w.command(args);
    common::with_umask(&mut cmd, 0o022);
    let out = cmd.output().await.expect("run qbo-console");
    w.keep(&out);
    out
}

async fn ok_022(w: &World, args: &[&str]) -> String {
    let out = run_022(w, args).await;
    assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
    common::stdout(&out)
}

/// A SQLite world whose log goes to `qbo.log`.
async fn world_with_log_file() -> World {
    let w = World::start_on_sqlite(SimOptions::default()).await;
    w.edit_config(
        "[log]\n",
        &format!("[log]\nfile = \"{}\"\n", w.path("qbo.log").display()),
    );
    w
}

/// Removes the database, its side files and the log, so the next command creates them.
fn forget_database(w: &World) {
    for name in [
        "qbo.db",
        "qbo.db-wal",
        "qbo.db-shm",
        "qbo.db.daemon.lock",
        "qbo.log",
    ] {
        let _ = std::fs::remove_file(w.path(name));
    }
}

/// Every regular file in the world's directory that the test did not write itself, with
/// its mode.
fn created_files(w: &World) -> Vec<(String, u32)> {
    let mine = [
        "qbo-console.toml",
        "token.key",
        "fingerprint.key",
        "sandbox.secret",
        "production.secret",
    ];
    let mut out: Vec<(String, u32)> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !mine.contains(&n.as_str()) && !n.ends_with(".csv"))
        .map(|n| {
            let m = mode(&w.path(&n));
            (n, m)
        })
        .collect();
    out.sort();
    out
}

/// A grant at the emulator, as an import file.
fn import_file(w: &World, name: &str) -> String {
    let g = w
        .sim
        .seed_grant(common::SANDBOX_CLIENT, None, None)
        .expect("seed grant");
    let file = w.path(name);
    std::fs::write(
        &file,
        format!(
            "tenant,realm_id,environment,refresh_token\nimported,{},sandbox,{}\n",
            g.realm_id, g.refresh_token
        ),
    )
    .unwrap();
    file.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_created_by_serve_migrate_import_and_keys_generate_are_owner_only_under_umask_022() {
    let w = world_with_log_file().await;

    let key = w.path("new.key");
    ok_022(&w, &["keys", "generate", "--out", key.to_str().unwrap()]).await;
    assert_eq!(mode(&key), 0o600, "keys generate --out");
    std::fs::remove_file(&key).unwrap();

    ok_022(&w, &["db", "migrate"]).await;
    let made = created_files(&w);
    assert!(
        made.iter().any(|(n, _)| n == "qbo.db") && made.iter().any(|(n, _)| n == "qbo.log"),
        "db migrate made {made:?}"
    );
    assert!(
        made.iter().all(|(_, m)| *m == 0o600),
        "db migrate: {made:?}"
    );

    forget_database(&w);
    let file = import_file(&w, "imported.csv");
    ok_022(&w, &["import", &file]).await;
    let made = created_files(&w);
    assert!(
        made.iter().any(|(n, _)| n == "qbo.db"),
        "import made {made:?}"
    );
    assert!(made.iter().all(|(_, m)| *m == 0o600), "import: {made:?}");

    // The daemon holds the database open, so its WAL and shared-memory files exist while
    // it runs: SQLite gives them the database file's mode.
    forget_database(&w);
    let mut cmd = w.daemon_command(&["serve"]);
    common::with_umask(&mut cmd, 0o022);
    let d = w.start_daemon_from(cmd).await;
    let made = created_files(&w);
    d.stop(&w).await;
    for name in [
        "qbo.db",
        "qbo.db-wal",
        "qbo.db-shm",
        "qbo.db.daemon.lock",
        "qbo.log",
    ] {
        assert!(
            made.iter().any(|(n, _)| n == name),
            "serve made no {name}: {made:?}"
        );
    }
    assert!(made.iter().all(|(_, m)| *m == 0o600), "serve: {made:?}");
}

/// A group this (root) process may give files to, other than its own.
fn another_group() -> Option<(&'static str, u32)> {
    // SAFETY: getegid and geteuid cannot fail and have no preconditions.
    let (me, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if me != 0 {
        return None;
    }
    ["daemon", "adm", "nogroup", "users", "bin", "sys"]
        .into_iter()
        .filter_map(|g| qbo_core::identity::group_id(g).map(|id| (g, id)))
        .find(|(_, id)| *id != gid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_file_group_the_database_and_log_are_readable_by_that_group_only() {
    let Some((group, gid)) = another_group() else {
        common::skip_root_test("giving files to another group needs root and a second group");
        return;
    };
    let w = world_with_log_file().await;
    w.edit_config(
        "[daemon]\n",
        &format!("[daemon]\nfile_group = \"{group}\"\n"),
    );
    ok_022(&w, &["db", "migrate"]).await;
    forget_database(&w);
    let mut cmd = w.daemon_command(&["serve"]);
    common::with_umask(&mut cmd, 0o077);
    let d = w.start_daemon_from(cmd).await;
    let mut seen = Vec::new();
    for name in ["qbo.db", "qbo.db-wal", "qbo.db-shm", "qbo.log"] {
        let meta = std::fs::metadata(w.path(name)).unwrap();
        seen.push((name, meta.mode() & 0o777, meta.gid()));
    }
    d.stop(&w).await;
    // Even under umask 077 the group keeps its read bit: the mode is set, not requested.
    for (name, m, g) in seen {
        assert_eq!((m, g), (0o640, gid), "{name}");
    }
}

fn one_refusal(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected a refusal: {}",
        common::stderr(out)
    );
    let err = common::stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    lines[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_key_secret_database_or_log_open_to_others_is_refused_and_nothing_is_written() {
    let w = world_with_log_file().await;
    let old_key = w.path("old.key");
    common::write_secret(&old_key, qbo_core::vault::generate_key().as_str());
    w.edit_config(
        "[vault]\n",
        &format!("[vault]\nold_key_files = [\"{}\"]\n", old_key.display()),
    );
    w.seed(1, "held").await;
    let log = w.path("qbo.log");
    let before = (w.snapshot().await, std::fs::read(&log).unwrap());
    let wal = w.path("qbo.db-wal");
    let cases: Vec<(&str, u32, &str)> = vec![
        (
            "token.key",
            0o644,
            "readable by group or others (mode 0644)",
        ),
        (
            "token.key",
            0o640,
            "readable by group or others (mode 0640)",
        ),
        ("old.key", 0o604, "readable by group or others (mode 0604)"),
        (
            "fingerprint.key",
            0o644,
            "readable by group or others (mode 0644)",
        ),
        ("sandbox.secret", 0o644, "readable by group or others"),
        (
            "qbo.db",
            0o644,
            "open to every account on this machine (mode 0644)",
        ),
        (
            "qbo.db-wal",
            0o604,
            "open to every account on this machine (mode 0604)",
        ),
        (
            "qbo.log",
            0o644,
            "open to every account on this machine (mode 0644)",
        ),
    ];
    for (name, bad, expect) in cases {
        let path = w.path(name);
        // A WAL is there only after a crash; an empty one stands for it.
        let made_wal = path == wal && !wal.exists();
        if made_wal {
            std::fs::write(&wal, b"").unwrap();
        }
        let good = mode(&path);
        chmod(&path, bad);
        for args in [
            vec!["list"],
            vec!["refresh", "--all"],
            vec!["db", "migrate"],
        ] {
            let secret = name.ends_with(".key") || name.ends_with(".secret");
            if secret && args == ["db", "migrate"] {
                continue; // needs no secret
            }
            let line = one_refusal(&run_022(&w, &args).await, &format!("{name} {args:?}"));
            let fix = format!("`chmod 600 {}`", path.display());
            assert!(
                line.contains(expect) && line.contains(&fix),
                "{name} {args:?}: expected {expect:?} and {fix:?} in {line}"
            );
        }
        chmod(&path, good);
        if made_wal {
            std::fs::remove_file(&wal).unwrap();
        }
        assert_eq!(
            before,
            (w.snapshot().await, std::fs::read(&log).unwrap()),
            "refusing {name} changed the database or the log"
        );
    }

    // The daemon refuses too, before it serves anything.
    chmod(&w.path("qbo.db"), 0o644);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        w.daemon_command(&["serve"]).output(),
    )
    .await
    .expect("serve refused within 30 s")
    .unwrap();
    let line = one_refusal(&out, "serve");
    assert!(line.contains("qbo.db is open to every account"), "{line}");
    chmod(&w.path("qbo.db"), 0o600);

    // A symlinked key: its target's mode is what counts, since that is what gets read.
    let key = w.path("token.key");
    let target = w.path("real.key");
    std::fs::rename(&key, &target).unwrap();
    std::os::unix::fs::symlink(&target, &key).unwrap();
    ok_022(&w, &["list"]).await;
    chmod(&target, 0o644);
    let line = one_refusal(&run_022(&w, &["list"]).await, "symlinked key");
    assert!(
        line.contains(&format!("`chmod 600 {}`", key.display())),
        "{line}"
    );
}
