//! A row written past the audit chain's head (by hand, a restore, someone with database
//! access) is named, contained and repaired without SQL: `audit verify` names it even
//! though it cannot record its own read, credential actions are refused naming the repair
//! verb, nothing is sent to Intuit meanwhile, and `audit quarantine --from SEQ` moves the
//! stray rows to a quarantine table and records the repair with their hashes, which an
//! export's offline verification shows.

use crate::common;

use common::catalogue::assert_catalogued;
use common::{Tuning, World};
use qbo_sim::SimOptions;
use qbo_store::audit::Action;
use serde_json::Value;
use std::time::{Duration, Instant};

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

const COLUMNS: &str = "at, actor_account, actor_uid, actor_ssh, interface, role, action, connection_id, \
    environment, realm_id, tenant, outcome, error_class, reason, intuit_tid, request_id, fingerprints, prev_hash, hash";

/// Copies event `from` to sequence `to`, past the head, as a hand-written row would be.
async fn insert_past_head(w: &World, from: i64, to: i64) {
    w.exec_sql(&[&format!(
        "INSERT INTO audit_events (seq, {COLUMNS}) SELECT {to}, {COLUMNS} FROM audit_events WHERE seq = {from}"
    )])
    .await;
}

/// The hash stored with event `seq`, from the chain's own reading.
async fn hash_of(w: &World, seq: i64) -> String {
    let events = w.audit_events(200).await;
    events
        .iter()
        .find(|e| e["seq"] == seq)
        .unwrap_or_else(|| panic!("no event {seq} in {events:?}"))["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The whole criterion on the CLI, embedded: verify names the stray rows although its
/// read cannot be recorded; `refresh` and `revoke` are refused with the repair verb named
/// and nothing reaches Intuit; a SEQ inside the chain or past the first stray row is
/// refused and changes nothing; `audit quarantine` restores service; afterwards `audit
/// verify` and an export's offline verification pass and show the repair with the
/// removed rows' hashes. Without the change, verify fails without a verdict, the refusals
/// name no verb (or Intuit is called first), and there is no way out but SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_past_the_head_is_named_refused_and_quarantined_without_sql() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "q").await;
    w.ok(&["refresh", "--all"]).await;
    let (stray_a, stray_b) = (hash_of(&w, 2).await, hash_of(&w, 3).await);
    // The tail records its own reading: the head is one past the newest event it shows.
    let head = w.audit_events(1).await[0]["seq"].as_i64().unwrap() + 1;
    let first = head + 1;
    insert_past_head(&w, 2, first).await;
    insert_past_head(&w, 3, first + 1).await;
    w.sim.reset_stats();

    // Named, with the verdict although the read cannot be recorded.
    let out = w.cli(&["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(
        text.contains(&format!("BROKEN at sequence {first} (inserted)")),
        "{text}"
    );
    assert!(
        text.contains("this read could not be recorded in the audit log")
            && text.contains(&format!("audit quarantine --from {first}")),
        "{text}"
    );
    let out = w.cli(&["audit", "verify", "--json"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["first_bad_seq"], first, "{v}");
    assert_eq!(v["kind"], "inserted", "{v}");
    assert!(
        v["read_not_recorded"]
            .as_str()
            .unwrap()
            .contains("stored past the chain head"),
        "{v}"
    );

    // Credential actions are refused, naming the damage and the repair, before Intuit.
    for args in [&["refresh", "q-0"][..], &["revoke", "q-1", "--yes"][..]] {
        let out = w.cli(args).await;
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let err = common::stderr(&out);
        assert!(
            err.contains(&format!("event {first} is stored past the chain head"))
                && err.contains(&format!("qbo-console audit quarantine --from {first}")),
            "{args:?}: {err}"
        );
    }
    let stats = w.sim.stats();
    assert_eq!(
        (stats.token_requests, stats.revocations),
        (0, 0),
        "nothing reached Intuit: {stats:?}"
    );

    // A SEQ that would delete genuine events, or leave stray rows behind, changes nothing.
    let before = w.snapshot().await;
    for (from, says) in [
        (head, "would remove genuine events"),
        (first + 1, "would leave"),
    ] {
        let out = w
            .cli(&["audit", "quarantine", "--from", &from.to_string()])
            .await;
        assert_eq!(out.status.code(), Some(2), "{}", common::stdout(&out));
        let err = common::stderr(&out);
        assert!(
            err.contains(says) && err.contains(&format!("--from {first}")),
            "{err}"
        );
    }
    assert_eq!(
        before,
        w.snapshot().await,
        "a refused quarantine changed the database"
    );

    // The repair.
    let out = w
        .ok(&[
            "audit",
            "quarantine",
            "--from",
            &first.to_string(),
            "--json",
        ])
        .await;
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["removed"], 2, "{r}");
    assert_eq!(
        (r["from_seq"].as_i64(), r["through_seq"].as_i64()),
        (Some(first), Some(first + 1))
    );
    assert_eq!(r["removed_hashes"][0]["hash"], stray_a.as_str(), "{r}");
    assert_eq!(r["removed_hashes"][1]["hash"], stray_b.as_str(), "{r}");
    assert_eq!(
        r["head_seq"], head,
        "the chain continues from its last good head"
    );
    // The rows are kept, and the quarantine cannot be emptied.
    assert!(w.try_sql("DELETE FROM audit_quarantine").await.is_err());
    assert!(w
        .try_sql("UPDATE audit_quarantine SET reason = 'x'")
        .await
        .is_err());

    // Service is back: the refused refresh goes through, once, at Intuit.
    w.ok(&["refresh", "q-0"]).await;
    assert_eq!(w.sim.stats().token_requests, 1);

    // The repair is on the record, verified, with the removed rows' hashes.
    let out = w.ok(&["audit", "verify", "--json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v.get("read_not_recorded").is_none(), "{v}");
    let repair = &v["repairs"][0];
    assert_eq!(repair["seq"], head + 1, "{v}");
    assert_eq!(repair["actor_account"], me().as_str(), "{v}");
    assert_eq!(repair["role"], "admin", "{v}");
    let reason = repair["reason"].as_str().unwrap();
    for (seq, hash) in [(first, &stray_a), (first + 1, &stray_b)] {
        assert!(reason.contains(&format!("{seq}={hash}")), "{reason}");
    }
    assert!(
        reason.contains(&format!("sequence {first}..{}", first + 1)),
        "{reason}"
    );
    let events = w.audit_events(50).await;
    let ev = events
        .iter()
        .find(|e| e["action"] == "chain repaired")
        .expect("the repair is in the log");
    assert_catalogued(ev, Action::ChainRepaired, &me());

    // An export taken later shows the repair and the hashes, offline.
    let file = w.path("after-repair.jsonl");
    w.ok(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "-o",
        file.to_str().unwrap(),
    ])
    .await;
    let empty = tempfile::tempdir().unwrap();
    let offline = |json: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_qbo-console"));
        cmd.env_clear()
            .current_dir(empty.path())
            .args(["audit", "verify"]);
        if json {
            cmd.arg("--json");
        }
        cmd.args(["--export", file.to_str().unwrap()]);
        cmd.output()
    };
    let out = offline(true).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stdout(&out));
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ok"], true, "{f}");
    let reason = f["repairs"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&stray_a) && reason.contains(&stray_b),
        "{f}"
    );
    let out = offline(false).await.unwrap();
    let text = common::stdout(&out);
    assert!(
        text.contains(&format!("repaired at sequence {}", head + 1)) && text.contains(&stray_a),
        "{text}"
    );
}

