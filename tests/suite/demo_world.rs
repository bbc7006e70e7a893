//! The world `qbo-console demo` shows: about 200 tenants in every state an operator meets,
//! made by the real flows, and an hour that passes on request with the scheduler at work.

use chrono::Duration;
use qbo_console::cli::demo_world::{self, DemoState, DemoWorld};
use qbo_core::domain::{Environment, LastRefresh, RealmId, SyncStatus};
use qbo_core::identity::{Actor, Interface, Role};
use qbo_engine::lifecycle::Status;
use qbo_service::ConnectionView;
use qbo_store::NewConnection;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn operator() -> Actor {
    Actor::current_process(Interface::Cli, Role::Admin)
}

async fn list(w: &DemoWorld) -> Vec<ConnectionView> {
    w.service
        .list(&operator(), &qbo_service::ListQuery::default())
        .await
        .expect("list")
}

fn count(list: &[ConnectionView], f: impl Fn(&ConnectionView) -> bool) -> usize {
    list.iter().filter(|c| f(c)).count()
}

/// Live, its access token still valid but expiring within a quarter of an hour.
fn expiring_soon(c: &ConnectionView) -> bool {
    c.status.is_live()
        && c.access_expires_in_secs
            .is_some_and(|s| (1..=15 * 60).contains(&s))
}

