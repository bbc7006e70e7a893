//! The database under stress: `audit verify` beside writers that never stop, and a disk
//! that fills up and then gets room again, with the same daemon throughout.

use crate::common;

use common::World;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::Selection;
use qbo_sim::SimOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// `audit verify --json`, through the daemon's socket or embedded: the exit code and the
/// report.
async fn verify(w: &World, via_daemon: bool) -> (Option<i32>, serde_json::Value) {
    let args = ["audit", "verify", "--json"];
    let out = if via_daemon {
        w.via_daemon(&args).await
    } else {
        w.cli(&args).await
    };
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "audit verify printed no report: {}{}",
            common::stdout(&out),
            common::stderr(&out)
        )
    });
    (out.status.code(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_verify_raises_no_false_alarm_while_refreshes_commit_and_still_names_a_real_edit() {
    let w = Arc::new(World::start(SimOptions::default()).await);
    w.seed(6, "busy").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;

    // Refreshes commit without pause: one loop in this process (a second writer beside
    // the daemon), one through the daemon's socket.
    let stop = Arc::new(AtomicBool::new(false));
    let refreshed = Arc::new(AtomicUsize::new(0));
    let service = w.service().await;
    let admin = Actor::current_process(Interface::Cli, Role::Admin);
    let in_process = tokio::spawn({
        let (stop, refreshed) = (stop.clone(), refreshed.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(reports) = service.refresh(&admin, &Selection::All).await {
                    let ok = reports.iter().filter(|r| r.outcome.is_success()).count();
                    refreshed.fetch_add(ok, Ordering::Relaxed);
                }
            }
        }
    });
    let through_socket = tokio::spawn({
        let (w, stop) = (w.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                w.via_daemon(&["refresh", "--all"]).await;
            }
        }
    });

    let before = refreshed.load(Ordering::Relaxed);
    for i in 0..20 {
        let via_daemon = i % 2 == 0;
        let (code, report) = verify(&w, via_daemon).await;
        assert_eq!(
            (code, &report["ok"]),
            (Some(0), &serde_json::json!(true)),
            "run {i} ({}) raised a false alarm on a healthy chain: {report}",
            if via_daemon { "socket" } else { "embedded" }
        );
    }
    // The runs overlapped commits.
    assert!(
        refreshed.load(Ordering::Relaxed) > before,
        "no refresh committed while audit verify ran"
    );

    // A real edit, made while the refreshes go on, is still named by both paths.
    w.drop_audit_guards().await;
    w.exec_sql(&["UPDATE audit_events SET actor_account = 'mallory' WHERE seq = 2"])
        .await;
    for via_daemon in [true, false] {
        let (code, report) = verify(&w, via_daemon).await;
        assert_eq!(code, Some(1), "{report}");
        assert_eq!(report["first_bad_seq"], 2, "{report}");
    }

    stop.store(true, Ordering::Relaxed);
    in_process.await.unwrap();
    through_socket.await.unwrap();
    assert!(d.stop(&w).await.success());
}

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one at `dir`, or says why it cannot (not root, no mount permission).
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid cannot fail and has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root, so no tmpfs can be mounted".into());
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes a file until the filesystem has no room left.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0x5a_u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a daemon still holding files there must not keep the mount alive.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A CSV of `n` connections whose tokens take several KB each: megabytes to store.
fn bulky_import(n: usize) -> String {
    let token = "x".repeat(3000);
    let mut csv = String::from("tenant,realm_id,environment,refresh_token,access_token\n");
    for i in 0..n {
        csv.push_str(&format!(
            "bulk-{i},{},sandbox,RT{i}{token},AT{i}{token}\n",
            9_100_000_000_000_000u64 + i as u64
        ));
    }
    csv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_disk_fills_the_same_daemon_recovers_once_there_is_room() {
    let mut w = World::start(SimOptions::default()).await;
    let mount = match Tmpfs::mount(&w.path("small-disk"), "16m") {
        Ok(m) => m,
        Err(why) => {
            common::skip_root_test(&format!(
                "{why}; this test needs root to mount a small tmpfs"
            ));
            return;
        }
    };
    // SQLite whatever the other tests use: the full disk is a file system's, not a server's.
    w.use_database(&format!("sqlite://{}/qbo.db", mount.0.display()));
    w.seed(3, "disk").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;

    mount.fill();
    let file = w.path("bulk.csv");
    std::fs::write(&file, bulky_import(400)).unwrap();
    let out = w.via_daemon(&["import", file.to_str().unwrap()]).await;
    let err = common::stderr(&out);
    assert!(!out.status.success(), "the import cannot fit: {err}");
    assert!(err.contains("disk full"), "the cause is named: {err}");
    assert!(err.contains("[database] url"), "the fix is named: {err}");
    // One line, after any progress lines (plain ones: stderr is no terminal here).
    let said: Vec<&str> = err
        .trim()
        .lines()
        .filter(|l| !l.starts_with("import: "))
        .collect();
    assert_eq!(said.len(), 1, "one line: {err}");

    let (status, body) = d.get("/healthz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk full"), "{body}");
    let (_, metrics) = d.get("/metrics").await;
    let full = common::metric(
        &metrics,
        "qbo_database_write_failures_total{cause=\"disk_full\"}",
    );
    assert!(full >= Some(1.0), "{metrics}");
    let audit = common::metric(&metrics, "qbo_audit_write_failures_total");
    assert!(audit >= Some(1.0), "{metrics}");
    let log = d.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("disk_full") && l.contains("disk full")),
        "{log}"
    );
    // More requests meet the full disk meanwhile; each must fail cleanly too.
    for _ in 0..4 {
        let out = w.via_daemon(&["list"]).await;
        if !out.status.success() {
            assert!(
                common::stderr(&out).contains("disk full"),
                "{}",
                common::stderr(&out)
            );
        }
    }

    mount.resize("64m");
    // Every pooled connection is used again (several requests, each opening a
    // transaction): none is left stuck in the failed one.
    for i in 0..12 {
        let out = w.via_daemon(&["list"]).await;
        assert!(
            out.status.success(),
            "list #{i} after the disk got room: {}",
            common::stderr(&out)
        );
    }
    let out = w.via_daemon(&["refresh", "--all", "--json"]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.len(), 3);
    assert!(
        reports.iter().all(|r| r["outcome"] == "refreshed"),
        "{reports:?}"
    );
    let (status, body) = d.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\":\"ok\""), "{body}");

    let tail = w.via_daemon(&["audit", "tail", "-n", "5", "--json"]).await;
    assert!(tail.status.success(), "{}", common::stderr(&tail));
    let actions: Vec<String> = common::stdout(&tail)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].to_string())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| a.contains("refresh")).count(),
        3,
        "the refreshes are on the audit log: {actions:?}"
    );
    let (code, report) = verify(&w, true).await;
    assert_eq!(code, Some(0), "{report}");
    assert!(d.stop(&w).await.success());
}