/// Waits until `done`, or `bound` seconds at most, without asserting: the caller asserts
/// what must hold either way.
async fn wait(bound: u64, done: &dyn Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(bound);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `/healthz` until its status is `want`, within 30 s; the body.
async fn health_until(d: &common::DaemonProc, want: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = d.get("/healthz").await;
        if status == want {
            return serde_json::from_str(&body).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "/healthz stayed {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With `serve` refreshing 30-second... here 5-second access tokens every few seconds, a
/// row written past the head stops every call to Intuit until the repair: `/healthz`
/// answers 503 naming the audit log, passes are skipped (loudly) while every connection's
/// access token comes due and expires, and no token request reaches qbo-sim. After
/// `audit quarantine` through the socket, `/healthz` is 200 again and every connection is
/// refreshed and alive. Without the change, the daemon goes on refreshing at Intuit and
/// throws the rotated tokens away on the failing audit insert.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_past_the_head_while_serve_runs_stops_refreshes_until_the_repair() {
    let opts = SimOptions {
        access_token_ttl_secs: 5,
        ..SimOptions::default()
    };
    let tuning = Tuning {
        extra: "refresh_before_expiry = \"3s\"\n".into(),
        ..Tuning::default()
    };
    let w = World::start_tuned(opts, tuning).await;
    w.seed(3, "live").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    assert_eq!(health_until(&d, 200).await["audit_log"], "ok");

    let head = w.audit_events(1).await[0]["seq"].as_i64().unwrap() + 1;
    // Well past anything the daemon writes meanwhile: it blocks once the chain reaches it,
    // and the daemon must not wait for that to stop.
    let stray = head + 1000;
    insert_past_head(&w, 2, stray).await;

    let h = health_until(&d, 503).await;
    let why = h["audit_log"].as_str().unwrap();
    assert!(
        why.contains(&format!("event {stray} is stored past the chain head"))
            && why.contains(&format!("audit quarantine --from {stray}")),
        "{h}"
    );
    // A pass may have been under way when the row went in: the baseline is taken once a
    // pass has been skipped since (the waits are bounded and do not assert, so that a
    // daemon that goes on refreshing fails on the count below, which is what matters).
    let skipped = |log: &str| log.matches("no refresh token is sent to Intuit").count();
    wait(30, &|| skipped(&d.log()) > 0).await;
    let sent = w.sim.stats().token_requests;
    let seen = skipped(&d.log());
    // Until every access token has expired (each was due within 3 s of it), with passes
    // going on meanwhile.
    let expired_by = chrono::Utc::now() + chrono::Duration::seconds(6);
    wait(60, &|| {
        chrono::Utc::now() > expired_by && skipped(&d.log()) >= seen + 5
    })
    .await;
    assert_eq!(
        w.sim.stats().token_requests,
        sent,
        "a refresh token was sent to Intuit while the audit log could not record the answer"
    );
    assert!(
        skipped(&d.log()) >= seen + 5,
        "passes are skipped, loudly: {}",
        d.log()
    );
    let listed = w.via_daemon(&["list", "--json"]).await;
    assert_ne!(
        listed.status.code(),
        Some(0),
        "a read that cannot be recorded is not answered"
    );

    let out = w
        .via_daemon(&["audit", "quarantine", "--from", &stray.to_string()])
        .await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    health_until(&d, 200).await;
    // Every connection refreshed after the repair, and alive.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let conns = w.connections_json().await;
        let after = w.sim.stats().token_requests >= sent + 3;
        if after
            && conns
                .iter()
                .all(|c| c["status"] == "active" && c["last_refresh_outcome"] == "ok")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every connection came back: {conns:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.sim.stats().invalid_grants, 0);
    let v = w.ok(&["audit", "verify"]).await;
    assert!(
        v.contains("intact") && v.contains("repaired at sequence"),
        "{v}"
    );
    d.stop(&w).await;
}
