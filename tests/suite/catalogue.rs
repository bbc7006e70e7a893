//! The audit catalogue, proved: the README's table is the one the code generates, every
//! entry is checked by a test, and each action performed once through the CLI, the daemon
//! or its scheduler records exactly the event its entry documents, as the real account.

use crate::common;

use common::catalogue::assert_catalogued;
use common::World;
use qbo_service::client::Client;
use qbo_service::{Interface, SocketClient};
use qbo_sim::{FaultConfig, FaultKind, SimOptions};
use qbo_store::audit::{markdown_table, Action, CATALOGUE, README_END, README_START};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The sequence number after which the next action's events come: the newest event now,
/// plus the record of reading it.
async fn mark(w: &World) -> i64 {
    let last = w.audit_events(1).await;
    last.first().map_or(0, |e| e["seq"].as_i64().unwrap()) + 1
}

/// Every event recorded after `mark`, oldest first.
async fn since(w: &World, mark: i64) -> Vec<Value> {
    w.audit_events(1000)
        .await
        .into_iter()
        .filter(|e| e["seq"].as_i64().unwrap() > mark)
        .collect()
}

/// Runs one command and returns the events it recorded, which must be exactly `actions`
/// in that order.
async fn performed(w: &World, args: &[&str], actions: &[Action]) -> Vec<Value> {
    let m = mark(w).await;
    let out = w.cli(args).await;
    let events = since(w, m).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let wanted: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        wanted,
        "qbo-console {args:?} (exit {:?}, stderr {}) recorded {events:?}",
        out.status.code(),
        common::stderr(&out)
    );
    events
}

/// Like `performed` for an action expected to record one event: that event.
async fn one(w: &World, args: &[&str], action: Action) -> Value {
    performed(w, args, &[action]).await.remove(0)
}

