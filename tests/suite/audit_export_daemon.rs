//! An export through the daemon's socket: streamed by the daemon, so the auditor's client
//! needs no database and no key, only the socket; viewers and support are refused, on record.

use crate::common;

use common::World;
use qbo_sim::SimOptions;
use qbo_store::audit::export::Manifest;
use qbo_store::audit::Action;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_without_database_access_exports_through_the_socket_and_viewer_and_support_are_refused(
) {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "sock").await;
    w.ok(&["refresh", "--all"]).await;
    // The operator's client knows only where the socket is: no database, no vault.
    let client = w.path("client.toml");
    std::fs::write(
        &client,
        format!("[daemon]\nsocket = \"{}\"\n", w.socket().display()),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"));
        c.arg("--config").arg(&client).args(args);
        c.env_remove("QBO_CONSOLE_LOG");
        c
    };
    for (role, allowed) in [("auditor", true), ("viewer", false), ("support", false)] {
        w.append_config(&format!("[roles]\n{role} = [\"{}\"]\n", me()));
        let d = w.start_daemon(&[]).await;
        let file = w.path(&format!("{role}.csv"));
        let out = run(vec![
            "audit".into(),
            "export".into(),
            "--format".into(),
            "csv".into(),
            "-o".into(),
            file.display().to_string(),
        ])
        .output()
        .await
        .unwrap();
        w.keep(&out);
        if allowed {
            assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
            let key = run(vec!["audit".into(), "pubkey".into()])
                .output()
                .await
                .unwrap();
            assert_eq!(key.status.code(), Some(0), "{}", common::stderr(&key));
            let key = common::stdout(&key).trim().to_string();
            let m: Manifest = serde_json::from_str(
                &std::fs::read_to_string(format!("{}.manifest.json", file.display())).unwrap(),
            )
            .unwrap();
            assert_eq!(m.exported_by.account, me());
            assert_eq!(m.exported_by.role, "auditor");
            assert_eq!(m.public_key, key);
            let verify = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
                .env_clear()
                .args([
                    "audit",
                    "verify",
                    "--export",
                    file.to_str().unwrap(),
                    "--pubkey",
                    &key,
                ])
                .output()
                .await
                .unwrap();
            assert_eq!(
                verify.status.code(),
                Some(0),
                "{}{}",
                common::stdout(&verify),
                common::stderr(&verify)
            );
            assert!(common::stdout(&verify).contains("export intact"));
        } else {
            assert_eq!(
                out.status.code(),
                Some(3),
                "{role}: {}",
                common::stderr(&out)
            );
            assert!(
                common::stderr(&out).contains("permission denied"),
                "{}",
                common::stderr(&out)
            );
            assert!(!file.exists(), "a refused export leaves no file");
        }
        d.stop(&w).await;
    }
    let exports: Vec<serde_json::Value> = w
        .audit_events(500)
        .await
        .into_iter()
        .filter(|e| e["action"] == "audit export")
        .collect();
    let by_outcome = |o: &str| exports.iter().filter(|e| e["outcome"] == o).count();
    assert_eq!(
        (by_outcome("ok"), by_outcome("denied")),
        (1, 2),
        "{exports:?}"
    );
    for ev in &exports {
        common::catalogue::assert_catalogued(ev, Action::AuditExport, &me());
    }
    assert!(exports
        .iter()
        .any(|e| e["outcome"] == "denied" && e["role"] == "viewer"));
    w.assert_no_secrets().await;
}
