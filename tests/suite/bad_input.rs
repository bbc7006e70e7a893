//! Bad input of every kind: a one-line error naming the problem, a non-zero exit, and a
//! database left exactly as it was.

use crate::common;

use base64::Engine as _;
use common::World;
use qbo_sim::SimOptions;

fn one_line_error(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr, got:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0]
}

#[test]
fn invalid_configs_are_refused_with_the_key_and_the_fix() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid_configs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let good_key = qbo_core::vault::generate_key();
    let short_key = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line says what to expect");
        let cwd = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
            .current_dir(cwd.path())
            .arg("--config")
            .arg(&f)
            // The process that holds the secrets is the one that must refuse them.
            .args(["--embedded", "list"])
            .env("QBO_TEST_GOOD_KEY", good_key.as_str())
            .env("QBO_TEST_SHORT_KEY", &short_key)
            .env("QBO_TEST_SECRET", "s3cret")
            .env_remove("QBO_TEST_UNSET_SECRET")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", f.display());
        let line = one_line_error(&stderr);
        assert!(
            line.contains(expect),
            "{}: expected {expect:?} in {line:?}",
            f.display()
        );
        assert!(
            !line.contains("s3cret") && !line.contains(good_key.as_str()),
            "a secret leaked: {line}"
        );
        assert!(
            !cwd.path().join("must-not-exist.db").exists(),
            "{}: a database was created",
            f.display()
        );
    }
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[database]\nurl = \"sqlite://a.db\"\n[vault]\nkey_env = \"QBO_TEST_K\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .current_dir(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "--embedded", "list"])
        .env("QBO_TEST_K", qbo_core::vault::generate_key().as_str())
        .env("QBO_CONSOLE__DATABASE__URL", "mysql://nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mysql://nope"));
    // And QBO_CONSOLE_CONFIG finds the file when --config is absent.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .current_dir(dir.path())
        .args(["--embedded", "list"])
        .env("QBO_CONSOLE_CONFIG", &cfg)
        .env("QBO_TEST_K", qbo_core::vault::generate_key().as_str())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("a.db").exists());
    // No file at all: the process that would hold the data says where to put one; a client
    // looks for the daemon at its standard socket.
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
            .current_dir(empty.path())
            .args(args)
            .env_remove("QBO_CONSOLE_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["--embedded", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("qbo-console.toml: file not found"));
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/run/qbo-console/ops.sock"));
}

#[test]
fn a_directory_given_as_the_config_is_named_as_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--embedded", "list"], vec!["list"], vec!["serve"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
            .current_dir(dir.path())
            .arg("--config")
            .arg(dir.path())
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let line = one_line_error(&stderr);
        let fix = format!("--config {}/qbo-console.toml", dir.path().display());
        assert!(
            line.contains("is a directory") && line.contains(&fix),
            "{args:?}: {line}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} wrote into the directory"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_from_another_row_is_refused_and_nothing_changes() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "moved").await;
    w.exec_sql(&["UPDATE connections SET refresh_token = (SELECT refresh_token FROM connections WHERE id = 1) WHERE id = 2"]).await;
    let before = w.snapshot().await;
    let out = w.cli(&["refresh", "moved-1"]).await;
    assert_ne!(out.status.code(), Some(0));
    let line = one_line_error(&common::stderr(&out)).to_string();
    assert!(
        line.contains("connection 2") && line.contains("another row or column"),
        "{line}"
    );
    assert_eq!(before, w.snapshot().await, "the database changed");
    // The untouched connection still refreshes.
    w.ok(&["refresh", "moved-0"]).await;
}