#[test]
fn the_readme_holds_the_catalogue_exactly_as_generated_from_the_code() {
    let path = repo("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(README_START)
        .unwrap_or_else(|| panic!("README.md lacks the line {README_START}"));
    let body_start = start + README_START.len() + 1;
    let end = readme[body_start..]
        .find(README_END)
        .map(|i| body_start + i)
        .unwrap_or_else(|| panic!("README.md lacks the line {README_END} after the start"));
    let want = markdown_table();
    if readme[body_start..end] == want {
        return;
    }
    if std::env::var("QBO_CONSOLE_UPDATE_README").as_deref() == Ok("1") {
        let updated = format!("{}{want}{}", &readme[..body_start], &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    panic!(
        "README.md's catalogue table differs from crates/core/src/audit/catalogue.rs; regenerate it with \
         `QBO_CONSOLE_UPDATE_README=1 cargo test --test suite catalogue::` and commit README.md"
    );
}

/// The `Action::X` named as the action of each `assert_catalogued(…, Action::X, …)` call
/// in the suite's sources.
fn checked_actions(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            checked_actions(&p, out);
            continue;
        }
        if p.extension().and_then(|x| x.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (at, _) in text.match_indices("assert_catalogued(") {
            // The call's arguments: up to its closing parenthesis.
            let args = &text[at + "assert_catalogued(".len()..];
            let mut depth = 1;
            let end = args
                .char_indices()
                .find_map(|(i, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    (depth == 0).then_some(i)
                })
                .unwrap_or(args.len());
            let args = &args[..end];
            if let Some(i) = args.find("Action::") {
                let name: String = args[i + "Action::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        }
    }
}

#[test]
fn every_catalogue_entry_is_checked_by_a_test_that_performs_it() {
    let mut checked = Vec::new();
    checked_actions(&repo("tests/suite"), &mut checked);
    let missing: Vec<String> = CATALOGUE
        .iter()
        .map(|s| format!("{:?}", s.action))
        .filter(|variant| !checked.contains(variant))
        .collect();
    assert!(
        missing.is_empty(),
        "catalogue entries no test checks with assert_catalogued(…, Action::X, …): {}",
        missing.join(", ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_credential_action_through_the_cli_records_exactly_its_catalogued_event_as_the_operator(
) {
    let w = World::start(SimOptions::default()).await;
    let me = me();
    let grants = w.seed(1, "cat").await;
    let import = w.audit_events(1).await.remove(0);
    assert_catalogued(&import, Action::Import, &me);
    assert_eq!(import["tenant"], "cat-0");
    assert!(import["fingerprints"]
        .as_str()
        .unwrap()
        .contains("refresh=fp:"));

    // Reads.
    let ev = one(&w, &["list", "--json"], Action::List).await;
    assert_catalogued(&ev, Action::List, &me);
    let ev = one(&w, &["show", "cat-0", "--json"], Action::Show).await;
    assert_catalogued(&ev, Action::Show, &me);
    assert_eq!(ev["tenant"], "cat-0");
    let ev = one(&w, &["keys", "status"], Action::KeysStatus).await;
    assert_catalogued(&ev, Action::KeysStatus, &me);
    let ev = one(&w, &["audit", "tail", "-n", "3"], Action::AuditTail).await;
    assert_catalogued(&ev, Action::AuditTail, &me);
    let ev = one(
        &w,
        &["audit", "tail", "--action", "import"],
        Action::AuditPage,
    )
    .await;
    assert_catalogued(&ev, Action::AuditPage, &me);
    let ev = one(&w, &["audit", "verify"], Action::AuditVerify).await;
    assert_catalogued(&ev, Action::AuditVerify, &me);

    // A manual refresh and a verify, each one call at Intuit.
    let ev = one(&w, &["refresh", "cat-0"], Action::Refresh).await;
    assert_catalogued(&ev, Action::Refresh, &me);
    assert_eq!(
        (ev["outcome"].as_str(), ev["interface"].as_str()),
        (Some("ok"), Some("cli"))
    );
    let fps = ev["fingerprints"].as_str().unwrap();
    assert!(
        fps.contains("refresh_used=fp:") && fps.contains("access_new=fp:"),
        "{ev}"
    );
    assert!(ev["intuit_tid"].is_string(), "{ev}");
    let ev = one(&w, &["verify", "cat-0"], Action::Verify).await;
    assert_catalogued(&ev, Action::Verify, &me);
    assert_eq!(ev["outcome"], "ok");

    // Intuit failing: the refresh and the verify fail with a class, and a revoke is left
    // revoking (its dry run, which the CLI asks first, on record before it).
    w.sim.set_realm_faults(
        &grants[0].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let ev = one(&w, &["refresh", "cat-0"], Action::Refresh).await;
    assert_catalogued(&ev, Action::Refresh, &me);
    assert_eq!(
        (ev["outcome"].as_str(), ev["error_class"].as_str()),
        (Some("failed"), Some("transient")),
        "{ev}"
    );
    let ev = one(&w, &["verify", "cat-0"], Action::Verify).await;
    assert_catalogued(&ev, Action::Verify, &me);
    assert_eq!(ev["outcome"], "failed");
    let evs = performed(
        &w,
        &["revoke", "cat-0", "--yes"],
        &[Action::RevokeDryRun, Action::Revoke],
    )
    .await;
    assert_catalogued(&evs[0], Action::RevokeDryRun, &me);
    assert_catalogued(&evs[1], Action::Revoke, &me);
    assert_eq!(evs[1]["outcome"], "failed");
    assert!(evs[1]["fingerprints"]
        .as_str()
        .unwrap()
        .starts_with("refresh_kept=fp:"));

    // Intuit back: the revoke goes through.
    w.sim.clear_realm_faults(&grants[0].realm_id);
    let evs = performed(
        &w,
        &["revoke", "cat-0", "--yes"],
        &[Action::RevokeDryRun, Action::RevokeRetried],
    )
    .await;
    assert_catalogued(&evs[1], Action::RevokeRetried, &me);
    assert_eq!(evs[1]["outcome"], "ok");

    w.seed(2, "cat2").await;
    let evs = performed(
        &w,
        &["revoke", "cat2-0", "--yes"],
        &[Action::RevokeDryRun, Action::Revoke],
    )
    .await;
    assert_catalogued(&evs[1], Action::Revoke, &me);
    assert_eq!(evs[1]["outcome"], "ok");
    assert!(evs[1]["fingerprints"]
        .as_str()
        .unwrap()
        .starts_with("refresh_revoked=fp:"));
    let evs = performed(
        &w,
        &[
            "revoke",
            "cat2-1",
            "--local-only",
            "--reason",
            "company closed",
            "--yes",
        ],
        &[Action::RevokeDryRun, Action::RevokeLocalOnly],
    )
    .await;
    assert_catalogued(&evs[1], Action::RevokeLocalOnly, &me);

    // Purge: a dry run, and a purge that finds nothing old enough is on record too.
    let ev = one(&w, &["purge"], Action::PurgeDryRun).await;
    assert_catalogued(&ev, Action::PurgeDryRun, &me);
    let ev = one(&w, &["purge", "--yes"], Action::Purge).await;
    assert_catalogued(&ev, Action::Purge, &me);
    assert!(ev["reason"].as_str().unwrap().contains("purged 0"), "{ev}");

    // A key rotation: started and finished, each on record.
    let new_key = w.path("new.key");
    w.ok(&["keys", "generate", "--out", new_key.to_str().unwrap()])
        .await;
    let d = w.dir.path().display().to_string();
    w.edit_config(
        &format!("key_file = \"{d}/token.key\""),
        &format!("key_file = \"{d}/new.key\"\nold_key_files = [\"{d}/token.key\"]"),
    );
    let evs = performed(
        &w,
        &["keys", "rotate", "--new-key", new_key.to_str().unwrap()],
        &[Action::KeyRotation, Action::KeyRotation],
    )
    .await;
    for ev in &evs {
        assert_catalogued(ev, Action::KeyRotation, &me);
    }
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
/// The daemon's own work is named by what it was, with no role (issue 22): its refreshes
/// as `scheduler`, its retried revokes as `revoke retry`, never the OS account it runs as.
async fn the_scheduler_records_its_refreshes_and_revoke_retries_as_the_daemons_own_work() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(2, "sch").await;
    let d = w.in_process().await;
    // Imported connections are due at once.
    let m = mark(&w).await;
    let pass = d.tick().await;
    assert_eq!(pass.refreshed, 2, "{pass:?}");
    let events = since(&w, m).await;
    assert_eq!(events.len(), 2, "{events:?}");
    for ev in &events {
        assert_catalogued(ev, Action::Refresh, "scheduler");
        assert_eq!(ev["actor_kind"], "scheduler");
        assert_eq!(ev["role"], "");
        assert_eq!(ev["interface"], "scheduler");
        assert_eq!(ev["outcome"], "ok");
    }

    // A revoke Intuit does not confirm is retried by the scheduler, on its own record.
    w.sim.set_realm_faults(
        &grants[1].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let out = w.cli(&["revoke", "sch-1", "--yes"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "left revoking: {}",
        common::stdout(&out)
    );
    w.sim.clear_realm_faults(&grants[1].realm_id);
    w.advance(&d, chrono::Duration::minutes(5));
    let m = mark(&w).await;
    let pass = d.tick().await;
    assert_eq!(pass.revoked, 1, "{pass:?}");
    let retried: Vec<Value> = since(&w, m)
        .await
        .into_iter()
        .filter(|e| e["action"] == Action::RevokeRetried.as_str())
        .collect();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_catalogued(&retried[0], Action::RevokeRetried, "revoke retry");
    assert_eq!(retried[0]["actor_kind"], "revoke retry");
    assert_eq!(retried[0]["role"], "");
    assert_eq!(retried[0]["interface"], "scheduler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_role_without_the_permission_is_refused_and_each_refusal_is_its_catalogued_denied_event()
{
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "den").await;
    let import = w.path("more.csv");
    std::fs::write(
        &import,
        "tenant,realm_id,environment,refresh_token\nx,1,sandbox,RT\n",
    )
    .unwrap();
    w.append_config(&format!("[roles]\nviewer = [\"{}\"]\n", me()));
    let daemon = w.start_daemon(&[]).await;
    let refused: &[(&[&str], Action)] = &[
        (&["refresh", "den-0"], Action::Refresh),
        (&["verify", "den-0"], Action::Verify),
        (&["import", import.to_str().unwrap()], Action::Import),
        (&["revoke", "den-0", "--yes"], Action::Revoke),
        (&["purge", "--yes"], Action::Purge),
        (&["audit", "tail"], Action::AuditTail),
        (&["audit", "tail", "--outcome", "ok"], Action::AuditPage),
        (&["audit", "verify"], Action::AuditVerify),
        (&["keys", "status"], Action::KeysStatus),
        (&["support-bundle", "den-0"], Action::SupportBundle),
        (&["report", "posture"], Action::PostureReport),
    ];
    for (args, _) in refused {
        let out = w.via_daemon(args).await;
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            common::stderr(&out)
        );
    }
    daemon.stop(&w).await;

    // A support engineer may refresh one connection, not all of them.
    w.append_config(&format!("[roles]\nsupport = [\"{}\"]\n", me()));
    let daemon = w.start_daemon(&[]).await;
    let out = w.via_daemon(&["refresh", "--all"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    daemon.stop(&w).await;

    let denied: Vec<Value> = w
        .audit_events(200)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), refused.len() + 1, "{denied:?}");
    for (ev, (_, action)) in denied.iter().zip(refused) {
        assert_eq!(ev["action"], action.as_str(), "{ev}");
        assert_eq!(ev["role"], "viewer", "{ev}");
    }
    let me = me();
    assert_catalogued(&denied[0], Action::Refresh, &me);
    assert_catalogued(&denied[1], Action::Verify, &me);
    assert_catalogued(&denied[2], Action::Import, &me);
    assert_catalogued(&denied[3], Action::Revoke, &me);
    assert_catalogued(&denied[4], Action::Purge, &me);
    assert_catalogued(&denied[5], Action::AuditTail, &me);
    assert_catalogued(&denied[6], Action::AuditPage, &me);
    assert_catalogued(&denied[7], Action::AuditVerify, &me);
    assert_catalogued(&denied[8], Action::KeysStatus, &me);
    assert_catalogued(&denied[9], Action::SupportBundle, &me);
    assert_catalogued(&denied[10], Action::PostureReport, &me);
    assert_catalogued(&denied[11], Action::RefreshInBulk, &me);
    assert_eq!(denied[11]["role"], "support");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_sessions_watch_and_whoami_are_catalogued_and_an_unmapped_account_is_refused_each(
) {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "ses").await;
    w.append_config(&format!("[roles]\nviewer = [\"{}\"]\n", me()));
    let daemon = w.start_daemon(&[]).await;
    // The scheduler's first pass done, nothing else moves while the console works.
    w.wait_for_first_pass().await;
    // What the console does: opens, asks who it is, subscribes, closes.
    let console = SocketClient::new(w.socket()).declaring(Interface::Tui);
    let m = mark(&w).await;
    console
        .session(qbo_service::SessionEvent::Opened)
        .await
        .unwrap();
    console.whoami().await.unwrap();
    let feed = console.watch().await.unwrap();
    drop(feed);
    console
        .session(qbo_service::SessionEvent::Closed)
        .await
        .unwrap();
    daemon.stop(&w).await;
    let events = since(&w, m).await;
    let order = [
        Action::ConsoleOpened,
        Action::WhoAmI,
        Action::Watch,
        Action::ConsoleClosed,
    ];
    assert_eq!(events.len(), order.len(), "{events:?}");
    for ev in &events {
        assert_eq!(ev["interface"], "tui", "{ev}");
        assert_eq!(ev["role"], "viewer", "{ev}");
    }
    let me = me();
    assert_catalogued(&events[0], Action::ConsoleOpened, &me);
    assert_catalogued(&events[1], Action::WhoAmI, &me);
    assert_catalogued(&events[2], Action::Watch, &me);
    assert_catalogued(&events[3], Action::ConsoleClosed, &me);

    // An account no role is mapped to is refused everything, each on record.
    w.append_config("[roles]\nadmin = [\"somebody-else\"]\n");
    let daemon = w.start_daemon(&[]).await;
    let m = mark(&w).await;
    let stranger = || SocketClient::new(w.socket()).declaring(Interface::Tui);
    assert!(stranger()
        .session(qbo_service::SessionEvent::Opened)
        .await
        .is_err());
    assert!(stranger().whoami().await.is_err());
    assert!(stranger().watch().await.is_err());
    assert!(stranger().list(Default::default()).await.is_err());
    assert!(stranger().show("ses-0".into()).await.is_err());
    assert!(stranger()
        .session(qbo_service::SessionEvent::Closed)
        .await
        .is_err());
    daemon.stop(&w).await;
    let events = since(&w, m).await;
    let order = [
        Action::ConsoleOpened,
        Action::WhoAmI,
        Action::Watch,
        Action::List,
        Action::Show,
        Action::ConsoleClosed,
    ];
    assert_eq!(events.len(), order.len(), "{events:?}");
    for (ev, action) in events.iter().zip(order) {
        assert_eq!(ev["action"], action.as_str(), "{ev}");
        assert_eq!(
            (ev["outcome"].as_str(), ev["role"].as_str()),
            (Some("denied"), Some("unmapped"))
        );
    }
    assert_catalogued(&events[0], Action::ConsoleOpened, &me);
    assert_catalogued(&events[1], Action::WhoAmI, &me);
    assert_catalogued(&events[2], Action::Watch, &me);
    assert_catalogued(&events[3], Action::List, &me);
    assert_catalogued(&events[4], Action::Show, &me);
    assert_catalogued(&events[5], Action::ConsoleClosed, &me);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_records_each_connection_it_seeds_as_a_demo_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let world = qbo_console::cli::demo_world::build(&tmp.path().join("world"), 8)
        .await
        .expect("demo world");
    let admin = qbo_core::identity::Actor::current_process(
        qbo_core::identity::Interface::Cli,
        qbo_core::identity::Role::Admin,
    );
    let events = world.service.audit_tail(&admin, 10_000).await.unwrap();
    let seeds: Vec<Value> = events
        .iter()
        .filter(|e| e.action == Action::DemoSeed.as_str())
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert!(!seeds.is_empty(), "the demo seeded nothing on record");
    for ev in &seeds {
        assert_catalogued(ev, Action::DemoSeed, &me());
    }
    world.shutdown(false).await;
}

/// Issue 22, honest actors: a real daemon exercises every act that is not an operator's
/// (the scheduler, health checks, alerts, revoke retries, link expiry and retention; a host
/// app through the token API; a customer's browser through the public listener, from an
/// unknown link to a completed reconnect; Intuit's Disconnect and Reconnect URLs), then
/// every event in the log is checked: each names a kind of actor its catalogue entry
/// allows, and none but an operator's carries a role, an OS account or a uid. It fails if
/// any automatic or anonymous act is recorded with an operator's role (as the customer's
/// reconnect was, as `root via callback [admin]`), and if any catalogue action that is not
/// only an operator's is not seen recorded by a kind that is not an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_automatic_or_anonymous_act_is_recorded_with_an_operators_role() {
    use crate::links::{dead_tenant, start};
    use qbo_core::identity::{Actor, DaemonTask, Kind};
    use std::collections::BTreeSet;

    let rx = common::receiver::Receiver::start().await;
    let archive = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let verifier = secrets.path().join("verifier.token");
    common::write_secret(&verifier, crate::webhooks::VERIFIER);
    let p = start(&format!(
        "\n[health]\ninterval = \"1d\"\n\n[alerts]\nretry_base = \"1m\"\n{}\n\n[retention]\naudit_days = 30\narchive_dir = \"{}\"\n\n[webhooks]\nverifier_token_file = \"{}\"\n",
        rx.webhook_config(),
        archive.path().display(),
        verifier.display()
    ))
    .await;
    let get = |url: String| {
        let p = &p;
        async move { p.get(&url, None).await.status }
    };

    // A customer's browser: an unknown link, a forged state, then a reconnect completed,
    // repeated, declined, for the wrong company and without a code.
    assert_eq!(get(format!("{}/connect/no-such-link", p.base)).await, 404);
    let (_, realm, _) = dead_tenant(&p, "cust").await;
    let others = p.w.seed(1, "intu").await;
    let link = p.link(&["cust-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    assert_eq!(p.get(&callback, Some(&cookie)).await.status, 200);
    assert_eq!(p.get(&callback, Some(&cookie)).await.status, 409);
    let path = callback.split('?').next().unwrap().to_string();
    get(format!("{path}?state=forged&code=x")).await;
    for (decision, realm_back) in [
        ("deny", None),
        ("approve", Some(others[0].realm_id.as_str())),
    ] {
        let link = p.link(&["cust-0"]).await;
        let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
        let callback = p.consent(&intuit, decision, realm_back).await;
        p.get(&callback, Some(&cookie)).await;
    }
    let link = p.link(&["cust-0"]).await;
    let (intuit, cookie) = p.open(link["url"].as_str().unwrap()).await;
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    let (path, query) = callback.split_once('?').unwrap();
    let no_code: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with("code="))
        .collect();
    p.get(&format!("{path}?{}", no_code.join("&")), Some(&cookie))
        .await;

    // Intuit: its Disconnect URL, then its Reconnect URL (a customer's browser again).
    p.w.sim.disconnect(&others[0].realm_id);
    let intu = &others[0].realm_id;
    assert_eq!(
        get(format!("{}/intuit/disconnect?realmId={intu}", p.base)).await,
        200
    );
    assert_eq!(
        get(format!("{}/intuit/reconnect?realmId={intu}", p.base)).await,
        302
    );
    // Intuit again: a signed webhook about a connected realm, on the public listener.
    let body = format!(
        r#"{{"eventNotifications":[{{"realmId":"{realm}","dataChangeEvent":{{"entities":[{{"name":"Bill","id":"7","operation":"Update","lastUpdated":"2026-03-01T09:00:00Z"}}]}}}}]}}"#
    );
    let sig = qbo_daemon::webhooks::signature::sign(
        crate::webhooks::VERIFIER.as_bytes(),
        body.as_bytes(),
    );
    let hook = format!("{}{}", p.base, qbo_daemon::webhooks::PATH);
    assert_eq!(
        crate::webhooks::post(&hook, body.as_bytes(), Some(&sig)).await,
        200
    );

    // A host application: a token twice, a bad key, a sync report.
    let (key, _) = crate::token_api::create_key(&p.w, "books-sync", &[]).await;
    let api = p.d.api_url();
    let token_url = format!("{api}/v1/connections/{realm}/access-token");
    for _ in 0..2 {
        let (status, body) = crate::token_api::get(&token_url, Some(&key)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = crate::token_api::get(&token_url, Some("qbo_sk_not-a-key")).await;
    assert_eq!(status, 401);
    let sync = reqwest::Client::new()
        .post(format!("{api}/v1/connections/{realm}/sync"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"status": "ok", "records": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status().as_u16(), 200);
    // Stopping summarises the further hand-outs.
    let w = p.stop().await;

    // The daemon's own work, pass by pass on its clock.
    let d = w.in_process().await;
    let grants = w.seed(2, "own").await;
    w.advance(&d, chrono::Duration::hours(2));
    d.tick().await;
    w.advance(&d, chrono::Duration::days(1));
    d.health_pass().await;
    // An alert whose first delivery fails and second is accepted.
    w.sim.disconnect(&grants[0].realm_id);
    w.advance(&d, chrono::Duration::hours(2));
    d.tick().await;
    rx.fail_next(1);
    d.alerts_pass().await;
    w.advance(&d, chrono::Duration::seconds(61));
    d.alerts_pass().await;
    // A revoke Intuit does not confirm, retried by the daemon.
    w.sim.set_realm_faults(
        &grants[1].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let out = w.cli(&["revoke", "own-1", "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    w.sim.clear_realm_faults(&grants[1].realm_id);
    w.advance(&d, chrono::Duration::minutes(5));
    d.tick().await;
    // Links run out unused.
    w.advance(&d, chrono::Duration::days(8));
    assert!(d.service.expire_links().await.unwrap() > 0);
    // Intuit rejects our client secret: an incident about our credentials opens, and a
    // daemon with the right secret ends it with its first good refresh.
    w.seed(2, "creds").await;
    let secret = std::fs::read_to_string(w.path("sandbox.secret")).unwrap();
    std::fs::write(w.path("sandbox.secret"), "not-the-secret").unwrap();
    let wrong = w.in_process().await;
    w.advance(&wrong, chrono::Duration::hours(2));
    wrong.tick().await;
    std::fs::write(w.path("sandbox.secret"), secret).unwrap();
    let right = w.in_process().await;
    right.clock.advance(wrong.clock.now() - right.clock.now());
    right.tick().await;

    // Every event: an honest actor, of a kind its entry allows.
    let events = w.audit_events(5000).await;
    let mut seen: BTreeSet<(Action, Kind)> = BTreeSet::new();
    for ev in &events {
        common::catalogue::assert_actor_honest(ev);
        let action = Action::parse(ev["action"].as_str().unwrap()).unwrap();
        let kind = Kind::parse(ev["actor_kind"].as_str().unwrap()).unwrap();
        if kind != Kind::Operator {
            common::catalogue::check_catalogued(ev, action, ev["actor_account"].as_str().unwrap());
        }
        seen.insert((action, kind));
    }
    let missing: Vec<String> = CATALOGUE
        .iter()
        .filter(|s| s.actors.iter().any(|k| *k != Kind::Operator))
        .filter(|s| s.action != Action::AuditArchive)
        .filter(|s| {
            !s.actors
                .iter()
                .any(|k| *k != Kind::Operator && seen.contains(&(s.action, *k)))
        })
        .map(|s| s.action.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "not seen recorded by anyone but an operator: {missing:?}; seen {seen:?}"
    );
    for pair in [
        (Action::Refresh, Kind::Scheduler),
        (Action::Verify, Kind::HealthCheck),
        (Action::RevokeRetried, Kind::RevokeRetry),
        (Action::LinkIssued, Kind::Customer),
        (Action::CustomerDisconnected, Kind::Intuit),
        (Action::DataChangeReported, Kind::Intuit),
    ] {
        assert!(seen.contains(&pair), "{pair:?} not seen in {seen:?}");
    }
    // The customer's reconnect is the customer's, not `root via callback [admin]`.
    assert!(events
        .iter()
        .all(|e| e["interface"] != "callback" || e["role"] == ""));

    // Retention last: it moves the events above out of the database.
    w.advance(&d, chrono::Duration::days(31));
    let archived = d
        .service
        .archive_due_events(&Actor::daemon(DaemonTask::Retention))
        .await
        .unwrap();
    assert!(archived.archived > 0, "{archived:?}");
    let ev = w
        .audit_events(20)
        .await
        .into_iter()
        .find(|e| e["action"] == "audit archive")
        .expect("the archive is on record");
    assert_catalogued(&ev, Action::AuditArchive, "retention");
}
