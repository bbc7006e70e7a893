//! The `qbo-sim` binary as a process: it says where it listens, serves discovery and the
//! token endpoint there, is driven through `/_sim/`, stops cleanly on SIGTERM, and
//! rejects a bad flag with one line naming it.

use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

const CLIENT: &str = "sim-sandbox-client";
const SECRET: &str = "sim-sandbox-secret";
const TOKEN_PATH: &str = "/oauth2/v1/tokens/bearer";

fn sim_command(args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-sim"));
    c.args(args).env_remove("RUST_LOG").kill_on_drop(true);
    c
}

/// Starts `qbo-sim --port 0` and returns it with the base URL from its banner line.
async fn start_sim() -> (tokio::process::Child, String) {
    let mut child = sim_command(&["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn qbo-sim");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("qbo-sim printed nothing within 20 s")
        .unwrap()
        .expect("qbo-sim exited before saying where it listens");
    let base = banner
        .strip_prefix("qbo-sim listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{banner}");
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(
        port, 0,
        "the banner names the port actually bound: {banner}"
    );
    assert!(
        banner.contains(&format!(
            "sandbox={base}/.well-known/openid_sandbox_configuration"
        )),
        "{banner}"
    );
    (child, base)
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn token_request(
    http: &reqwest::Client,
    base: &str,
    auth: Option<&str>,
    refresh_token: &str,
) -> reqwest::Response {
    let mut req = http
        .post(format!("{base}{TOKEN_PATH}"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=refresh_token&refresh_token={}",
            urlencoding::encode(refresh_token)
        ));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    req.send().await.expect("token endpoint answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_serves_discovery_and_tokens_and_stops_on_sigterm() {
    let (mut child, base) = start_sim().await;
    let http = reqwest::Client::new();

    // It answers: the sandbox discovery document points at this very process.
    let discovery = format!("{base}/.well-known/openid_sandbox_configuration");
    let deadline = Instant::now() + Duration::from_secs(10);
    let doc: serde_json::Value = loop {
        match http.get(&discovery).send().await {
            Ok(r) if r.status() == 200 => break r.json().await.unwrap(),
            other => {
                assert!(
                    Instant::now() < deadline,
                    "discovery never answered: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}{TOKEN_PATH}"),
        "{doc}"
    );
    assert_eq!(
        doc["revocation_endpoint"],
        format!("{base}/v2/oauth2/tokens/revoke"),
        "{doc}"
    );
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/connect/oauth2"),
        "{doc}"
    );

    // A grant seeded through the control API.
    let seeded: Vec<serde_json::Value> = http
        .post(format!("{base}/_sim/grants"))
        .json(&serde_json::json!({ "client_id": CLIENT, "company_name": "Binary Co" }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .expect("/_sim/grants seeds a grant")
        .json()
        .await
        .unwrap();
    assert_eq!(seeded.len(), 1, "{seeded:?}");
    let refresh_token = seeded[0]["refresh_token"].as_str().unwrap().to_string();
    assert!(!refresh_token.is_empty());
    assert_eq!(seeded[0]["client_id"], CLIENT);

    // The refresh_token grant with the client's Basic credentials.
    let r = token_request(&http, &base, Some(&basic(CLIENT, SECRET)), &refresh_token).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("intuit_tid"), "{:?}", r.headers());
    assert_eq!(
        r.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer", "{body}");
    assert_eq!(
        body["expires_in"].as_i64(),
        Some(qbo_sim::DEFAULT_ACCESS_TOKEN_TTL_SECS),
        "{body}"
    );
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["x_refresh_token_expires_in"].as_i64().unwrap() > 0,
        "{body}"
    );

    // Bad client authentication: wrong secret, unknown client, no header at all.
    for auth in [
        Some(basic(CLIENT, "not-the-secret")),
        Some(basic("nobody", SECRET)),
        Some("Basic !!!not-base64".to_string()),
        None,
    ] {
        let r = token_request(&http, &base, auth.as_deref(), &refresh_token).await;
        assert_eq!(r.status(), 401, "{auth:?}");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client", "{auth:?}: {e}");
    }

    // The control API counted exactly that.
    let stats: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["refreshes"], 1, "{stats}");
    assert_eq!(stats["invalid_clients"], 4, "{stats}");
    assert_eq!(stats["token_requests"], 5, "{stats}");

    // SIGTERM: a clean exit.
    let pid = child.id().expect("qbo-sim running") as i32;
    // SAFETY: sending a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("qbo-sim did not exit within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "SIGTERM ends qbo-sim cleanly: {status:?}");
    assert!(
        http.get(&discovery).send().await.is_err(),
        "nothing listens after the exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_flag_exits_non_zero_with_one_line_naming_it() {
    for (args, flag) in [
        (&["--port", "notanumber"][..], "--port"),
        (&["--port", "70000"][..], "--port"),
        (&["--port", "0", "--fault-rate", "2"][..], "--fault-rate"),
        (&["--port", "0", "--rotation", "hourly"][..], "--rotation"),
        (&[][..], "--port"),
    ] {
        let out = tokio::time::timeout(
            Duration::from_secs(20),
            sim_command(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("qbo-sim {args:?} should exit at once, not serve"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.status.code().is_some(),
            "qbo-sim {args:?}: {:?}",
            out.status
        );
        assert_eq!(out.status.code(), Some(2), "qbo-sim {args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "qbo-sim {args:?} printed to stdout");
        let text = stderr.trim_end();
        assert_eq!(
            text.lines().count(),
            1,
            "qbo-sim {args:?}: one line, not {stderr:?}"
        );
        assert!(
            text.contains(flag),
            "qbo-sim {args:?}: {text:?} names {flag}"
        );
        if let Some(value) = args.get(1).filter(|_| args.len() == 2) {
            assert!(text.contains(value), "{text:?} names the bad value");
        }
    }
}