/// One connection whose stored tokens will not open, among healthy ones: every connection
/// gets its own outcome, the healthy ones are refreshed or verified, and the exit code and
/// stderr say that one failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_operation_reports_every_connection_when_one_of_them_errs() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "bulk").await;
    w.exec_sql(&["UPDATE connections SET \
        refresh_token = (SELECT refresh_token FROM connections WHERE id = 1), \
        access_token = (SELECT access_token FROM connections WHERE id = 1) WHERE id = 2"])
        .await;
    for (args, healthy) in [
        (vec!["refresh", "--all", "--json"], "refreshed"),
        (vec!["verify", "bulk-0", "bulk-1", "bulk-2", "--json"], "ok"),
    ] {
        let out = w.cli(&args).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            common::stderr(&out)
        );
        let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reports.len(), 3, "{reports:#?}");
        for r in &reports {
            if r["tenant"] == "bulk-1" {
                assert_eq!(r["outcome"], "error", "{r}");
                let detail = r["detail"].as_str().unwrap();
                assert!(detail.contains("connection 2"), "{detail}");
            } else {
                assert_eq!(r["outcome"], healthy, "{args:?}: {r}");
            }
        }
        // The healthy refreshes are logged at info level; the error is one line of its own.
        let stderr = common::stderr(&out);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(
            errors[0].contains("bulk-1") && errors[0].contains("another row or column"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_one_bad_line_writes_nothing() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "base").await;
    // Read before the snapshot: a listing is itself on the audit record.
    let existing = w.connections_json().await[0]["realm_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = w.snapshot().await;
    let file = w.path("bad.csv");
    std::fs::write(
        &file,
        "tenant,realm_id,environment,refresh_token\nok-1,9001,sandbox,RT1-aaaa\nbad,90x2,sandbox,RT1-bbbb\nok-2,9003,sandbox,RT1-cccc\n",
    )
    .unwrap();
    let out = w.cli(&["import", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_line_error(&common::stderr(&out)).to_string();
    assert!(line.contains("bad.csv:3: invalid realm id"), "{line}");
    assert!(!line.contains("RT1-"), "{line}");
    assert_eq!(before, w.snapshot().await);

    // A JSON file whose third entry collides with an existing connection: refused whole.
    let json = format!(
        "[\n  {{\"tenant\":\"n1\",\"realm_id\":\"9101\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-x\"}},\n  {{\"tenant\":\"n2\",\"realm_id\":\"9102\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-y\"}},\n  {{\"tenant\":\"dup\",\"realm_id\":\"{existing}\",\"environment\":\"sandbox\",\"refresh_token\":\"RT1-z\"}}\n]\n"
    );
    let file = w.path("dup.json");
    std::fs::write(&file, json).unwrap();
    let out = w.cli(&["import", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_line_error(&common::stderr(&out)).to_string();
    assert!(
        line.contains("dup.json:4:")
            && line.contains("already exists")
            && line.contains("--update"),
        "{line}"
    );
    assert_eq!(before, w.snapshot().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_ambiguous_tenants_are_refused() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "acme").await;
    let prod = w.seed_production("acme-0").await;
    let before = w.snapshot().await;
    for args in [
        vec!["show", "nobody"],
        vec!["refresh", "nobody"],
        vec!["verify", "nobody"],
    ] {
        let out = w.cli(&args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let line = one_line_error(&common::stderr(&out)).to_string();
        assert!(line.contains("no connection matches \"nobody\""), "{line}");
    }
    let out = w.cli(&["refresh", "acme-0"]).await;
    assert_eq!(out.status.code(), Some(2));
    let line = one_line_error(&common::stderr(&out)).to_string();
    assert!(
        line.contains("matches 2 connections")
            && line.contains("sandbox:")
            && line.contains("production:"),
        "{line}"
    );
    assert_eq!(before, w.snapshot().await);
    // environment:realm picks one.
    w.ok(&["refresh", &format!("production:{}", prod.realm_id)])
        .await;
}

#[test]
fn the_example_config_is_valid_and_documents_every_section() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace(
            "/etc/qbo-console/token.key",
            &dir.path().join("k.key").display().to_string(),
        )
        .replace(
            "/etc/qbo-console/fingerprint.key",
            &dir.path().join("fp.key").display().to_string(),
        )
        .replace(
            "/etc/qbo-console/audit-signing.key",
            &dir.path().join("sign.key").display().to_string(),
        )
        .replace(
            "sqlite://qbo-console.db",
            &format!("sqlite://{}/q.db", dir.path().display()),
        );
    for key in ["k.key", "fp.key", "sign.key"] {
        common::write_secret(
            &dir.path().join(key),
            qbo_core::vault::generate_key().as_str(),
        );
    }
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "--embedded",
            "list",
            "--json",
        ])
        .env("QBO_PRODUCTION_CLIENT_SECRET", "p")
        .env("QBO_SANDBOX_CLIENT_SECRET", "s")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for section in [
        "[database]",
        "[vault]",
        "[environments.production]",
        "[environments.sandbox]",
        "[intuit]",
        "[refresh]",
        "[scheduler]",
        "[daemon]",
        "[roles]",
        "[log]",
        "[retention]",
        "[health]",
        "[forecast]",
        "[alerts]",
        "[[alerts.webhook]]",
        "[api]",
        "[webhooks]",
        "[audit]",
    ] {
        assert!(
            text.contains(section),
            "config.example.toml does not document {section}"
        );
    }
}

/// The same configuration mistakes, made on a live installation: the database that already
/// holds connections and their audit trail is left exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_leaves_an_existing_database_untouched() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "live").await;
    w.ok(&["refresh", "--all"]).await;
    let good = std::fs::read_to_string(&w.config).unwrap();
    let before = w.snapshot().await;
    let short_key = base64::engine::general_purpose::STANDARD.encode([7u8; 31]);
    common::write_secret(&w.path("short.key"), &short_key);
    let short_key_path = w.path("short.key").display().to_string();
    let token_key = w.path("token.key").display().to_string();
    let secret_file = w.path("sandbox.secret").display().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "malformed TOML",
            good.replacen("[vault]", "[vault", 1),
            "qbo-console.toml",
        ),
        (
            "missing secret",
            good.replacen(
                &format!("client_secret_file = \"{secret_file}\""),
                "client_secret_env = \"QBO_TEST_NOT_SET_ANYWHERE\"",
                1,
            ),
            "QBO_TEST_NOT_SET_ANYWHERE",
        ),
        (
            "wrong-length key",
            good.replacen(&token_key, &short_key_path, 1),
            "decodes to 31 bytes; expected 32",
        ),
    ];
    for (what, text, expect) in cases {
        assert_ne!(text, good, "{what}: the mistake was not made");
        std::fs::write(&w.config, &text).unwrap();
        for args in [vec!["list"], vec!["refresh", "--all"]] {
            let out = w.cli(&args).await;
            assert_eq!(out.status.code(), Some(2), "{what} {args:?}");
            let line = one_line_error(&common::stderr(&out)).to_string();
            assert!(
                line.contains(expect),
                "{what}: expected {expect:?} in {line}"
            );
            assert!(
                !line.contains(&short_key),
                "{what}: key material shown: {line}"
            );
        }
        assert_eq!(before, w.snapshot().await, "{what} changed the database");
    }
    std::fs::write(&w.config, &good).unwrap();
    assert_eq!(w.sim.stats().invalid_grants, 0);
}
