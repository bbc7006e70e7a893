//! Hostile text and hostile files: names carrying terminal escape sequences reach no
//! operator's terminal raw, and import refuses what it cannot read safely, with one line
//! naming the problem and the fix, exit 2 and nothing written.

use crate::common;

use common::{stderr, stdout, World, SANDBOX_CLIENT};
use qbo_sim::SimOptions;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// A tenant name with ESC `[2J` (clear screen), OSC 0 (set the window title), CR and a
/// right-to-left override.
const TENANT: &str = "t\u{1b}[2J\u{1b}]0;owned\u{7}\rX\u{202e}evil";
/// What the customer calls the company in QuickBooks, as Intuit's CompanyInfo returns it:
/// the same sequences, plus NUL.
const COMPANY_AT_INTUIT: &str = "Co\u{1b}[2J\u{1b}]0;owned\u{7}\r\0\u{202e}lime";

fn me() -> String {
    // SAFETY: getuid cannot fail.
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// Where a byte a terminal would obey appears: C0 controls but LF, DEL, C1 controls
/// (UTF-8 C2 80..9F) and U+202E (E2 80 AE).
fn raw_control(b: &[u8]) -> Option<usize> {
    (0..b.len()).find(|&i| {
        let x = b[i];
        (x < 0x20 && x != b'\n')
            || x == 0x7f
            || (x == 0xc2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
            || b[i..].starts_with("\u{202e}".as_bytes())
    })
}

fn assert_terminal_clean(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(i) = raw_control(bytes) {
            panic!(
                "{what}: a raw control byte reached {stream} at byte {i}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

fn one_line_error(what: &str, out: &Output) -> String {
    one_line_error_after(what, out, None)
}

/// The one error line, after any lines that start with `progress` (a long import's
/// progress, plain lines when stderr is no terminal).
fn one_line_error_after(what: &str, out: &Output, progress: Option<&str>) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit 2, got {:?}; stderr: {}",
        out.status.code(),
        stderr(out)
    );
    let err = stderr(out);
    assert!(
        !err.contains('\r'),
        "{what}: a terminal's progress line in a pipe: {err:?}"
    );
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| progress.is_none_or(|p| !l.starts_with(p)))
        .collect();
    assert_eq!(lines.len(), 1, "{what}: expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{what}: {err}");
    lines[0].to_string()
}

fn import_json(w: &World, name: &str, rows: &serde_json::Value) -> String {
    let path = w.path(name);
    std::fs::write(&path, serde_json::to_string_pretty(rows).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_tenant_and_company_names_reach_no_terminal_raw() {
    let w = World::start(SimOptions::default()).await;
    let g = w
        .sim
        .seed_grant(SANDBOX_CLIENT, None, Some(COMPANY_AT_INTUIT))
        .unwrap();
    let file = import_json(
        &w,
        "hostile.json",
        &serde_json::json!([{
            "tenant": TENANT,
            "realm_id": g.realm_id,
            "environment": "sandbox",
            "refresh_token": g.refresh_token,
            "company_name": "Imported\u{1b}]0;x\u{7}\u{202e}",
        }]),
    );
    let realm = g.realm_id.as_str();
    let mut outputs: Vec<(String, Output)> = Vec::new();

    // Embedded: every verb that prints a name, and an error that quotes one.
    let import = w.cli(&["import", &file]).await;
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stdout(&import).contains("imported 1 connection(s)"),
        "{}",
        stdout(&import)
    );
    outputs.push(("import".into(), import));
    let verify = w.cli(&["verify", realm]).await;
    assert!(verify.status.success(), "{}", stderr(&verify));
    // NUL, which no database column can hold, is kept as U+FFFD.
    assert!(
        stdout(&verify).contains("ok: Co\\x1b[2J\\x1b]0;owned\\x07\\r\u{fffd}\\u{202e}lime"),
        "{}",
        stdout(&verify)
    );
    outputs.push(("verify".into(), verify));
    for args in [
        vec!["list"],
        vec!["show", realm],
        vec!["refresh", realm],
        vec!["audit", "tail", "-n", "20"],
        vec!["show", TENANT],
    ] {
        let out = w.cli(&args).await;
        outputs.push((format!("--embedded {args:?}"), out));
    }
    let show = &outputs[3].1;
    assert!(show.status.success(), "{}", stderr(show));
    assert!(stdout(show).contains(r"company           Co\x1b[2J"));
    // JSON stays faithful: the name as given, escaped by JSON itself.
    let rows = w.connections_json().await;
    assert_eq!(rows[0]["tenant"], TENANT);
    assert_eq!(
        rows[0]["company_name"],
        COMPANY_AT_INTUIT.replace('\0', "\u{fffd}")
    );

    // Through the daemon, with a watcher printing changes as they commit.
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let watch = w
        .daemon_command(&["watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let g2 = w
        .sim
        .seed_grant(SANDBOX_CLIENT, None, Some(COMPANY_AT_INTUIT))
        .unwrap();
    let second = format!("{TENANT}-2");
    let file2 = import_json(
        &w,
        "hostile2.json",
        &serde_json::json!([{
            "tenant": second,
            "realm_id": g2.realm_id,
            "environment": "sandbox",
            "refresh_token": g2.refresh_token,
        }]),
    );
    for args in [
        vec!["import", file2.as_str()],
        vec!["verify", g2.realm_id.as_str()],
        vec!["list"],
        vec!["show", g2.realm_id.as_str()],
        vec!["refresh", realm],
        vec!["audit", "tail", "-n", "20"],
        vec!["show", TENANT],
    ] {
        let out = w.via_daemon(&args).await;
        outputs.push((format!("daemon {args:?}"), out));
    }
    let daemon_verify = &outputs[outputs.len() - 6].1;
    assert!(
        stdout(daemon_verify).contains(r"\u{202e}lime"),
        "{}",
        stdout(daemon_verify)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut watch = watch;
    watch.start_kill().unwrap();
    let watched = watch.wait_with_output().await.unwrap();
    assert!(
        !watched.stdout.is_empty(),
        "watch printed nothing; the check would prove nothing"
    );
    outputs.push(("watch".into(), watched));
    d.stop(&w).await;

    for (what, out) in &outputs {
        assert_terminal_clean(what, out);
    }
    // The import files hold tokens on purpose; they are not part of what must stay clean.
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(&file2).unwrap();
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nul_in_a_name_or_a_line_break_in_a_token_is_refused_with_nothing_written() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "base").await;
    let before = w.snapshot().await;
    let header = "tenant,realm_id,environment,refresh_token,access_token,company_name";
    let cases: [(&str, String, &str); 5] = [
        (
            "nul-tenant.csv",
            format!("{header}\nac\0me,1001,sandbox,RT1-a,,\n"),
            ":2: tenant contains a NUL character; remove it from the file",
        ),
        (
            "nul-company.csv",
            format!("{header}\nok,1001,sandbox,RT1-a,,\nacme,1002,sandbox,RT1-b,,Co\0rp\n"),
            ":3: company_name contains a NUL character; remove it from the file",
        ),
        (
            "lf-token.csv",
            format!("{header}\nacme,1001,sandbox,\"RT1-secret\nRT1-rest\",,\n"),
            ":2: refresh_token contains a line break (CR or LF); a token is a single line",
        ),
        (
            "cr-token.csv",
            format!("{header}\nacme,1001,sandbox,RT1-a,\"AT-secret\rAT-rest\",\n"),
            ":2: access_token contains a line break (CR or LF)",
        ),
        (
            "crlf.csv",
            format!("{header}\r\nok,1001,sandbox,RT1-a,,\r\n\r\nbad,10x3,sandbox,RT1-b,,\r\n"),
            ":4: invalid realm id \"10x3\"",
        ),
    ];
    for (name, text, expect) in cases {
        let path = w.path(name);
        std::fs::write(&path, text).unwrap();
        let out = w.cli(&["import", path.to_str().unwrap()]).await;
        let line = one_line_error(name, &out);
        assert!(
            line.contains(&format!("{name}{expect}")),
            "{name}: expected {expect:?} in {line:?}"
        );
        assert!(
            !line.contains("secret"),
            "{name}: a token was quoted: {line}"
        );
        assert_terminal_clean(name, &out);
        std::fs::remove_file(&path).unwrap();
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused import wrote something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn import_reads_only_a_regular_utf8_file_of_any_size() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "base").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    // Its scheduler refreshes the imported connection at once; nothing after that.
    w.wait_for_first_pass().await;
    let before = w.snapshot().await;

    let fifo = w.path("pipe.csv");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let dir = w.path("a-directory.csv");
    std::fs::create_dir(&dir).unwrap();
    // Sparse: larger than the old 16 MiB cap, without the disk. Read to its end (no line
    // break in 70 MiB of NUL) and refused for what it holds, not for its size.
    let huge = w.path("huge.csv");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(70 * 1024 * 1024)
        .unwrap();
    let latin1 = w.path("latin1.csv");
    std::fs::write(
        &latin1,
        b"tenant,realm_id,environment,refresh_token\nacme,1,sandbox,RT1-a\ncaf\xe9,2,sandbox,RT1-b\n",
    )
    .unwrap();
    let cases: Vec<(&Path, &str)> = vec![
        (
            Path::new("/dev/zero"),
            "/dev/zero is a device; import reads a regular CSV or JSON file: save the data to a file first",
        ),
        (
            &fifo,
            "pipe.csv is a FIFO (named pipe); import reads a regular CSV or JSON file",
        ),
        (
            &dir,
            "a-directory.csv is a directory; import reads a regular CSV or JSON file",
        ),
        (
            &huge,
            "huge.csv:1: the CSV header has no `tenant` column",
        ),
        (
            &latin1,
            "latin1.csv:3: not UTF-8 text (bad byte at offset 66); save the file as UTF-8; nothing was imported",
        ),
    ];

    for (path, expect) in &cases {
        let p = path.to_str().unwrap();
        for (how, cmd) in [
            ("--embedded", w.command(&["import", p])),
            ("daemon", w.daemon_command(&["import", p])),
        ] {
            let mut cmd = cmd;
            // A FIFO opened for a plain read would wait for a writer forever.
            let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
                .await
                .unwrap_or_else(|_| panic!("{how} import {p} hung"))
                .unwrap();
            w.keep(&out);
            let line = one_line_error_after(&format!("{how} import {p}"), &out, Some("import: "));
            assert!(
                line.contains(expect),
                "{how} import {p}: expected {expect:?} in {line:?}"
            );
        }
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused import wrote something"
    );
    d.stop(&w).await;
}

/// `args` through the daemon, or `--embedded`.
async fn run(w: &World, daemon: bool, args: &[&str]) -> Output {
    if daemon {
        w.via_daemon(args).await
    } else {
        w.cli(args).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_lines_quoting_a_hostile_name_reach_no_terminal_raw() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "bulk").await;
    // Connection 2 gets the hostile name and connection 1's ciphertext, so that refreshing
    // or verifying it errs; connection 3 gets the same name, so that naming it is ambiguous.
    let name = TENANT.replace('\'', "''");
    w.exec_sql(&[
        "UPDATE connections SET \
         refresh_token = (SELECT refresh_token FROM connections WHERE id = 1), \
         access_token = (SELECT access_token FROM connections WHERE id = 1) WHERE id = 2",
        &format!("UPDATE connections SET tenant = '{name}' WHERE id IN (2, 3)"),
    ])
    .await;
    let rows = w.connections_json().await;
    let realm = |id: i64| {
        rows.iter()
            .find(|r| r["id"] == id)
            .map(|r| r["realm_id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (realm2, realm3) = (realm(2), realm(3));
    let escaped = r"t\x1b[2J\x1b]0;owned\x07\rX\u{202e}evil";
    let missing = format!("gone{TENANT}");

    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    for daemon in [false, true] {
        let how = if daemon { "daemon" } else { "--embedded" };
        // A bulk operation in which the hostile-named connection errs: its error line.
        for args in [
            vec!["refresh", "--all"],
            vec!["verify", "bulk-0", realm2.as_str(), realm3.as_str()],
        ] {
            let out = run(&w, daemon, &args).await;
            let what = format!("{how} {args:?}");
            assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
            let err = stderr(&out);
            let line = err
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or_else(|| panic!("{what}: no error line in {err}"));
            assert!(
                line.contains(escaped) && line.contains("another row or column"),
                "{what}: {line}"
            );
            assert_terminal_clean(&what, &out);
        }
        // A selector matching two connections, and one matching none, quoted back.
        let out = run(&w, daemon, &["show", TENANT]).await;
        let line = one_line_error(&format!("{how} show (ambiguous)"), &out);
        assert!(line.contains(escaped), "{how}: {line}");
        assert_terminal_clean(&format!("{how} show (ambiguous)"), &out);
        let out = run(&w, daemon, &["show", missing.as_str()]).await;
        let line = one_line_error(&format!("{how} show (not found)"), &out);
        // Quoted as a Rust string literal, whose escapes are as visible.
        assert!(
            line.contains(r#"no connection matches "gonet\u{1b}[2J"#),
            "{how}: {line}"
        );
        assert_terminal_clean(&format!("{how} show (not found)"), &out);
    }
    assert!(d.stop(&w).await.success());
}
