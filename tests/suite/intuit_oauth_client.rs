//! Runs Intuit's official Python SDK (`intuit-oauth`, module `intuitlib`)
//! against the emulator: if Intuit's own client accepts the discovery
//! document, the redirects and the token answers, the emulator speaks the
//! protocol the way real clients expect.
//!
//! Needs `QBO_CONSOLE_TEST_PYTHON` pointing at a python with `intuit-oauth`
//! installed, e.g. `python3 -m venv /tmp/venv-intuit &&
//! /tmp/venv-intuit/bin/pip install intuit-oauth`. Without it the test is
//! skipped, unless `QBO_CONSOLE_REQUIRE_PYTHON=1`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qbo_sim::{self as sim, SimEnvironment, SimOptions};

const CLIENT_ID: &str = "sim-sandbox-client";
const CLIENT_SECRET: &str = "sim-sandbox-secret";
const REDIRECT_URI: &str = "http://localhost:8080/callback";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/intuit_oauth_flow.py")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intuit_python_sdk_completes_the_oauth_flow() {
    let python = match std::env::var("QBO_CONSOLE_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let why = "QBO_CONSOLE_TEST_PYTHON is not set (point it at a python with \
                       `pip install intuit-oauth` done)";
            if std::env::var("QBO_CONSOLE_REQUIRE_PYTHON").as_deref() == Ok("1") {
                panic!("QBO_CONSOLE_REQUIRE_PYTHON=1 but {why}");
            }
            println!("skipped intuit_python_sdk_completes_the_oauth_flow: {why}");
            return;
        }
    };
    let script = script_path();
    assert!(script.exists(), "missing {}", script.display());

    let handle = sim::start(SimOptions::default()).await.expect("sim starts");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(handle.discovery_url(SimEnvironment::Sandbox))
        .arg(CLIENT_ID)
        .arg(CLIENT_SECRET)
        .arg(REDIRECT_URI)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));

    // The emulator runs on this runtime, so wait without blocking it.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for python") {
            break status;
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            panic!("the python flow did not finish within {SCRIPT_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        status.success(),
        "python flow failed ({status}):\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");

    let stats = handle.stats();
    assert_eq!(stats.authorizations_approved, 1, "{stats:?}");
    assert_eq!(stats.code_exchanges, 1, "{stats:?}");
    assert_eq!(stats.refreshes, 1, "{stats:?}");
    assert_eq!(stats.revocations, 1, "{stats:?}");
    assert_eq!(stats.revoked_grants, 1, "{stats:?}");
    // The refresh attempted after the revoke.
    assert_eq!(stats.invalid_grants, 1, "{stats:?}");
    assert_eq!(stats.invalid_clients, 0, "{stats:?}");
    handle.shutdown().await;
}
