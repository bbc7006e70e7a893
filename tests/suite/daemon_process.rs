//! `qbo-console serve` as an operator meets it: the socket and its roles, the CLI as a
//! client, live changes, health and metrics, one daemon per SQLite file, graceful stop.

use crate::common;

use common::World;
use qbo_sim::SimOptions;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_is_a_client_of_the_daemon() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "client").await;
    // Without a daemon the CLI says so and how to start one.
    let out = w.via_daemon(&["list"]).await;
    assert_eq!(out.status.code(), Some(5));
    let err = common::stderr(&out);
    assert!(
        err.contains("no qbo-console daemon answers at")
            && err.contains("qbo-console serve")
            && err.contains("--embedded"),
        "{err}"
    );

    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w
        .start_daemon(&[("QBO_CONSOLE__DAEMON__SOCKET_GROUP", "daemon")])
        .await;
    let meta = std::fs::metadata(w.socket()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(
        Some(std::os::unix::fs::MetadataExt::gid(&meta)),
        qbo_core::identity::group_id("daemon")
    );

    // A second daemon on the same SQLite database is refused, clearly (on PostgreSQL
    // several share the work: see scale_out.rs).
    if common::postgres_base_url().is_none() {
        let mut second = w.daemon_command(&["serve"]);
        second.env("QBO_CONSOLE__DAEMON__SOCKET", w.path("other.sock"));
        let out = tokio::time::timeout(std::time::Duration::from_secs(20), second.output())
            .await
            .expect("the second daemon must be refused, not start")
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = common::stderr(&out);
        assert!(
            err.contains("another qbo-console daemon already serves the SQLite database"),
            "{err}"
        );
    }

    // Once the scheduler has refreshed the imported connections, nothing else moves.
    w.wait_for_first_pass().await;
    // The same operations, the same output, whichever path they take.
    let via = w.via_daemon(&["refresh", "client-1", "--json"]).await;
    assert!(via.status.success(), "{}", common::stderr(&via));
    let r: Vec<serde_json::Value> = serde_json::from_slice(&via.stdout).unwrap();
    assert_eq!(r[0]["outcome"], "refreshed");
    // Each read is itself on the audit record, so the second path sees one more event
    // than the first: the record of the first read.
    let tail = ["audit", "tail", "-n", "4", "--json"];
    let (a, b) = (w.via_daemon(&tail).await, w.cli(&tail).await);
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    let (a, b) = (common::stdout(&a), common::stdout(&b));
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a[1..], b[..3], "the same events, in the same form");
    let read: serde_json::Value = serde_json::from_str(b[3]).unwrap();
    assert_eq!(read["action"], "audit tail");
    assert_eq!(read["actor_account"], me().as_str());
    let (a, b) = (
        w.via_daemon(&["audit", "verify"]).await,
        w.cli(&["audit", "verify"]).await,
    );
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    let count = |o: &std::process::Output| -> String {
        common::stdout(o)
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect()
    };
    assert_eq!(count(&a), count(&b), "the same report, but for the counts");
    for args in [
        vec!["show", "client-0", "--json"],
        vec!["list", "--json"],
        vec!["refresh", "client-2", "--json"],
    ] {
        let a = w.via_daemon(&args).await;
        let b = w.cli(&args).await;
        assert_eq!(a.status.code(), b.status.code(), "{args:?}");
        let (x, y): (serde_json::Value, serde_json::Value) = (
            serde_json::from_slice(&a.stdout).unwrap(),
            serde_json::from_slice(&b.stdout).unwrap(),
        );
        // A `show` lists the tenant's recent events, the first `show` among them.
        let (x, y) = match args[0] {
            "show" => (&x["connection"], &y["connection"]),
            _ => (&x, &y),
        };
        assert_eq!(shape(x), shape(y), "{args:?}: the same fields either way");
    }
    let bad = w.via_daemon(&["show", "nobody"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(common::stderr(&bad).contains("no connection matches"));
    // The refresh through the socket is audited as this account, through the CLI; the
    // scheduler's own pass over the same connection as the scheduler, with no role.
    let ev = w.audit_events(50).await;
    let refreshes = |kind: &str| -> Vec<&serde_json::Value> {
        ev.iter()
            .filter(|e| {
                e["action"] == "refresh" && e["tenant"] == "client-1" && e["actor_kind"] == kind
            })
            .collect()
    };
    let by_operator = refreshes("operator");
    assert_eq!(by_operator.len(), 1, "{ev:?}");
    assert_eq!(by_operator[0]["actor_account"], me());
    assert_eq!(by_operator[0]["role"], "admin");
    let by_scheduler = refreshes("scheduler");
    assert!(
        !by_scheduler.is_empty(),
        "the first pass refreshed client-1"
    );
    for e in by_scheduler {
        assert_eq!(e["actor_account"], "scheduler", "{e}");
        assert_eq!(e["role"], "", "{e}");
    }

    let status = d.stop(&w).await;
    assert!(
        status.success(),
        "SIGTERM should end the daemon cleanly: {status:?}"
    );
    assert!(!w.socket().exists(), "the socket is removed on shutdown");
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn roles_allow_and_refuse_by_the_callers_real_account() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "roles").await;
    let import = w.path("one.csv");
    // role -> operations -> allowed
    let table: &[(&str, &[(&str, bool)])] = &[
        (
            "viewer",
            &[
                ("refresh --all", false),
                ("list", true),
                ("show", true),
                ("refresh", false),
                ("verify", false),
                ("import", false),
                ("audit tail", false),
                ("audit verify", false),
            ],
        ),
        (
            "auditor",
            &[
                ("refresh --all", false),
                ("list", true),
                ("show", true),
                ("refresh", false),
                ("verify", false),
                ("import", false),
                ("audit tail", true),
                ("audit verify", true),
            ],
        ),
        (
            "support",
            &[
                ("refresh --all", false),
                ("list", true),
                ("show", true),
                ("refresh", true),
                ("verify", true),
                ("import", false),
                ("audit tail", false),
                ("audit verify", false),
            ],
        ),
        (
            "admin",
            &[
                ("refresh --all", true),
                ("list", true),
                ("show", true),
                ("refresh", true),
                ("verify", true),
                ("import", true),
                ("audit tail", true),
                ("audit verify", true),
            ],
        ),
        (
            "unmapped",
            &[
                ("refresh --all", false),
                ("list", false),
                ("show", false),
                ("refresh", false),
                ("verify", false),
                ("import", false),
                ("audit tail", false),
                ("audit verify", false),
            ],
        ),
    ];
    let mut expected_denials = 0;
    let mut seq = 0;
    for (role, ops) in table {
        if *role == "unmapped" {
            w.append_config("[roles]\nadmin = [\"somebody-else\"]\n");
        } else {
            w.append_config(&format!("[roles]\n{role} = [\"{}\"]\n", me()));
        }
        let d = w.start_daemon(&[]).await;
        for (op, allowed) in ops.iter() {
            seq += 1;
            std::fs::write(&import, format!("tenant,realm_id,environment,refresh_token\nnew-{seq},{},sandbox,RT1-import-{seq}\n", 7_000_000 + seq)).unwrap();
            let args: Vec<&str> = match *op {
                "list" => vec!["list"],
                "show" => vec!["show", "roles-0"],
                "refresh" => vec!["refresh", "roles-0"],
                "refresh --all" => vec!["refresh", "--all"],
                "verify" => vec!["verify", "roles-1"],
                "import" => vec!["import", import.to_str().unwrap()],
                "audit tail" => vec!["audit", "tail"],
                _ => vec!["audit", "verify"],
            };
            let out = w.via_daemon(&args).await;
            if *allowed {
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{role} {op}: {}",
                    common::stderr(&out)
                );
            } else {
                expected_denials += 1;
                assert_eq!(
                    out.status.code(),
                    Some(3),
                    "{role} {op} must be refused: {}",
                    common::stderr(&out)
                );
                let err = common::stderr(&out);
                assert!(err.contains("permission denied"), "{err}");
                if *role == "unmapped" {
                    assert!(err.contains("not mapped to any role"), "{err}");
                }
            }
        }
        assert!(d.stop(&w).await.success());
    }
    let events = w.audit_events(1000).await;
    let denied: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["outcome"] == "denied").collect();
    assert_eq!(
        denied.len(),
        expected_denials,
        "every refusal is audited as denied"
    );
    assert!(denied.iter().all(|e| e["actor_account"] == me().as_str()));
    assert!(denied.iter().any(|e| e["role"] == "unmapped"));
    assert!(denied
        .iter()
        .any(|e| e["role"] == "viewer" && e["action"] == "refresh"));
    // Every allowed request is on record too, with the caller's real identity: reads as
    // what was shown, changes as their own events.
    let ok_by_action = |action: &str| {
        events
            .iter()
            .filter(|e| {
                e["outcome"] == "ok"
                    && e["action"] == action
                    && e["actor_account"] == me().as_str()
                    && e["actor_uid"].as_u64() == Some(u64::from(unsafe { libc::getuid() }))
            })
            .count()
    };
    for (action, allowed_roles) in [
        ("list", 4),
        ("show", 4),
        ("audit tail", 2),
        ("audit verify", 2),
    ] {
        assert_eq!(
            ok_by_action(action),
            allowed_roles,
            "one {action:?} record per role allowed it"
        );
    }
    assert!(
        ok_by_action("import") >= 1,
        "the admin's import is on record"
    );
    assert!(
        denied
            .iter()
            .any(|e| e["action"] == "refresh in bulk" && e["role"] == "support"),
        "support's bulk refresh is refused as a bulk action"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"));
}

