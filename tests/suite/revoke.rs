//! Revocation and retention: a grant ended at Intuit before its local tokens go, an Intuit
//! that will not confirm (the daemon finishes the job later), bulk revokes chosen with the
//! console's filter language, the refusal to act unasked, and the purge of old revoked rows.

use crate::common;

use chrono::Duration;
use common::World;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::{RevokeOutcome, RevokeRequest, Service, Status};
use qbo_sim::{FaultConfig, FaultKind, PreviousToken, Rotation, SimOptions};

fn admin() -> Actor {
    Actor::current_process(Interface::Cli, Role::Admin)
}

fn strict_rotation() -> SimOptions {
    SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: PreviousToken::InvalidAtOnce,
        ..SimOptions::default()
    }
}

/// Every ciphertext column of the connection named `tenant`, as stored.
async fn ciphertexts(svc: &Service, tenant: &str) -> [Option<Vec<u8>>; 3] {
    let rec = svc.resolve(tenant).await.expect("tenant exists");
    let s = svc
        .lifecycle_for_tests()
        .store
        .load_sealed(rec.id)
        .await
        .unwrap()
        .expect("row exists");
    [s.access_token, s.refresh_token, s.previous_refresh_token]
}

async fn status_of(svc: &Service, tenant: &str) -> Status {
    svc.resolve(tenant).await.expect("tenant exists").status
}