/// Live, its refreshes failing transiently: counted, and retried later.
fn failing(c: &ConnectionView) -> bool {
    c.status.is_live()
        && c.consecutive_failures >= 2
        && c.last_error_class.is_some()
        && c.last_error_class.as_deref() != Some("invalid_grant")
        && c.next_attempt_at.is_some()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_world_holds_about_200_tenants_in_every_state_without_a_token_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("world");
    let w = demo_world::build(&dir, 200)
        .await
        .expect("the demo world builds");
    let all = list(&w).await;
    assert_eq!(all.len(), 200);
    assert_eq!(w.tenants.len(), 200);
    let names: HashSet<&str> = all.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names.len(), 200, "tenant names repeat");
    assert!(all.iter().all(|c| c.company_name.is_some()));
    for env in Environment::ALL {
        assert!(count(&all, |c| c.environment == env) >= 10, "{env}");
    }

    let by_status = |s: Status| count(&all, |c| c.status == s);
    assert!(
        by_status(Status::Active) >= 100,
        "{}",
        by_status(Status::Active)
    );
    for s in [
        Status::Pending,
        Status::Revoked,
        Status::NeedsReconnect,
        Status::Expiring,
    ] {
        assert!(by_status(s) >= 3, "only {} {s}", by_status(s));
    }
    // Healthy: refreshed by the scheduler, nothing failing.
    assert!(
        count(&all, |c| c.status == Status::Active
            && c.last_refresh_outcome == Some(LastRefresh::Ok)
            && c.consecutive_failures == 0
            && c.access_expires_in_secs.is_some_and(|s| s > 15 * 60))
            >= 90
    );
    assert!(count(&all, expiring_soon) >= 3);
    assert!(count(&all, failing) >= 6);
    // The forecast story: 80 or more of the 100 days used, and refreshes failing.
    assert!(
        count(&all, |c| failing(c)
            && c.refresh_window_age_days.unwrap_or(0) >= 80)
            >= 3
    );
    // A transient outage, not a dead connection: the last good refresh an hour or two ago.
    assert!(
        count(&all, |c| failing(c)
            && c.refresh_window_age_days.unwrap_or(100) < 80
            && c.access_expires_in_secs
                .is_some_and(|s| (-3 * 3600..0).contains(&s)))
            >= 3
    );
    // Disconnected by the customer: the scheduler's refresh met invalid_grant.
    assert!(
        count(&all, |c| c.status == Status::NeedsReconnect
            && c.last_error_class.as_deref() == Some("invalid_grant"))
            >= 3
    );
    // An operator verified some of them as they arrived: CompanyInfo answered for the
    // healthy, and failed where Intuit fails.
    assert!(count(&all, |c| c.last_sync_status == Some(SyncStatus::Ok)) >= 50);
    assert!(
        count(&all, |c| failing(c)
            && c.last_sync_status == Some(SyncStatus::Failed))
            >= 3
    );
    // Within the 5-year warning window, learnt from Intuit's answer.
    let now = w.clock.now();
    assert!(all
        .iter()
        .filter(|c| c.status == Status::Expiring)
        .all(|c| c
            .hard_expires_at
            .is_some_and(|h| h > now && h - now <= Duration::days(30))));
    // What the world set out to make is what the database says.
    for t in &w.tenants {
        let c = all
            .iter()
            .find(|c| c.realm_id == t.realm_id)
            .expect("listed");
        let expected = match t.state {
            DemoState::Pending => Status::Pending,
            DemoState::Revoked => Status::Revoked,
            DemoState::DisconnectedByCustomer => Status::NeedsReconnect,
            DemoState::NearFiveYearLimit => Status::Expiring,
            _ => Status::Active,
        };
        assert_eq!(c.status, expected, "{} ({:?})", t.tenant, t.state);
    }

    // Pending and revoked connections hold no tokens and say why they are there.
    let store = &w.service.lifecycle_for_tests().store;
    for c in all
        .iter()
        .filter(|c| matches!(c.status, Status::Pending | Status::Revoked))
    {
        let sealed = store.load_sealed(c.id).await.unwrap().unwrap();
        assert!(sealed.access_token.is_none() && sealed.refresh_token.is_none());
        assert!(sealed.previous_refresh_token.is_none());
        assert!(c
            .status_reason
            .as_deref()
            .unwrap_or("")
            .starts_with("demo: "));
    }

    // No token the emulator issued is in the database files or the audit log.
    let tokens = w.sim.issued_tokens();
    assert!(tokens.len() > 300, "{} tokens", tokens.len());
    let finder = aho_corasick::AhoCorasick::new(&tokens).unwrap();
    let audit = w
        .service
        .audit_tail(&operator(), 100_000)
        .await
        .expect("audit tail");
    assert!(audit.len() > 400, "{} audit events", audit.len());
    let mut blobs = vec![(
        "the audit log".to_string(),
        serde_json::to_vec(&audit).unwrap(),
    )];
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    assert!(files.iter().any(|f| f.ends_with("demo.db")));
    for f in files {
        if let Ok(bytes) = std::fs::read(&f) {
            blobs.push((f.display().to_string(), bytes));
        }
    }
    for (name, bytes) in &blobs {
        assert!(
            finder.find(bytes).is_none(),
            "a token issued by the emulator appears in {name}"
        );
    }

    // The demo's own way into the store makes no live connection.
    let mut tx = store.begin().await.unwrap();
    let live = NewConnection {
        tenant: "not-through-the-flows".into(),
        realm_id: RealmId::parse("4620816365999999999").unwrap(),
        environment: Environment::Production,
        company_name: None,
        scopes: String::new(),
        status: Status::Active,
        access_expires_at: None,
        refresh_issued_at: None,
        refresh_expires_at: None,
    };
    assert!(tx
        .insert_demo_connection(&live, "demo: no", now)
        .await
        .is_err());
    tx.rollback().await.unwrap();

    w.shutdown(false).await;
    assert!(!dir.exists(), "the world's directory is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_passes_on_request_and_the_scheduler_refreshes_what_fell_due() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("world");
    let w = demo_world::build(&dir, 60)
        .await
        .expect("the demo world builds");
    let before = list(&w).await;
    let refreshes = w.sim.stats().refreshes;
    let live = count(&before, |c| {
        c.status.is_live() && c.consecutive_failures == 0
    });
    assert!(count(&before, expiring_soon) >= 1);

    // Time never runs backwards: the emulator would ignore it and the clocks part.
    let ahead = w.clock.now() - chrono::Utc::now();
    w.advance(Duration::hours(-1)).await.expect("advance");
    assert!(
        (w.clock.now() - chrono::Utc::now() - ahead)
            .num_seconds()
            .abs()
            < 5
    );
    assert!((w.sim.now() - w.clock.now()).num_seconds().abs() < 5);

    w.advance(Duration::hours(1)).await.expect("advance");
    assert!((w.sim.now() - w.clock.now()).num_seconds().abs() < 5);
    let after = list(&w).await;
    let find = |c: &ConnectionView| after.iter().find(|a| a.id == c.id).unwrap();

    // Every healthy connection fell due within the hour and was refreshed, once each.
    let done = w.sim.stats().refreshes - refreshes;
    assert!(
        done as usize >= live,
        "{done} refreshes for {live} live connections"
    );
    assert!(
        done as usize <= 2 * live,
        "{done} refreshes for {live} live connections"
    );
    for c in before
        .iter()
        .filter(|c| c.status.is_live() && c.consecutive_failures == 0)
    {
        let a = find(c);
        assert!(
            a.access_expires_in_secs.is_some_and(|s| s > 0),
            "{} expired: {:?}",
            a.tenant,
            a.access_expires_in_secs
        );
        assert!(
            a.last_refresh_at > c.last_refresh_at,
            "{} not refreshed",
            a.tenant
        );
    }
    // Time passed in steps with the scheduler at work, so the countdowns stay spread out:
    // what was refreshed early in the hour is minutes from expiry again.
    assert!(count(&after, expiring_soon) >= 1);
    // The failing ones' countdowns moved an hour, and the scheduler kept trying.
    for c in before.iter().filter(|c| failing(c)) {
        let a = find(c);
        let moved = c.access_expires_in_secs.unwrap() - a.access_expires_in_secs.unwrap();
        assert!((3600..3600 + 120).contains(&moved), "{}: {moved}", c.tenant);
        assert!(
            a.consecutive_failures > c.consecutive_failures,
            "{}",
            c.tenant
        );
    }
    // Nothing dead came back and nothing new died.
    for s in [Status::Pending, Status::Revoked, Status::NeedsReconnect] {
        assert_eq!(
            count(&before, |c| c.status == s),
            count(&after, |c| c.status == s),
            "{s}"
        );
    }
    w.shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_world_that_cannot_start_leaves_no_directory_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("world");
    // A directory where the database file belongs: the daemon cannot open its database.
    std::fs::create_dir_all(dir.join("demo.db")).unwrap();
    let err = demo_world::build(&dir, 10)
        .await
        .err()
        .expect("the world cannot start");
    assert!(format!("{err:#}").contains("demo.db"), "{err:#}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
