//! `import FILE` of any size: every row checked before any is written (a bad row near the
//! end changes nothing and is named), then written in batches; a write that fails midway
//! says what stays and the line to go on from, and `--from-line` goes on from there.

use crate::common;

use common::World;
use qbo_sim::SimOptions;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// Rows to import: lines 2..=n+1, realm 9_000_000 + i on line i + 2. The access tokens
/// stay good for most of an hour, so a running daemon's scheduler leaves them alone.
fn big_csv(n: usize, bad_line: Option<usize>) -> String {
    let until = (chrono::Utc::now() + chrono::Duration::minutes(55))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut s =
        String::from("tenant,realm_id,environment,refresh_token,access_token,access_expires_at\n");
    for i in 0..n {
        let line = i + 2;
        let realm = if Some(line) == bad_line {
            "12x".to_string()
        } else {
            (9_000_000 + i).to_string()
        };
        s.push_str(&format!(
            "bulk-{i:05},{realm},sandbox,RT1-bulk-{i},AT-bulk-{i},{until}\n"
        ));
    }
    s
}

async fn count(w: &World, sql: &str) -> i64 {
    use sqlx::Connection;
    if w.on_postgres() {
        let mut c = sqlx::PgConnection::connect(&w.db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&w.db_url).await.unwrap();
        let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
        c.close().await.unwrap();
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_row_near_the_end_changes_nothing_and_is_named() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "base").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    w.wait_for_first_pass().await;
    let before = w.snapshot().await;

    // Three batches and more; the bad row is in the last.
    let bad = w.path("bad.csv");
    std::fs::write(&bad, big_csv(3_000, Some(2_999))).unwrap();
    // The same rows, one named twice at the end.
    let twice = w.path("twice.csv");
    let mut text = big_csv(3_000, None);
    text.push_str("again,9000003,sandbox,RT1-again,,\n");
    std::fs::write(&twice, text).unwrap();
    // A realm that exists already, without --update.
    let existing = w.path("existing.csv");
    let realm = count(
        &w,
        "SELECT CAST(realm_id AS BIGINT) FROM connections LIMIT 1",
    )
    .await;
    let mut text = big_csv(2_500, None);
    text.push_str(&format!("dup,{realm},sandbox,RT1-dup,,\n"));
    std::fs::write(&existing, text).unwrap();

    let cases = [
        (&bad, "bad.csv:2999: invalid realm id \"12x\""),
        (
            &twice,
            "twice.csv:3002: sandbox realm 9000003 appears twice in the file",
        ),
        (&existing, "existing.csv:2502: sandbox realm"),
    ];
    for (path, expect) in cases {
        let p = path.to_str().unwrap();
        for (how, mut cmd) in [
            ("daemon", w.daemon_command(&["import", p])),
            ("--embedded", w.command(&["import", p])),
        ] {
            let out = cmd.output().await.unwrap();
            w.keep(&out);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{how} {p}: {}",
                common::stderr(&out)
            );
            let err = common::stderr(&out);
            assert!(
                err.contains(expect),
                "{how} {p}: expected {expect:?} in {err}"
            );
            assert!(err.contains("nothing was imported"), "{how} {p}: {err}");
        }
    }
    assert_eq!(
        w.snapshot().await,
        before,
        "a refused import wrote something"
    );
    d.stop(&w).await;
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_fails_midway_names_the_line_to_go_on_from() {
    let w = World::start(SimOptions::default()).await;
    // One connection of the emulator's, so the secrecy scan has its tokens to look for.
    w.seed(1, "base").await;
    w.append_config(&format!("[roles]\nadmin = [\"{}\"]\n", me()));
    let d = w.start_daemon(&[]).await;
    let file = w.path("many.csv");
    std::fs::write(&file, big_csv(3_000, None)).unwrap();
    let p = file.to_str().unwrap();

    // The audit log refuses the event of the row on line 2,502 (the third batch): the
    // check passes, two batches are written, the third rolls back whole.
    let refuse = if w.on_postgres() {
        vec![
            "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.realm_id = '9002500' THEN RAISE EXCEPTION 'audit storage unavailable (test)'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_one()",
        ]
    } else {
        vec![
            "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_events WHEN NEW.realm_id = '9002500' \
             BEGIN SELECT RAISE(ABORT, 'audit storage unavailable (test)'); END",
        ]
    };
    w.exec_sql(&refuse).await;
    let out = w.daemon_command(&["import", p]).output().await.unwrap();
    w.keep(&out);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("to line 2001 (2000 created, 0 updated), were imported and stay"),
        "{err}"
    );
    assert!(err.contains("--from-line 2002"), "{err}");
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(*) FROM connections WHERE tenant LIKE 'bulk-%'"
        )
        .await,
        2_000
    );
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'import' AND tenant LIKE 'bulk-%'"
        )
        .await,
        2_000,
        "each written row has its event, and only those"
    );

    w.exec_sql(&[if w.on_postgres() {
        "DROP TRIGGER refuse_one ON audit_events"
    } else {
        "DROP TRIGGER refuse_one"
    }])
    .await;
    // Going on from the line named: the rest, each once.
    let out = w
        .daemon_command(&["import", p, "--from-line", "2002", "--json"])
        .output()
        .await
        .unwrap();
    w.keep(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["created"], 1_000, "{report}");
    assert_eq!(report["updated"], 0, "{report}");
    assert_eq!(report["first_line"], 2_002, "{report}");
    assert_eq!(report["last_line"], 3_001, "{report}");
    assert_eq!(report["from_line"], 2_002, "{report}");
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(*) FROM connections WHERE tenant LIKE 'bulk-%'"
        )
        .await,
        3_000
    );
    assert_eq!(
        count(
            &w,
            "SELECT COUNT(DISTINCT realm_id) FROM connections WHERE tenant LIKE 'bulk-%'"
        )
        .await,
        3_000
    );
    let reasons = count(
        &w,
        "SELECT COUNT(*) FROM audit_events WHERE action = 'import' AND reason LIKE 'created from %many.csv line %'",
    )
    .await;
    assert_eq!(reasons, 3_000);

    // --update replaces every pair's tokens, in batches too.
    let out = w
        .daemon_command(&["import", p, "--update"])
        .output()
        .await
        .unwrap();
    w.keep(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let said = common::stdout(&out);
    assert!(
        said.contains("imported 3000 connection(s)") && said.contains("0 created, 3000 updated"),
        "{said}"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
    d.stop(&w).await;
    w.assert_no_secrets().await;
    // The imported tokens are sealed too: none is in the database file as text.
    if let Some(db) = w.db_url.strip_prefix("sqlite://") {
        let bytes = std::fs::read(db).unwrap();
        let found = bytes
            .windows(9)
            .any(|win| win == b"RT1-bulk-" || win == b"AT-bulk-1");
        assert!(!found, "an imported token is stored as text");
    }
}
