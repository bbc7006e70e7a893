//! The dangerous interleavings of two refreshers, forced one at a time rather than hoped
//! for under load (see the argument in `crates/engine/src/lifecycle/refresh.rs`). Two daemons are two
//! in-process services on one database, each with its own lease owner and its own clock,
//! against one `qbo-sim`; each test runs on SQLite and, in CI, on PostgreSQL.
//!
//! - A lease whose holder's clock says it is over while the holder still waits on Intuit
//!   (`qbo-sim`'s latency): the other daemon, its clock moved an hour on, must not take
//!   it, because the database's clock says the request may still be in flight.
//! - A holder with Intuit's answer in hand whose commit is held back (the engine's commit
//!   gate) past its lease: the other daemon takes over, and the late commit writes nothing.
//! - A holder killed between Intuit's answer and its commit (its task aborted at the
//!   gate): under Intuit's 24-hour grace the next refresh recovers the connection; under
//!   the strict reading the connection's reason, its support bundle and one alert name the
//!   lost answer, and nothing blames the customer.
//! - A holder with Intuit's answer in hand whose audit insert fails (the log broken while
//!   it waited on Intuit): the new tokens are stored anyway, the event is held out of the
//!   chain, and it joins the chain, in order, with the first write after the log is fixed.
//! - A refresh waiting for the lease of a holder that Intuit refused: it takes the verdict
//!   and sends nothing, so the holder's reason stands.

use crate::common;

use chrono::Duration as ChronoDuration;
use common::receiver::Receiver;
use common::{InProcess, World};
use qbo_core::identity::{Actor, DaemonTask};
use qbo_engine::lifecycle::RefreshOutcome;
use qbo_sim::{PreviousToken, Rotation, SimOptions};
use std::time::{Duration, Instant};

fn world_opts(previous: PreviousToken, latency: Duration) -> SimOptions {
    SimOptions {
        rotation: Rotation::EveryRefresh,
        previous_token: previous,
        token_latency: latency,
        ..SimOptions::default()
    }
}

fn scheduler() -> Actor {
    Actor::daemon(DaemonTask::Scheduler)
}

async fn connection_id(d: &InProcess, tenant: &str) -> i64 {
    d.service
        .lifecycle_for_tests()
        .store
        .find_connections(tenant)
        .await
        .unwrap()
        .first()
        .expect("seeded connection")
        .id
}

/// Polls `ready` every 20 ms for at most 20 s.
/// The reason of a refresh that ended in the reconnect verdict; fails naming `who` and the
/// outcome otherwise.
fn refusal<'a>(who: &str, o: &'a RefreshOutcome) -> &'a str {
    let RefreshOutcome::NeedsReconnect { reason, .. } = o else {
        panic!("{who}: {o:?}")
    };
    reason
}

/// Intuit was asked once, and refused: whatever else refreshed sent nothing.
fn assert_asked_intuit_once(w: &World, what: &str) {
    let stats = w.sim.stats();
    assert_eq!(stats.token_requests, 1, "{what}: {stats:?}");
    assert_eq!(stats.invalid_grants, 1, "{stats:?}");
}

/// B, which waited for A, reports the verdict A recorded and sent nothing; A's reason.
fn b_took_as_verdict<'a>(w: &World, a: &'a RefreshOutcome, b: &RefreshOutcome) -> &'a str {
    let a_reason = refusal("A", a);
    assert_eq!(
        refusal("B", b),
        a_reason,
        "B reports the verdict A recorded"
    );
    assert_asked_intuit_once(w, "B sent nothing");
    a_reason
}

async fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Moves every clock an hour on: both daemons' and Intuit's. By any daemon's own clock,
/// every lease taken before is long over.
fn an_hour_later(w: &World, a: &InProcess, b: &InProcess) {
    w.advance(a, ChronoDuration::hours(1));
    b.clock.advance(ChronoDuration::hours(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_over_by_the_holders_clock_is_not_taken_while_its_request_is_in_flight() {
    let w = World::start(world_opts(
        PreviousToken::InvalidAtOnce,
        Duration::from_millis(1500),
    ))
    .await;
    w.seed(1, "lz").await;
    let (a, b) = (w.in_process().await, w.in_process().await);
    let id = connection_id(&a, "lz-0").await;
    w.sim.reset_stats();

    let engine_a = a.service.lifecycle_for_tests().clone();
    let holder = tokio::spawn(async move { engine_a.refresh(id, &scheduler()).await });
    wait_until("A's request to reach qbo-sim", || {
        w.sim.stats().token_requests == 1
    })
    .await;
    an_hour_later(&w, &a, &b);
    let taker = b
        .service
        .lifecycle_for_tests()
        .refresh(id, &scheduler())
        .await
        .unwrap();
    let held = holder.await.unwrap().unwrap();

    let stats = w.sim.stats();
    assert_eq!(
        stats.concurrent_uses, 0,
        "two requests with one token: {stats:?}"
    );
    assert_eq!(stats.superseded_uses, 0, "{stats:?}");
    assert_eq!(stats.invalid_grants, 0, "{stats:?}");
    assert!(
        matches!(held.outcome, RefreshOutcome::Refreshed { .. }),
        "{:?}",
        held.outcome
    );
    assert!(taker.outcome.is_success(), "{:?}", taker.outcome);
    let c = &w.connections_json().await[0];
    assert_eq!(c["status"], "active", "{c}");
}

/// A: Intuit's answer in hand, its commit held at the gate. Returns A's refresh task.
async fn hold_a_at_the_gate(
    w: &World,
    a: &InProcess,
    id: i64,
) -> tokio::task::JoinHandle<anyhow::Result<qbo_engine::lifecycle::RefreshResult>> {
    let engine_a = a.service.lifecycle_for_tests().clone();
    let gate = engine_a.hold_commits();
    let task = tokio::spawn(async move { engine_a.refresh(id, &scheduler()).await });
    gate.reached().await;
    assert_eq!(w.sim.stats().rotations, 1, "Intuit rotated for A");
    task
}

async fn a_commit_delayed_past_its_lease(previous: PreviousToken) {
    let w = World::start(world_opts(previous, Duration::ZERO)).await;
    w.seed(1, "ld").await;
    let (a, b) = (w.in_process().await, w.in_process().await);
    let id = connection_id(&a, "ld-0").await;
    w.sim.reset_stats();

    let late = hold_a_at_the_gate(&w, &a, id).await;
    an_hour_later(&w, &a, &b);
    // B waits out A's hold by the database's clock, then takes the lease and spends the
    // token A's lost answer replaced: the one thing no software can avoid.
    let taker = b
        .service
        .lifecycle_for_tests()
        .refresh(id, &scheduler())
        .await
        .unwrap();
    a.service.lifecycle_for_tests().release_commits();
    let refused = late.await.unwrap();
    let err = refused.expect_err("A's late commit must not be stored");
    assert!(
        format!("{err:#}").contains("after its lease was taken over"),
        "{err:#}"
    );

    let stats = w.sim.stats();
    assert_eq!(stats.concurrent_uses, 0, "{stats:?}");
    assert_eq!(stats.stale_uses, 0, "{stats:?}");
    let c = &w.connections_json().await[0];
    let oks = w
        .audit_events(100)
        .await
        .into_iter()
        .filter(|e| e["action"] == "refresh" && e["outcome"] == "ok")
        .count();
    match previous {
        PreviousToken::Grace24h => {
            assert!(taker.outcome.is_success(), "{:?}", taker.outcome);
            assert_eq!(stats.invalid_grants, 0, "{stats:?}");
            assert_eq!(c["status"], "active", "{c}");
            assert_eq!(oks, 1, "only B's refresh is on record");
        }
        PreviousToken::InvalidAtOnce => {
            assert!(
                matches!(taker.outcome, RefreshOutcome::NeedsReconnect { .. }),
                "{:?}",
                taker.outcome
            );
            assert_eq!(stats.invalid_grants, 1, "{stats:?}");
            assert_eq!(c["status"], "needs_reconnect", "A did not overwrite B: {c}");
            let reason = c["status_reason"].as_str().unwrap();
            assert!(
                reason.contains("was lost when the daemon stopped"),
                "{reason}"
            );
            assert_eq!(oks, 0, "A's answer was never stored");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_delayed_past_its_lease_writes_nothing_under_grace() {
    a_commit_delayed_past_its_lease(PreviousToken::Grace24h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_delayed_past_its_lease_writes_nothing_under_strict_rotation() {
    a_commit_delayed_past_its_lease(PreviousToken::InvalidAtOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_after_intuits_answer_is_recovered_by_the_next_refresh_under_grace() {
    let w = World::start(world_opts(PreviousToken::Grace24h, Duration::ZERO)).await;
    w.seed(1, "lk").await;
    let (a, b) = (w.in_process().await, w.in_process().await);
    let id = connection_id(&a, "lk-0").await;
    w.sim.reset_stats();

    hold_a_at_the_gate(&w, &a, id).await.abort();
    an_hour_later(&w, &a, &b);
    let next = b
        .service
        .lifecycle_for_tests()
        .refresh(id, &scheduler())
        .await
        .unwrap();
    assert!(
        matches!(next.outcome, RefreshOutcome::Refreshed { .. }),
        "{:?}",
        next.outcome
    );
    let stats = w.sim.stats();
    assert_eq!(
        (stats.grace_refreshes, stats.invalid_grants),
        (1, 0),
        "{stats:?}"
    );
    let c = &w.connections_json().await[0];
    assert_eq!(c["status"], "active", "{c}");
    let recovered = w
        .audit_events(20)
        .await
        .into_iter()
        .find(|e| e["action"] == "refresh" && e["outcome"] == "ok")
        .expect("B's refresh is on record");
    assert!(
        recovered["reason"]
            .as_str()
            .unwrap()
            .contains("may have been sent without its answer being recorded"),
        "{recovered}"
    );
    // And it stays alive: the token B stored is the grant's newest.
    b.clock.advance(ChronoDuration::hours(2));
    let after = b
        .service
        .lifecycle_for_tests()
        .refresh(id, &scheduler())
        .await
        .unwrap();
    assert!(
        matches!(after.outcome, RefreshOutcome::Refreshed { .. }),
        "{:?}",
        after.outcome
    );
    assert_eq!(w.sim.stats().superseded_uses, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_after_intuits_answer_is_named_as_a_lost_answer_under_strict_rotation() {
    let rx = Receiver::start().await;
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    w.append_config(&format!(
        "[health]\ninterval = \"1d\"\n\n[alerts]\nretry_base = \"1m\"\n{}",
        rx.webhook_config()
    ));
    w.seed(2, "ls").await;
    let (a, b) = (w.in_process().await, w.in_process().await);
    let id = connection_id(&a, "ls-0").await;
    w.sim.reset_stats();

    hold_a_at_the_gate(&w, &a, id).await.abort();
    an_hour_later(&w, &a, &b);
    let next = b
        .service
        .lifecycle_for_tests()
        .refresh(id, &scheduler())
        .await
        .unwrap();
    let reason = refusal("the next refresh", &next.outcome);
    assert!(
        reason.contains("was lost when the daemon stopped"),
        "{reason}"
    );
    assert!(reason.contains("did not disconnect"), "{reason}");
    let stats = w.sim.stats();
    assert_eq!(
        (stats.invalid_grants, stats.stale_uses),
        (1, 0),
        "{stats:?}"
    );

    // The connection's reason, the audit record and the support bundle say what happened.
    let c = w
        .connections_json()
        .await
        .into_iter()
        .find(|c| c["tenant"] == "ls-0")
        .unwrap();
    assert!(
        c["status_reason"]
            .as_str()
            .unwrap()
            .contains("the answer to the refresh at"),
        "{c}"
    );
    let failed = w
        .audit_events(50)
        .await
        .into_iter()
        .find(|e| e["action"] == "refresh" && e["outcome"] == "failed")
        .expect("the refused refresh is on record");
    assert!(
        failed["reason"].as_str().unwrap().contains("was lost"),
        "{failed}"
    );
    let bundle = w.ok(&["support-bundle", "ls-0", "--json"]).await;
    assert!(
        bundle.contains("was lost when the daemon stopped"),
        "{bundle}"
    );

    // One alert names it, and only one.
    let r = b.alerts_pass().await;
    assert_eq!((r.opened, r.delivered), (1, 1), "{r:?}");
    let got = rx.accepted();
    assert_eq!(got.len(), 1, "{got:#?}");
    let text = got[0]["text"].as_str().unwrap();
    assert!(text.contains("ls-0") && text.contains("was lost"), "{text}");
    for _ in 0..3 {
        b.clock.advance(ChronoDuration::hours(1));
        let r = b.alerts_pass().await;
        assert_eq!((r.opened, r.delivered), (0, 0), "{r:?}");
    }
    // The other connection was never touched by the loss.
    b.clock.advance(ChronoDuration::hours(1));
    let other = connection_id(&b, "ls-1").await;
    let ok = b
        .service
        .lifecycle_for_tests()
        .refresh(other, &scheduler())
        .await
        .unwrap();
    assert!(ok.outcome.is_success(), "{:?}", ok.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_lease_another_task_took_sends_nothing() {
    // The same daemon: its scheduler claims a connection, then, before the claim's turn
    // comes, the daemon's own token API or `refresh --all` takes the lease (same owner),
    // refreshes and commits. The claim must not then send the token it read.
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    w.seed(1, "lc").await;
    let d = w.in_process().await;
    let id = connection_id(&d, "lc-0").await;
    let engine = d.service.lifecycle_for_tests().clone();
    let now = engine.clock.now();
    let claims = engine
        .store
        .claim_due(
            engine.lease_owner(),
            now + ChronoDuration::seconds(5),
            now,
            10,
            &[qbo_core::domain::Environment::Sandbox],
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    w.sim.reset_stats();
    let direct = engine.refresh(id, &scheduler()).await.unwrap();
    assert!(
        matches!(direct.outcome, RefreshOutcome::Refreshed { .. }),
        "{:?}",
        direct.outcome
    );
    let claimed = claims.into_iter().next().unwrap();
    let late = engine.refresh_claimed(claimed, &scheduler()).await.unwrap();
    assert!(
        matches!(late.outcome, RefreshOutcome::Busy { .. }),
        "{:?}",
        late.outcome
    );
    let stats = w.sim.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.superseded_uses,
            stats.invalid_grants
        ),
        (1, 0, 0),
        "{stats:?}"
    );
    assert_eq!(w.connections_json().await[0]["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_broken_while_intuit_answers_keeps_the_tokens_and_holds_the_event() {
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    w.seed(2, "lh").await;
    let d = w.in_process().await;
    let id = connection_id(&d, "lh-0").await;
    w.sim.reset_stats();

    let engine = d.service.lifecycle_for_tests().clone();
    let gate = engine.hold_commits();
    let task = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.refresh(id, &scheduler()).await })
    };
    gate.reached().await;
    crate::audit_fail_closed::break_audit_writes(&w).await;
    engine.release_commits();
    let kept = task.await.unwrap().unwrap();
    assert!(
        matches!(kept.outcome, RefreshOutcome::Refreshed { .. }),
        "Intuit's answer is kept: {:?}",
        kept.outcome
    );
    assert_eq!(engine.store.held_audit_events().await.unwrap(), 1);
    // While the log is broken, nothing more is sent.
    let other = connection_id(&d, "lh-1").await;
    assert!(engine.refresh(other, &scheduler()).await.is_err());
    assert_eq!(w.sim.stats().token_requests, 1, "{:?}", w.sim.stats());

    crate::audit_fail_closed::repair_audit_writes(&w).await;
    // The stored token is the one Intuit issued: under strict rotation it refreshes.
    let again = engine.refresh(id, &scheduler()).await.unwrap();
    assert!(
        matches!(again.outcome, RefreshOutcome::Refreshed { .. }),
        "{:?}",
        again.outcome
    );
    assert_eq!(w.sim.stats().invalid_grants, 0);
    assert_eq!(engine.store.held_audit_events().await.unwrap(), 0);
    let refreshes: Vec<_> = w
        .audit_events(20)
        .await
        .into_iter()
        .filter(|e| e["action"] == "refresh" && e["tenant"] == "lh-0")
        .collect();
    assert_eq!(
        refreshes.len(),
        2,
        "the held event joined the chain: {refreshes:#?}"
    );
    let v = w.ok(&["audit", "verify"]).await;
    assert!(v.contains("intact"), "{v}");
}

/// A refresh that had to wait for another holder's lease, whose holder got Intuit's
/// `invalid_grant`: the waiter takes that verdict and sends nothing. Before, it sent the
/// refused token again once it held the lease, and its own `invalid_grant` overwrote the
/// first holder's reason (which may name an answer lost in a kill) with "the customer
/// must reconnect": found by the PostgreSQL scale-out run, an operator's `refresh --all`
/// waiting on the scheduler.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_that_waited_on_a_refused_holder_takes_its_verdict_and_sends_nothing() {
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    let realm = w.seed(1, "lv").await.remove(0).realm_id;
    let (a, b) = (w.in_process().await, w.in_process().await);
    let id = connection_id(&a, "lv-0").await;
    w.sim.disconnect(&realm);
    w.sim.reset_stats();

    let engine_a = a.service.lifecycle_for_tests().clone();
    let gate = engine_a.hold_commits();
    let first = tokio::spawn(async move { engine_a.refresh(id, &scheduler()).await });
    gate.reached().await;
    assert_eq!(w.sim.stats().invalid_grants, 1, "A has Intuit's verdict");
    let engine_b = b.service.lifecycle_for_tests().clone();
    let waiter = tokio::spawn(async move { engine_b.refresh(id, &scheduler()).await });
    // B finds A's lease held and waits (it polls every 20 to 120 ms).
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.service.lifecycle_for_tests().release_commits();
    let first = first.await.unwrap().unwrap();
    let waited = waiter.await.unwrap().unwrap();

    let a_reason = b_took_as_verdict(&w, &first.outcome, &waited.outcome);
    let refused: Vec<_> = w
        .audit_events(100)
        .await
        .into_iter()
        .filter(|e| e["action"] == "refresh" && e["error_class"] == "invalid_grant")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let c = &w.connections_json().await[0];
    assert_eq!(c["status_reason"].as_str().unwrap(), a_reason);
}

/// The same verdict reached by another task of this process: B waits in the single flight,
/// not on the lease (the scale-out run's case: the scheduler refreshing, an operator's
/// `refresh --all` through the same daemon's socket). Once A has recorded the refusal, B
/// takes that verdict and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_that_waited_in_this_process_for_a_refused_one_takes_its_verdict() {
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    let realm = w.seed(1, "lf").await.remove(0).realm_id;
    let d = w.in_process().await;
    let id = connection_id(&d, "lf-0").await;
    w.sim.disconnect(&realm);
    w.sim.reset_stats();

    let engine = d.service.lifecycle_for_tests().clone();
    let gate = engine.hold_commits();
    let a = engine.clone();
    let first = tokio::spawn(async move { a.refresh(id, &scheduler()).await });
    gate.reached().await;
    assert_eq!(w.sim.stats().invalid_grants, 1, "A has Intuit's verdict");
    let b = engine.clone();
    let waiter = tokio::spawn(async move { b.refresh(id, &scheduler()).await });
    // B waits in the flight A holds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.release_commits();
    let first = first.await.unwrap().unwrap();
    let waited = waiter.await.unwrap().unwrap();

    b_took_as_verdict(&w, &first.outcome, &waited.outcome);
}

/// The scale-out run at four test threads: an operator's `refresh --all` listed the
/// connection while it was live and reached it 170 ms after the scheduler's refusal had
/// been recorded, waiting on nobody. A refused token is never sent again, whoever asks and
/// whenever: the refresh reports the recorded verdict, Intuit hears nothing, and the reason
/// the first refusal recorded stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_asked_after_a_refusal_was_recorded_sends_nothing_and_keeps_its_reason() {
    let w = World::start(world_opts(PreviousToken::InvalidAtOnce, Duration::ZERO)).await;
    let realm = w.seed(1, "la").await.remove(0).realm_id;
    let d = w.in_process().await;
    let id = connection_id(&d, "la-0").await;
    w.sim.disconnect(&realm);
    w.sim.reset_stats();

    let engine = d.service.lifecycle_for_tests().clone();
    let first = engine.refresh(id, &scheduler()).await.unwrap();
    let recorded = refusal("the first refresh", &first.outcome);
    let before = w.connections_json().await[0]["status_reason"].clone();
    assert_eq!(before.as_str(), Some(recorded));

    for _ in 0..3 {
        let again = engine.refresh(id, &scheduler()).await.unwrap();
        assert_eq!(
            refusal("a later refresh", &again.outcome),
            recorded,
            "the recorded verdict is reported"
        );
    }
    assert_asked_intuit_once(&w, "the refused token went to Intuit once");
    assert_eq!(w.connections_json().await[0]["status_reason"], before);
}