/// The keys of a JSON value, recursively, with every leaf replaced by its type: what stays
/// the same when the same request is answered twice a moment apart.
fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
    }
}

/// Parses the OpenMetrics text exposition: every line is a comment (`# HELP`, `# TYPE`,
/// `# UNIT`, `# EOF` last) or `name{label="value",…} number`. Returns samples by series.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    for line in &lines[..lines.len() - 1] {
        if let Some(c) = line.strip_prefix("# ") {
            let kind = c.split_whitespace().next().unwrap();
            assert!(
                ["HELP", "TYPE", "UNIT"].contains(&kind),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(
                labels.starts_with('{') && labels.ends_with('}'),
                "bad labels in {line:?}"
            );
            for pair in labels[1..labels.len() - 1]
                .split(',')
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("bad label {pair:?}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name {k:?}"
                );
                assert!(
                    v.starts_with('"') && v.ends_with('"'),
                    "label values are quoted: {pair:?}"
                );
            }
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.insert(series.to_string(), v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_metrics_and_live_changes_match_the_database() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(20, "metrics").await;
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("{}/healthz", d.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");

    // The scheduler refreshes the imported connections (their schedule is unknown: due now).
    w.wait_for_first_pass().await;

    // A watcher sees the next change the moment it commits.
    let mut watch = w
        .daemon_command(&["watch", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut human = w
        .daemon_command(&["watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    w.sim.disconnect(&grants[7].realm_id);
    // On PostgreSQL the change is made by another process (an embedded CLI) and reaches the
    // daemon's watchers through LISTEN/NOTIFY; on SQLite it goes through the daemon.
    let out = if common::postgres_base_url().is_some() {
        w.cli(&["refresh", &grants[7].realm_id]).await
    } else {
        w.via_daemon(&["refresh", &grants[7].realm_id]).await
    };
    assert_eq!(out.status.code(), Some(1));
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watch.stdout.take().unwrap()));
    let mut next = async || {
        let line = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next_line())
            .await
            .expect("watch reported the change")
            .unwrap()
            .expect("watch is still running");
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    // First the hello: the protocol version and who the daemon takes the watcher for.
    let hello = next().await;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["protocol"], 1);
    assert_eq!(hello["account"], me().as_str());
    assert_eq!(hello["role"], "support");
    // Then the change, with the changed connection's view: no need to re-list. (On
    // PostgreSQL every audit event is relayed, the other watcher's subscription among them:
    // a change about no connection.)
    let mut change = next().await;
    while change["type"] == "change" && change["connection_id"].is_null() {
        change = next().await;
    }
    assert_eq!(change["type"], "change", "{change}");
    assert!(change["audit_seq"].as_i64().unwrap() > 20);
    assert_eq!(
        change["connection"]["realm_id"],
        grants[7].realm_id.as_str()
    );
    assert_eq!(change["connection"]["status"], "needs_reconnect");
    assert_eq!(change["connection_id"], change["connection"]["id"]);
    watch.start_kill().unwrap();
    // Without --json: one line per change, naming the tenant and its status.
    let mut printed =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(human.stdout.take().unwrap()));
    let mut line = String::new();
    while !line.contains(" (") {
        line = tokio::time::timeout(std::time::Duration::from_secs(5), printed.next_line())
            .await
            .expect("watch printed the change")
            .unwrap()
            .unwrap();
    }
    let tenant = change["connection"]["tenant"].as_str().unwrap();
    assert!(
        line.starts_with("audit #") && line.contains(tenant) && line.contains("needs reconnect"),
        "{line}"
    );
    human.start_kill().unwrap();
    // Reading the changed row for the feed is not a `show`; each subscription is on the
    // record once.
    let events = w.audit_events(1000).await;
    assert_eq!(events.iter().filter(|e| e["action"] == "show").count(), 0);
    assert_eq!(events.iter().filter(|e| e["action"] == "watch").count(), 2);

    let text = http
        .get(format!("{}/metrics", d.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m = parse_metrics(&text);
    let list = w.connections_json().await;
    // The `status` label is the condition, as the console counts: `failing` apart.
    for status in [
        "active",
        "failing",
        "expiring",
        "needs_reconnect",
        "pending",
        "revoking",
        "revoked",
    ] {
        for env in ["sandbox", "production"] {
            let db = list
                .iter()
                .filter(|c| c["condition"] == status && c["environment"] == env)
                .count() as f64;
            let key = format!("qbo_connections{{environment=\"{env}\",status=\"{status}\"}}");
            assert_eq!(m.get(&key).copied(), Some(db), "{key} in:\n{text}");
        }
    }
    let events = w.audit_events(1000).await;
    let refreshed = events
        .iter()
        .filter(|e| e["action"] == "refresh" && e["outcome"] == "ok")
        .count() as f64;
    let dead = events
        .iter()
        .filter(|e| e["action"] == "refresh" && e["error_class"] == "invalid_grant")
        .count() as f64;
    assert_eq!(
        m.get("qbo_refreshes_total{outcome=\"refreshed\"}").copied(),
        Some(refreshed),
        "{text}"
    );
    // The counters are this daemon's own; on PostgreSQL the dead tenant was found by the
    // embedded CLI process instead.
    let dead_here = if common::postgres_base_url().is_some() {
        dead - 1.0
    } else {
        dead
    };
    let counted = m
        .get("qbo_refreshes_total{outcome=\"needs_reconnect\"}")
        .copied()
        .unwrap_or(0.0);
    assert_eq!(counted, dead_here);
    assert_eq!(
        m.get("qbo_refresh_duration_seconds_count").copied(),
        Some(refreshed + dead_here)
    );
    assert_eq!(m.get("qbo_audit_write_failures_total").copied(), Some(0.0));
    let lapse = m["qbo_refresh_token_nearest_lapse_seconds"];
    assert!(
        lapse > 98.0 * 86_400.0 && lapse <= 100.0 * 86_400.0,
        "{lapse}"
    );
    assert!(m["qbo_scheduler_lag_seconds"] >= 0.0);
    assert!(d.stop(&w).await.success());
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_a_clear_answer_and_requests_are_traceable() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "trace").await;
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let stream = tokio::net::UnixStream::connect(w.socket()).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(read).lines();
    for garbage in [
        "not json\n",
        "{\"op\":\"format_disk\"}\n",
        "{\"op\":\"show\"}\n",
    ] {
        write.write_all(garbage.as_bytes()).await.unwrap();
        let reply: serde_json::Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(reply["status"], "error", "{garbage}");
        assert_eq!(reply["kind"], "input");
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .starts_with("malformed request"),
            "{reply}"
        );
    }
    // The connection survives bad input and still answers.
    write.write_all(b"{\"op\":\"who_am_i\"}\n").await.unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["status"], "ok");
    assert_eq!(reply["result"]["account"], me().as_str());
    assert_eq!(reply["result"]["role"], "support");
    // A client may say which front end it is: on the record, never a role.
    write
        .write_all(b"{\"op\":\"who_am_i\",\"interface\":\"tui\"}\n")
        .await
        .unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["result"]["interface"], "tui", "{reply}");
    assert_eq!(reply["result"]["role"], "support");
    let asked: Vec<(serde_json::Value, serde_json::Value)> = w
        .audit_events(100)
        .await
        .into_iter()
        .filter(|e| e["action"] == "whoami")
        .map(|e| (e["interface"].clone(), e["role"].clone()))
        .collect();
    assert_eq!(
        asked,
        [("cli", "support"), ("tui", "support")].map(|(i, r)| (i.into(), r.into()))
    );
    // Only the operators' front ends: not the scheduler, say.
    write
        .write_all(b"{\"op\":\"who_am_i\",\"interface\":\"scheduler\"}\n")
        .await
        .unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["kind"], "input", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("\"scheduler\""),
        "{reply}"
    );
    // A refusal says, besides its message, whom it refused what, with which role.
    write
        .write_all(b"{\"op\":\"refresh\",\"all\":true}\n")
        .await
        .unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(reply["kind"], "denied", "{reply}");
    assert_eq!(
        reply["denial"],
        serde_json::json!({"account": me(), "role": "support", "what": "refresh in bulk"})
    );

    // One request, one request id on all the events it caused (once the scheduler has
    // done its own first pass over the imported connections).
    w.wait_for_first_pass().await;
    // Support may refresh tenants in bulk only by naming them: `--all` is refused, and on
    // record as denied.
    let bulk = w.via_daemon(&["refresh", "--all"]).await;
    assert_eq!(bulk.status.code(), Some(3), "{}", common::stderr(&bulk));
    assert!(common::stderr(&bulk).contains("refresh in bulk"));
    // On record as denied: the first refusal of `refresh in bulk` in this minute (the raw
    // request above) is its own event; this second one is counted into the summary the
    // daemon writes when the minute closes (see `service::refusals`).
    let recent = w.audit_events(10).await;
    assert!(
        recent
            .iter()
            .any(|e| e["outcome"] == "denied" && e["action"] == "refresh in bulk"),
        "{recent:?}"
    );
    let out = w
        .via_daemon(&["refresh", "trace-0", "trace-1", "trace-2", "--json"])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let ids: Vec<String> = w
        .audit_events(3)
        .await
        .iter()
        .map(|e| e["request_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|i| i == &ids[0] && i.len() == 16), "{ids:?}");
    assert!(d.stop(&w).await.success());
}

/// `[roles]` entries starting with `@` name a group: the caller's groups come from the
/// system's group database for the account the kernel reported, never from the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_maps_the_caller_to_its_role() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "grp").await;
    let groups = qbo_core::identity::groups_of(&me(), unsafe { libc::getgid() });
    let group = groups
        .first()
        .expect("the test account belongs to a group")
        .clone();
    w.append_config(&format!(
        "[roles]\nadmin = [\"somebody-else\"]\nauditor = [\"@{group}\"]\n"
    ));
    let d = w.start_daemon(&[]).await;
    // The scheduler's own first pass is on the record too; let it finish first.
    w.wait_for_first_pass().await;
    let read = w.via_daemon(&["audit", "tail", "-n", "1", "--json"]).await;
    assert!(read.status.success(), "{}", common::stderr(&read));
    let refused = w.via_daemon(&["refresh", "grp-0"]).await;
    assert_eq!(
        refused.status.code(),
        Some(3),
        "{}",
        common::stderr(&refused)
    );
    assert!(d.stop(&w).await.success());
    let events: Vec<serde_json::Value> = w
        .audit_events(100)
        .await
        .into_iter()
        .filter(|e| e["interface"] == "cli" && e["role"] != "admin")
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["action"], "audit tail");
    assert_eq!(events[0]["role"], "auditor");
    assert_eq!(events[1]["action"], "refresh");
    assert_eq!(events[1]["outcome"], "denied");
    assert_eq!(events[1]["role"], "auditor");
    assert_eq!(events[1]["actor_account"], me().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_tail_narrows_by_tenant_action_and_outcome_through_the_daemon() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "narrow").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    for _ in 0..3 {
        let out = w.via_daemon(&["refresh", "narrow-1"]).await;
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let out = w
        .via_daemon(&[
            "audit",
            "tail",
            "-n",
            "2",
            "--tenant",
            "NARROW-1",
            "--action",
            "refresh",
            "--outcome",
            "ok",
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rows: Vec<serde_json::Value> = common::stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows
        .iter()
        .all(|r| r["tenant"] == "narrow-1" && r["action"] == "refresh" && r["outcome"] == "ok"));
    // Oldest first, like the tail; the newest is the last refresh.
    assert!(rows[0]["seq"].as_i64() < rows[1]["seq"].as_i64());
    // The read is on the record, as the daemon's client made it.
    let read = w
        .audit_events(5)
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"] == "audit page")
        .expect("the narrowed read is recorded");
    assert_eq!(read["interface"], "cli");
    // An outcome that does not exist is bad input, named.
    let out = w.via_daemon(&["audit", "tail", "--outcome", "maybe"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("maybe"));
    d.stop(&w).await;
}