fn named(targets: &[&str]) -> RevokeRequest {
    RevokeRequest {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        ..RevokeRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_ends_the_grant_at_intuit_and_leaves_no_ciphertext_of_the_connection() {
    let w = World::start(strict_rotation()).await;
    w.seed(2, "rv").await;
    // A refresh first, so the row also holds a previous refresh token.
    w.ok(&["refresh", "rv-0"]).await;
    let svc = w.service().await;
    assert!(ciphertexts(&svc, "rv-0").await.iter().all(Option::is_some));

    let out = w.ok(&["revoke", "rv-0", "--yes", "--json"]).await;
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0]["outcome"], "revoked", "{out}");
    assert_eq!(reports[0]["tenant"], "rv-0", "{out}");

    let stats = w.sim.stats();
    assert_eq!(stats.revoked_grants, 1, "{stats:?}");
    assert_eq!(ciphertexts(&svc, "rv-0").await, [None, None, None]);
    assert_eq!(status_of(&svc, "rv-0").await, Status::Revoked);
    // The other tenant is untouched.
    assert!(ciphertexts(&svc, "rv-1").await[..2]
        .iter()
        .all(Option::is_some));
    assert_eq!(status_of(&svc, "rv-1").await, Status::Active);

    let events = w.audit_events(20).await;
    let revoke = events
        .iter()
        .find(|e| e["action"] == "revoke")
        .expect("a revoke event");
    assert_eq!(revoke["outcome"], "ok", "{revoke}");
    assert_eq!(revoke["tenant"], "rv-0", "{revoke}");
    w.ok(&["audit", "verify"]).await;
    // Revoking again is safe: nothing left to do.
    let again = w.ok(&["revoke", "rv-0", "--yes", "--json"]).await;
    assert!(
        again.contains("\"skipped\"") && again.contains("already revoked"),
        "{again}"
    );
    assert_eq!(w.sim.stats().revoked_grants, 1);
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_intuit_failing_revokes_the_tokens_stay_the_connection_shows_revoking_and_the_daemon_completes_it(
) {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(2, "rf").await;
    let d = w.in_process().await;
    w.sim.set_realm_faults(
        &grants[0].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let r = d.service.revoke(&admin(), &named(&["rf-0"])).await.unwrap();
    assert!(
        matches!(r[0].outcome, RevokeOutcome::Revoking { .. }),
        "{r:?}"
    );
    assert_eq!(status_of(&d.service, "rf-0").await, Status::Revoking);
    assert!(ciphertexts(&d.service, "rf-0").await[..2]
        .iter()
        .all(Option::is_some));
    assert_eq!(w.sim.stats().revoked_grants, 0);

    // Still failing: the daemon retries after the backoff and keeps the tokens.
    w.advance(&d, Duration::minutes(1));
    let pass = d.tick().await;
    assert_eq!((pass.revoke_retries, pass.revoked), (1, 0), "{pass:?}");
    assert_eq!(status_of(&d.service, "rf-0").await, Status::Revoking);

    // Intuit recovers: the next due pass completes the revoke, and never refreshed it.
    w.sim.clear_realm_faults(&grants[0].realm_id);
    w.sim.reset_stats();
    w.advance(&d, Duration::hours(1));
    let pass = d.tick().await;
    assert_eq!((pass.revoke_retries, pass.revoked), (1, 1), "{pass:?}");
    let stats = w.sim.stats();
    assert_eq!(stats.revoked_grants, 1, "{stats:?}");
    assert_eq!(status_of(&d.service, "rf-0").await, Status::Revoked);
    assert_eq!(ciphertexts(&d.service, "rf-0").await, [None, None, None]);
    let page = d
        .service
        .audit_page(
            &admin(),
            &qbo_service::AuditQuery {
                before_seq: None,
                limit: 50,
                tenant: Some("rf-0".into()),
                actor: None,
                action: Some("revoke".into()),
                outcome: None,
            },
        )
        .await
        .unwrap();
    let seen: Vec<(String, String)> = page
        .events
        .iter()
        .map(|e| (e.action.clone(), e.outcome.clone()))
        .collect();
    assert!(
        seen.contains(&("revoke retried".into(), "ok".into()))
            && seen.contains(&("revoke".into(), "failed".into())),
        "{seen:?}"
    );
    // The other tenant is still live and refreshed as usual.
    assert_eq!(status_of(&d.service, "rf-1").await, Status::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_where_dry_run_lists_and_changes_nothing_and_a_rerun_after_an_interruption_is_safe() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(4, "bk").await;
    // Only bk-1 and bk-2 match; the dry run names them and revokes nothing.
    let out = w
        .ok(&["revoke", "--where", "status:active bk-1 bk", "--json"])
        .await;
    let planned: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(planned.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(planned[0]["outcome"], "would_revoke", "{out}");
    let text = w.ok(&["revoke", "--where", "env:sandbox bk-1"]).await;
    assert!(text.contains("nothing was revoked"), "{text}");
    let svc = w.service().await;
    for i in 0..4 {
        assert_eq!(status_of(&svc, &format!("bk-{i}")).await, Status::Active);
    }
    assert_eq!(w.sim.stats().revocations, 0);

    // An interrupted run: bk-2's revoke was not confirmed, the others went through.
    w.sim.set_realm_faults(
        &grants[2].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let out = w
        .cli(&["revoke", "--where", "env:sandbox", "--yes", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let progress = common::stderr(&out);
    assert!(progress.contains("revoke [4/4]"), "{progress}");
    assert_eq!(status_of(&svc, "bk-2").await, Status::Revoking);

    // Run again: revoked ones are skipped, the revoking one is retried.
    w.sim.clear_realm_faults(&grants[2].realm_id);
    let out = w
        .ok(&["revoke", "--where", "env:sandbox", "--yes", "--json"])
        .await;
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "skipped").count(),
        3,
        "{out}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "revoked").count(),
        1,
        "{out}"
    );
    assert_eq!(w.sim.stats().revoked_grants, 4);
    for i in 0..4 {
        assert_eq!(
            ciphertexts(&svc, &format!("bk-{i}")).await,
            [None, None, None]
        );
    }
    w.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_terminal_and_without_yes_revoke_refuses_with_exit_2_and_changes_nothing() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "nt").await;
    let before = w.audit_events(1000).await.len();
    let out = w.cli(&["revoke", "nt-0"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--yes") && err.contains("terminal"), "{err}");
    assert_eq!(w.sim.stats().revocations, 0);
    let svc = w.service().await;
    assert_eq!(status_of(&svc, "nt-0").await, Status::Active);
    // Nothing recorded either (the audit tail itself adds one read per call).
    assert_eq!(w.audit_events(1000).await.len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_local_only_revoke_forgets_the_tokens_without_intuit_and_says_so_on_record() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "lo").await;
    let bare = w.cli(&["revoke", "lo-0", "--local-only", "--yes"]).await;
    assert_eq!(bare.status.code(), Some(2), "{}", common::stderr(&bare));
    let out = w
        .ok(&[
            "revoke",
            "lo-0",
            "--local-only",
            "--reason",
            "company closed; Intuit unreachable from here",
            "--yes",
            "--json",
        ])
        .await;
    assert!(out.contains("\"revoked_locally\""), "{out}");
    assert_eq!(w.sim.stats().revocations, 0);
    let svc = w.service().await;
    assert_eq!(ciphertexts(&svc, "lo-0").await, [None, None, None]);
    assert_eq!(status_of(&svc, "lo-0").await, Status::Revoked);
    let events = w.audit_events(10).await;
    let ev = events
        .iter()
        .find(|e| e["action"] == "local-only revoke")
        .expect("a local-only revoke event");
    assert!(
        ev["reason"].as_str().unwrap().contains("company closed"),
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purge_deletes_only_revoked_connections_past_the_retention_and_the_audit_chain_still_verifies(
) {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "pg").await;
    let d = w.in_process().await;
    let me = admin();
    d.service.revoke(&me, &named(&["pg-0"])).await.unwrap();
    w.advance(&d, Duration::days(60));
    d.service.revoke(&me, &named(&["pg-1"])).await.unwrap();
    w.advance(&d, Duration::days(31));
    let old_id = d.service.resolve("pg-0").await.unwrap().id;

    // The default retention is 90 days: only pg-0 (revoked 91 days ago) goes.
    let dry = d.service.purge(&me, true).await.unwrap();
    assert_eq!(dry.purged.len(), 1, "{dry:?}");
    assert!(d.service.resolve("pg-0").await.is_ok());
    let done = d.service.purge(&me, false).await.unwrap();
    assert_eq!(
        done.purged
            .iter()
            .map(|t| t.tenant.as_str())
            .collect::<Vec<_>>(),
        ["pg-0"]
    );
    assert!(d.service.resolve("pg-0").await.is_err());
    assert_eq!(status_of(&d.service, "pg-1").await, Status::Revoked);
    assert_eq!(status_of(&d.service, "pg-2").await, Status::Active);

    // Its history stays, the purge is on record with the count, and the chain holds.
    let tail = d.service.audit_tail(&me, 1000).await.unwrap();
    assert!(tail
        .iter()
        .any(|e| e.connection_id == Some(old_id) && e.action == "revoke"));
    assert!(tail.iter().any(|e| e.action == "purge"
        && e.reason
            .as_deref()
            .unwrap_or("")
            .contains("purged 1 revoked")));
    let verify = d.service.audit_verify(&me).await.unwrap();
    assert!(verify.ok, "{verify:?}");
    // Nothing further is old enough: a second purge deletes nothing.
    assert!(d.service.purge(&me, false).await.unwrap().purged.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_waits_for_a_refresh_of_the_same_connection_to_finish() {
    let w = World::start(strict_rotation()).await;
    w.seed(1, "sf").await;
    let d = w.in_process().await;
    w.sim
        .set_token_latency(std::time::Duration::from_millis(800));
    let svc = d.service.clone();
    let refresh = tokio::spawn(async move {
        svc.refresh(
            &admin(),
            &qbo_service::Selection::Named(vec!["sf-0".into()]),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = d.service.revoke(&admin(), &named(&["sf-0"])).await.unwrap();
    assert!(
        matches!(r[0].outcome, RevokeOutcome::Revoked { .. }),
        "{r:?}"
    );
    let refreshed = refresh.await.unwrap().unwrap();
    assert!(refreshed[0].outcome.is_success(), "{refreshed:?}");
    // The refresh finished first; the revoke then ended the grant with the rotated token,
    // and nothing the refresh stored survived it.
    assert_eq!(status_of(&d.service, "sf-0").await, Status::Revoked);
    assert_eq!(ciphertexts(&d.service, "sf-0").await, [None, None, None]);
    assert_eq!(w.sim.stats().revoked_grants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_admin_may_revoke_or_purge_and_a_refusal_is_on_record() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "ro").await;
    let svc = w.service().await;
    let support = Actor::current_process(Interface::Cli, Role::Support);
    let e = svc.revoke(&support, &named(&["ro-0"])).await.unwrap_err();
    assert!(e.to_string().contains("may not revoke"), "{e}");
    let e = svc.purge(&support, false).await.unwrap_err();
    assert!(e.to_string().contains("may not purge"), "{e}");
    assert_eq!(w.sim.stats().revocations, 0);
    assert_eq!(status_of(&svc, "ro-0").await, Status::Active);
    let denied = w
        .audit_events(10)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_whose_audit_record_cannot_be_written_destroys_nothing_and_can_be_run_again() {
    use crate::audit_fail_closed::{break_audit_writes, repair_audit_writes};
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "af").await;
    let svc = w.service().await;
    break_audit_writes(&w).await;
    let r = svc.revoke(&admin(), &named(&["af-0"])).await.unwrap();
    let RevokeOutcome::Error { detail } = &r[0].outcome else {
        panic!("{r:?}")
    };
    assert!(detail.contains("audit storage unavailable"), "{detail}");
    assert_eq!(status_of(&svc, "af-0").await, Status::Active);
    assert!(ciphertexts(&svc, "af-0").await[..2]
        .iter()
        .all(Option::is_some));
    // Once the log takes writes again, the same revoke completes (Intuit answers 200 for
    // a grant it already ended).
    repair_audit_writes(&w).await;
    let r = svc.revoke(&admin(), &named(&["af-0"])).await.unwrap();
    assert!(
        matches!(r[0].outcome, RevokeOutcome::Revoked { .. }),
        "{r:?}"
    );
    assert_eq!(ciphertexts(&svc, "af-0").await, [None, None, None]);
}
