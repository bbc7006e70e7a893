//! The token API: service keys, scoped reads, refusals on the record, hand-outs recorded
//! once per value, sync reports, and many host clients sharing one refresh.

use crate::common;

use common::catalogue::assert_catalogued;
use common::World;
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use qbo_store::audit::Action;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// Creates a key through the CLI (embedded, as the admin); returns the key and its id.
pub async fn create_key(w: &World, name: &str, realms: &[&str]) -> (String, i64) {
    let mut args = vec!["apikey", "create", name, "--json"];
    for r in realms {
        args.extend(["--realm", r]);
    }
    let out: Value = serde_json::from_str(&w.ok(&args).await).unwrap();
    assert_eq!(out["name"], name);
    (
        out["key"].as_str().unwrap().to_string(),
        out["id"].as_i64().unwrap(),
    )
}

pub async fn get(url: &str, key: Option<&str>) -> (u16, Value) {
    let mut r = reqwest::Client::new().get(url);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    let resp = r.send().await.expect("token API answers");
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Whether the emulator's CompanyInfo accepts an access token for a realm.
async fn accepted_by_company_info(w: &World, realm: &str, token: &str) -> bool {
    let url = format!(
        "{}/v3/company/{realm}/companyinfo/{realm}",
        w.sim.base_url()
    );
    let r = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    r.status().as_u16() == 200
}

fn me() -> String {
    // SAFETY: getuid cannot fail.
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

fn events_of(events: &[Value], action: Action) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["action"] == action.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_only_its_realm_a_hidden_realm_looks_absent_and_a_revoked_key_is_refused_at_once(
) {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(2, "api").await;
    let (r1, r2) = (grants[0].realm_id.as_str(), grants[1].realm_id.as_str());
    let (key, id) = create_key(&w, "books", &[r1]).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let api = d.api_url();

    let (status, body) = get(
        &format!("{api}/v1/connections/{r1}/access-token"),
        Some(&key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "access_token",
            "environment",
            "expires_at",
            "expires_in",
            "realm_id"
        ],
        "never the refresh token"
    );
    assert_eq!(body["realm_id"], r1);
    assert_eq!(body["environment"], "sandbox");
    assert!(body["expires_in"].as_i64().unwrap() > 300);
    assert!(accepted_by_company_info(&w, r1, body["access_token"].as_str().unwrap()).await);

    // Another realm answers exactly like a realm with no connection at all.
    let (s_hidden, b_hidden) = get(
        &format!("{api}/v1/connections/{r2}/access-token"),
        Some(&key),
    )
    .await;
    let (s_absent, b_absent) = get(
        &format!("{api}/v1/connections/{r2}/access-token"),
        Some(&key),
    )
    .await;
    assert_eq!(s_hidden, 404);
    assert_eq!((s_hidden, &b_hidden), (s_absent, &b_absent));
    let (s_none, b_none) = get(
        &format!("{api}/v1/connections/999999/access-token"),
        Some(&key),
    )
    .await;
    assert_eq!(s_none, 404);
    assert_eq!(
        b_hidden.to_string().replace(r2, "R"),
        b_none.to_string().replace("999999", "R"),
        "the body for a hidden realm is the body for a missing one"
    );

    // The list shows what the key may see, without tokens.
    let (s, list) = get(&format!("{api}/v1/connections"), Some(&key)).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["realm_id"], r1);
    assert!(list[0].get("access_token").is_none() && list[0].get("refresh_token").is_none());

    // No key, an unknown key: 401.
    assert_eq!(
        get(&format!("{api}/v1/connections/{r1}/access-token"), None)
            .await
            .0,
        401
    );
    assert_eq!(
        get(
            &format!("{api}/v1/connections/{r1}/access-token"),
            Some("qbok_nope")
        )
        .await
        .0,
        401
    );

    // Revoked through the daemon: the very next request is refused.
    let out = w
        .via_daemon(&["apikey", "revoke", &id.to_string(), "--json"])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let (s, _) = get(
        &format!("{api}/v1/connections/{r1}/access-token"),
        Some(&key),
    )
    .await;
    assert_eq!(s, 401, "a revoked key is refused at once");
    let listed = w.ok(&["apikey", "list", "--json"]).await;
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert!(listed[0]["revoked_at"].is_string());
    assert!(!listed[0].to_string().contains(&key));

    d.stop(&w).await;
    let events = w.audit_events(200).await;
    let created = events_of(&events, Action::ApiKeyCreated);
    assert_catalogued(created[0], Action::ApiKeyCreated, &me());
    assert_catalogued(
        events_of(&events, Action::ApiKeyRevoked)[0],
        Action::ApiKeyRevoked,
        &me(),
    );
    assert_catalogued(
        events_of(&events, Action::ApiKeysListed)[0],
        Action::ApiKeysListed,
        &me(),
    );
    let handed = events_of(&events, Action::AccessTokenHandedOut);
    assert_eq!(handed.len(), 1);
    assert_catalogued(handed[0], Action::AccessTokenHandedOut, "service:books");
    let refused = events_of(&events, Action::AccessTokenRefused);
    // The hidden realm (named); the second ask and the missing realm within the same
    // minute, from the same address and key, counted into one summary at shutdown; no
    // key, unknown key, revoked key.
    assert_eq!(refused.len(), 5, "{refused:#?}");
    for r in &refused {
        assert_eq!(r["outcome"], "denied");
    }
    let scoped: Vec<&&Value> = refused.iter().filter(|e| e["realm_id"] == r2).collect();
    assert_eq!(scoped.len(), 1, "the scope refusal names the connection");
    assert!(
        refused.iter().any(|e| e["reason"]
            .as_str()
            .unwrap()
            .starts_with("2 further refusals")),
        "{refused:#?}"
    );
    assert_catalogued(scoped[0], Action::AccessTokenRefused, "service:books");
    let revoked = refused
        .iter()
        .find(|e| e["reason"].as_str().unwrap().contains("revoked"))
        .expect("the revoked key's refusal is recorded");
    assert_catalogued(revoked, Action::AccessTokenRefused, "service:books");
    w.assert_no_secrets().await;
    // The key itself appears nowhere but in the one answer that created it.
    let audit = w.ok(&["audit", "tail", "-n", "1000", "--json"]).await;
    assert!(!audit.contains(&key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_value_handed_out_many_times_is_recorded_once_and_summarised_when_the_daemon_stops() {
    let w = World::start(SimOptions::default()).await;
    let g = w.seed(1, "hand").await.remove(0);
    let (key, _) = create_key(&w, "ledger", &[]).await;
    let d = w.start_daemon(&[]).await;
    // The imported token is replaced by the scheduler's first pass; start after it.
    w.wait_for_first_pass().await;
    let url = format!("{}/v1/connections/{}/access-token", d.api_url(), g.realm_id);
    let mut tokens = HashSet::new();
    for _ in 0..5 {
        let (s, b) = get(&url, Some(&key)).await;
        assert_eq!(s, 200, "{b}");
        tokens.insert(b["access_token"].as_str().unwrap().to_string());
    }
    assert_eq!(tokens.len(), 1);
    let before_stop = w.audit_events(100).await;
    assert_eq!(
        events_of(&before_stop, Action::AccessTokenHandedOut).len(),
        1
    );
    assert!(events_of(&before_stop, Action::AccessTokenHandouts).is_empty());
    d.stop(&w).await;
    let events = w.audit_events(100).await;
    let summary = events_of(&events, Action::AccessTokenHandouts);
    assert_eq!(
        summary.len(),
        1,
        "one summary for the four further hand-outs"
    );
    assert_catalogued(summary[0], Action::AccessTokenHandouts, "service:ledger");
    assert!(
        summary[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("4 further hand-outs"),
        "{}",
        summary[0]
    );
    assert_eq!(
        summary[0]["fingerprints"],
        events_of(&events, Action::AccessTokenHandedOut)[0]["fingerprints"]
    );
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_apps_sync_report_is_the_last_sync_and_a_dead_connection_answers_409() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(2, "sync").await;
    let (key, _) = create_key(&w, "syncer", &[]).await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let api = d.api_url();
    let r1 = &grants[0].realm_id;
    let report = serde_json::json!({
        "status": "error", "detail": "Invoice 42 rejected", "records": 17,
        "started_at": "2026-01-01T10:00:00Z", "finished_at": "2026-01-01T10:01:00Z"
    });
    let resp = reqwest::Client::new()
        .post(format!("{api}/v1/connections/{r1}/sync"))
        .bearer_auth(&key)
        .json(&report)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let bad = reqwest::Client::new()
        .post(format!("{api}/v1/connections/{r1}/sync"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"status": "maybe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let list = w.connections_json().await;
    let c = list.iter().find(|c| c["realm_id"] == r1.as_str()).unwrap();
    assert_eq!(c["last_sync_status"], "failed");
    assert!(c["last_sync_detail"]
        .as_str()
        .unwrap()
        .contains("Invoice 42 rejected"));
    assert!(c["last_sync_detail"]
        .as_str()
        .unwrap()
        .contains("17 records"));

    // The customer disconnects; the next refresh learns it; the API says so.
    let r2 = &grants[1].realm_id;
    w.sim.disconnect(r2);
    let out = w.via_daemon(&["refresh", r2, "--json"]).await;
    assert!(
        common::stdout(&out).contains("needs_reconnect"),
        "{}",
        common::stderr(&out)
    );
    let (s, b) = get(
        &format!("{api}/v1/connections/{r2}/access-token"),
        Some(&key),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["status"], "needs_reconnect");
    assert!(b["reason"].as_str().unwrap().contains("reconnect"), "{b}");
    d.stop(&w).await;
    let events = w.audit_events(100).await;
    assert_catalogued(
        events_of(&events, Action::SyncReported)[0],
        Action::SyncReported,
        "service:syncer",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_token_api_without_tls_is_refused_at_start_and_with_tls_serves_https() {
    let w = World::start(SimOptions::default()).await;
    w.edit_config(
        "[api]\nlisten = \"127.0.0.1:0\"",
        "[api]\nlisten = \"0.0.0.0:0\"",
    );
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        w.daemon_command(&["serve"]).output(),
    )
    .await
    .expect("serve gives up at once")
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("[api] listen") && err.contains("tls_cert_file"),
        "{err}"
    );

    // With a certificate, the same address serves HTTPS.
    let (cert, key) = (w.path("api.crt"), w.path("api.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    w.edit_config(
        "[api]\nlisten = \"0.0.0.0:0\"",
        &format!(
            "[api]\nlisten = \"0.0.0.0:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        ),
    );
    let d = w.start_daemon(&[]).await;
    let url = d.api_url();
    assert!(url.starts_with("https://0.0.0.0:"), "{url}");
    let port = url.rsplit(':').next().unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/v1/connections"))
        .send()
        .await
        .expect("an HTTPS request succeeds");
    assert_eq!(r.status().as_u16(), 401, "the API answered over TLS");
    // Plain HTTP on the TLS port gets no answer from the API.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/v1/connections")).await;
    assert!(
        !matches!(plain.map(|r| r.status().as_u16()), Ok(401)),
        "plain HTTP was served on the TLS port"
    );
    d.stop(&w).await;
}

/// Eight host clients, 2,048 requests in all, beside the scheduler, with the emulator
/// rotating on every refresh, killing the previous refresh token at once and issuing
/// 60-second access tokens. Between rounds both clocks jump 45 s, so every round begins
/// with every token stale for the API and due for the scheduler at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_and_the_scheduler_share_one_refresh_per_stale_token_and_never_spend_one_twice(
) {
    let opts = SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        access_token_ttl_secs: 60,
        // Holds each refresh token in flight long enough for an overlapping use to show.
        token_latency: Duration::from_millis(5),
        ..SimOptions::default()
    };
    let t = common::Tuning {
        extra: "refresh_before_expiry = \"30s\"\n".into(),
        ..Default::default()
    };
    let w = World::start_tuned(opts, t).await;
    w.edit_config(
        "[api]\nlisten = \"127.0.0.1:0\"",
        "[api]\nlisten = \"127.0.0.1:0\"\nmin_validity = \"20s\"",
    );
    let grants = w.seed(2, "busy").await;
    let realms: Vec<String> = grants.iter().map(|g| g.realm_id.clone()).collect();
    let (key, _) = create_key(&w, "host", &[]).await;
    let config = w.load_config();
    let d = w.in_process().await;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let scheduler = d.service.scheduler(
        config.scheduler.clone(),
        qbo_core::identity::Actor::daemon(qbo_core::identity::DaemonTask::Scheduler),
    );
    let sched = tokio::spawn(scheduler.run(stop.clone()));
    let server = qbo_daemon::api::ApiServer::start(
        d.service.clone(),
        &config,
        axum::Router::new(),
        stop.clone(),
    )
    .await
    .unwrap();
    let base = server.url();
    // Let the scheduler's first pass (imports are due at once) finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !d
        .connections()
        .await
        .iter()
        .all(|c| c.last_refresh_outcome == Some(qbo_service::LastRefresh::Ok))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first pass did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.sim.reset_stats();
    let http = reqwest::Client::new();
    let mut requests = 0;
    for round in 0..8 {
        w.advance(&d, chrono::Duration::seconds(45));
        let before = w.sim.stats().refreshes_by_realm;
        let clients = (0..8).map(|c| {
            let (http, base, key, realms) =
                (http.clone(), base.clone(), key.clone(), realms.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..32 {
                    let realm = &realms[(c + i) % realms.len()];
                    let r = http
                        .get(format!("{base}/v1/connections/{realm}/access-token"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    let b: Value = r.json().await.unwrap();
                    assert!(b["expires_in"].as_i64().unwrap() >= 20, "{b}");
                    seen.push((
                        realm.clone(),
                        b["access_token"].as_str().unwrap().to_string(),
                    ));
                }
                seen
            })
        });
        let mut distinct = HashSet::new();
        for c in futures_util::future::join_all(clients).await {
            for s in c.unwrap() {
                requests += 1;
                distinct.insert(s);
            }
        }
        for (realm, token) in &distinct {
            assert!(
                accepted_by_company_info(&w, realm, token).await,
                "round {round}: a token handed out for {realm} is refused by CompanyInfo"
            );
        }
        let after = w.sim.stats().refreshes_by_realm;
        for realm in &realms {
            let n =
                after.get(realm).copied().unwrap_or(0) - before.get(realm).copied().unwrap_or(0);
            assert_eq!(
                n, 1,
                "round {round}: realm {realm} was refreshed {n} times, not once"
            );
        }
        // One value per realm per round: everyone got the one refresh's token.
        assert_eq!(distinct.len(), realms.len(), "round {round}");
    }
    assert!(requests >= 2000);
    let stats = w.sim.stats();
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert_eq!(stats.concurrent_uses, 0, "{stats:?}");
    assert_eq!(stats.superseded_uses, 0, "{stats:?}");
    assert_eq!(stats.refreshes, 16, "{stats:?}");
    let _ = stop_tx.send(true);
    for t in server.tasks {
        t.await.unwrap();
    }
    sched.await.unwrap();
    // The last value of each realm is summarised at the stop; the earlier ones were
    // summarised as they were superseded.
    assert_eq!(server.api.flush().await.unwrap(), 2);
    let events = w.audit_events(10_000).await;
    assert_eq!(
        events_of(&events, Action::AccessTokenHandedOut).len(),
        16,
        "one first hand-out per value"
    );
    let summaries = events_of(&events, Action::AccessTokenHandouts);
    assert_eq!(summaries.len(), 16, "one summary per value");
    let counted: u64 = summaries
        .iter()
        .map(|e| {
            e["reason"]
                .as_str()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        counted + 16,
        requests as u64,
        "every hand-out is accounted for"
    );
    w.assert_no_secrets().await;
}

/// `assets/openapi.json` describes exactly the routes served, with their methods and status
/// codes, and every route it names answers on a real listener (no fallback, no 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_description_names_exactly_the_routes_the_listener_serves() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/openapi.json"),
        )
        .unwrap(),
    )
    .expect("assets/openapi.json is JSON");
    let mut described = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut codes: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|c| c.parse().unwrap())
                .collect();
            codes.sort_unstable();
            described.push((method.clone(), path.clone(), codes));
        }
    }
    let mut served: Vec<(String, String, Vec<u16>)> = qbo_daemon::api::ROUTES
        .iter()
        .chain(qbo_daemon::webhooks::ROUTES)
        .map(|(m, p, c)| (m.to_string(), p.to_string(), c.to_vec()))
        .collect();
    described.sort();
    served.sort();
    assert_eq!(
        described, served,
        "assets/openapi.json and the served routes differ"
    );

    let w = World::start(SimOptions::default()).await;
    let d = w.in_process().await;
    let config = w.load_config();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let hooks =
        qbo_daemon::webhooks::WebhookState::from_config(d.service.clone(), &config.webhooks)
            .unwrap();
    let server = qbo_daemon::api::ApiServer::start(
        d.service.clone(),
        &config,
        qbo_daemon::webhooks::router(hooks),
        stop,
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    for (method, path, codes) in &served {
        let url = format!("{}{}", server.url(), path.replace("{realm}", "123"));
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = http.request(m, &url).send().await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.expect("every answer of a route is JSON");
        assert!(
            codes.contains(&status),
            "{method} {path} answered {status}, not documented"
        );
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        // Only the documented method is routed.
        let r = http.delete(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405, "DELETE {path}");
    }
    // A path nobody documented is not served: the router's bare fallback.
    let r = http
        .get(format!("{}/v1/undocumented", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_name_realm_or_environment_is_refused_with_exit_2_and_nothing_written() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "bad").await;
    let before = w.snapshot().await;
    for args in [
        &["apikey", "create", "two words"][..],
        &["apikey", "create", "books", "--realm", "12ab"],
        &["apikey", "create", "books", "--env", "staging"],
    ] {
        let out = w.cli(args).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::stderr(&out)
        );
        let err = common::stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert!(
        common::stderr(&w.cli(&["apikey", "create", "two words"]).await)
            .contains("naming the service")
    );
    assert_eq!(before, w.snapshot().await, "nothing was written");
    let out = w.cli(&["apikey", "revoke", "999"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("apikey list"));
}

/// The example client (`examples/token_client.rs`, built by `cargo test`) fetches a token
/// and reports its sync against a real daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_client_gets_a_token_and_reports_its_sync() {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/token_client");
    if !example.exists() {
        // Only `cargo test --test suite` alone skips building examples; say so, and fail
        // where the examples must have been built (`.ci/run` sets the variable).
        let why = format!("{} is not built (run `cargo test`)", example.display());
        assert!(
            std::env::var_os("QBO_CONSOLE_REQUIRE_EXAMPLES").is_none(),
            "{why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let w = World::start(SimOptions::default()).await;
    let g = w.seed(1, "example").await.remove(0);
    let (key, _) = create_key(&w, "example-app", &[]).await;
    let d = w.start_daemon(&[]).await;
    let out = tokio::process::Command::new(&example)
        .arg(&g.realm_id)
        .env("QBO_TOKEN_API", d.api_url())
        .env("QBO_API_KEY", &key)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("sync reported"));
    let list = w.connections_json().await;
    assert_eq!(list[0]["last_sync_status"], "ok");
    d.stop(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_keys_is_recorded_once_per_caller_and_counted_exactly_even_at_shutdown() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(1, "burst").await;
    let realm = grants[0].realm_id.clone();
    let d = w.start_daemon(&[]).await;
    let url = format!("{}/v1/connections/{realm}/access-token", d.api_url());
    // 200 refusals within the minute: 100 without a key, 100 made-up keys (each another).
    for i in 0..100 {
        assert_eq!(get(&url, None).await.0, 401);
        assert_eq!(get(&url, Some(&format!("qbok_madeup{i}"))).await.0, 401);
    }
    let before = w.audit_events(1000).await;
    let first = events_of(&before, Action::AccessTokenRefused);
    assert_eq!(
        first.len(),
        2,
        "one event each, the rest counted: {first:#?}"
    );
    for e in &first {
        assert!(
            e["reason"].as_str().unwrap().contains("from 127.0.0.1"),
            "{e}"
        );
    }
    assert_catalogued(first[0], Action::AccessTokenRefused, "service:unknown");
    // Stopping the daemon inside the minute loses nothing: the summaries are written.
    d.stop(&w).await;
    let after = w.audit_events(1000).await;
    let refused = events_of(&after, Action::AccessTokenRefused);
    assert_eq!(refused.len(), 4, "{refused:#?}");
    let summaries: Vec<&str> = refused
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .filter(|r| r.starts_with("99 further refusals of access token refused between "))
        .collect();
    assert_eq!(summaries.len(), 2, "{refused:#?}");
    assert!(
        summaries.iter().any(|r| r.contains("no bearer key")),
        "{summaries:?}"
    );
    assert!(
        summaries.iter().any(|r| r.contains("an unknown key")),
        "{summaries:?}"
    );
    w.assert_no_secrets().await;
    let audit = w.ok(&["audit", "tail", "-n", "1000", "--json"]).await;
    assert!(
        !audit.contains("qbok_madeup"),
        "made-up keys are fingerprinted only"
    );
}
