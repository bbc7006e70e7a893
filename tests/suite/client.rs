//! The typed client in process (`LocalClient`): what the embedded CLI and the console stand
//! on. The socket client is covered by its unit tests and, end to end, by `daemon_process`.

use crate::common;

use common::World;
use futures_util::StreamExt;
use qbo_service::{
    Actor, AuditQuery, Client, ClientError, Interface, LastRefresh, ListQuery, LocalClient,
    RefreshOutcome, Role, Selection, SessionEvent, Status, WatchEvent, PROTOCOL_VERSION,
};
use qbo_sim::SimOptions;
use std::sync::Arc;
use std::time::Duration;

fn console_user(role: Role) -> Actor {
    Actor::current_process(Interface::Tui, role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_client_answers_typed_and_records_as_its_caller() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "local").await;
    let client: Arc<dyn Client> = Arc::new(LocalClient::new(
        w.service().await,
        console_user(Role::Support),
    ));
    // Shared with a task, as a console's background actions are.
    let c = client.clone();
    let rows = tokio::spawn(async move { c.list(ListQuery::default()).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows.len(), 2);
    let reports = client
        .refresh(Selection::Named(vec!["local-0".into()]))
        .await
        .unwrap();
    assert!(
        matches!(reports[0].outcome, RefreshOutcome::Refreshed { .. }),
        "{reports:?}"
    );
    let me = client.whoami().await.unwrap();
    assert_eq!((me.role, me.interface), (Role::Support, Interface::Tui));
    match client.refresh(Selection::All).await {
        Err(ClientError::Denied { role, what, .. }) => {
            assert_eq!((role, what.as_str()), (Role::Support, "refresh in bulk"))
        }
        other => panic!("support may not refresh in bulk: {other:?}"),
    }
    match client.show("nobody".into()).await {
        Err(ClientError::NotFound(m)) => assert!(m.contains("\"nobody\""), "{m}"),
        other => panic!("{other:?}"),
    }
    let events = w.audit_events(10).await;
    let refresh = events
        .iter()
        .find(|e| e["action"] == "refresh" && e["outcome"] == "ok")
        .expect("the refresh is on the record");
    assert_eq!(refresh["interface"], "tui");
    assert_eq!(refresh["role"], "support");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_watch_starts_with_a_hello_and_carries_each_changed_connection() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "feed").await;
    let client = LocalClient::new(w.service().await, console_user(Role::Support));
    let mut feed = client.watch().await.unwrap();
    match feed.next().await {
        Some(Ok(WatchEvent::Hello { protocol, role, .. })) => {
            assert_eq!((protocol, role), (PROTOCOL_VERSION, Role::Support))
        }
        other => panic!("the feed starts with a hello: {other:?}"),
    }
    client
        .refresh(Selection::Named(vec!["feed-0".into()]))
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), feed.next())
        .await
        .expect("the refresh reaches the feed")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Change {
            connection: Some(c),
            connection_id,
            ..
        } => {
            assert_eq!(connection_id, Some(c.id));
            assert_eq!((c.tenant.as_str(), c.status), ("feed-0", Status::Active));
            assert_eq!(c.last_refresh_outcome, Some(LastRefresh::Ok));
        }
        other => panic!("{other:?}"),
    }
    // The feed read the changed row without a `show` record.
    let events = w.audit_events(20).await;
    assert!(!events.iter().any(|e| e["action"] == "show"), "{events:#?}");
    assert_eq!(events.iter().filter(|e| e["action"] == "watch").count(), 1);
    let nobody = LocalClient::new(w.service().await, console_user(Role::Unmapped));
    assert!(matches!(
        nobody.watch().await,
        Err(ClientError::Denied {
            role: Role::Unmapped,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_comes_back_in_tenant_order_whatever_order_the_connections_were_made_in() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "zeta").await;
    w.seed(1, "alpha").await;
    w.seed(1, "mid").await;
    w.seed_production("beta").await;
    let client = LocalClient::new(w.service().await, console_user(Role::Viewer));
    let rows = client.list(ListQuery::default()).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names, ["alpha-0", "beta", "mid-0", "zeta-0", "zeta-1"]);
    let sandbox = client
        .list(ListQuery {
            environment: Some(qbo_service::Environment::Sandbox),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = sandbox.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names, ["alpha-0", "mid-0", "zeta-0", "zeta-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_pages_run_newest_first_narrowed_and_each_read_is_on_the_record() {
    let w = World::start(SimOptions::default()).await;
    w.seed(3, "page").await;
    let support = LocalClient::new(w.service().await, console_user(Role::Support));
    for t in ["page-0", "page-1", "page-1"] {
        support
            .refresh(Selection::Named(vec![t.into()]))
            .await
            .unwrap();
    }
    let auditor = LocalClient::new(w.service().await, console_user(Role::Auditor));
    let all = auditor
        .audit_page(AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(all.events.windows(2).all(|p| p[0].seq > p[1].seq));
    assert_eq!(all.next_before_seq, None, "one page holds them all");

    // Pages of two, each older than the last, until the oldest.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = auditor
            .audit_page(AuditQuery {
                before_seq: before,
                limit: 2,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.events.iter().map(|e| e.seq));
        match page.next_before_seq {
            Some(s) => before = Some(s),
            None => break,
        }
    }
    let expected: Vec<i64> = all.events.iter().map(|e| e.seq).collect();
    // The reads of the pages themselves are newer than `all`: only older events are paged.
    assert!(seen.ends_with(&expected), "{seen:?} vs {expected:?}");

    // Narrowed: a tenant, an action, an outcome, an actor; case and part of a word do.
    let narrowed = auditor
        .audit_page(AuditQuery {
            limit: 100,
            tenant: Some("PAGE-1".into()),
            action: Some("refr".into()),
            outcome: Some("ok".into()),
            actor: Some(qbo_core::identity::account_name(unsafe { libc::getuid() })),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(narrowed.events.len(), 2, "{:#?}", narrowed.events);
    assert!(narrowed
        .events
        .iter()
        .all(|e| e.tenant.as_deref() == Some("page-1") && e.action == "refresh"));
    // LIKE's wildcards are plain characters here.
    let none = auditor
        .audit_page(AuditQuery {
            limit: 100,
            tenant: Some("page_".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(none.events.is_empty(), "{:#?}", none.events);

    // Support may not read the log; the refusal names what was refused.
    match support.audit_page(AuditQuery::default()).await {
        Err(ClientError::Denied { role, what, .. }) => {
            assert_eq!((role, what.as_str()), (Role::Support, "audit page"))
        }
        other => panic!("support may not read the audit log: {other:?}"),
    }
    let reads = w
        .audit_events(100)
        .await
        .into_iter()
        .filter(|e| e["action"] == "audit page" && e["outcome"] == "ok")
        .collect::<Vec<_>>();
    assert!(reads.len() >= 4, "{reads:#?}");
    assert!(reads.iter().any(|e| e["reason"]
        .as_str()
        .is_some_and(|r| r.contains("tenant~\"PAGE-1\""))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_opening_and_closing_is_recorded_with_who_and_from_where() {
    let w = World::start(SimOptions::default()).await;
    let mut viewer = console_user(Role::Viewer);
    if let qbo_core::identity::ActorKind::Operator(op) = &mut viewer.kind {
        op.ssh_client = Some("203.0.113.7 50022 22".into());
    }
    let client = LocalClient::new(w.service().await, viewer);
    client.session(SessionEvent::Opened).await.unwrap();
    client.session(SessionEvent::Closed).await.unwrap();
    let events = w.audit_events(10).await;
    let opened = events
        .iter()
        .find(|e| e["action"] == "console opened")
        .expect("the opening is on the record");
    assert_eq!(opened["interface"], "tui");
    assert_eq!(opened["role"], "viewer");
    assert_eq!(opened["actor_ssh"], "203.0.113.7 50022 22");
    assert!(
        opened["reason"]
            .as_str()
            .is_some_and(|r| r.contains("over SSH from 203.0.113.7")),
        "{opened}"
    );
    assert!(events.iter().any(|e| e["action"] == "console closed"));
    // Someone no role is mapped to opens nothing.
    let nobody = LocalClient::new(w.service().await, console_user(Role::Unmapped));
    assert!(matches!(
        nobody.session(SessionEvent::Opened).await,
        Err(ClientError::Denied { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_acted_last_is_listed_and_a_read_does_not_count_as_acting() {
    let w = World::start(SimOptions::default()).await;
    w.seed(2, "actor").await;
    let me = console_user(Role::Admin);
    let client = LocalClient::new(w.service().await, me.clone());
    let rows = client.list(ListQuery::default()).await.unwrap();
    let imported = rows.iter().find(|c| c.tenant == "actor-0").unwrap();
    assert_eq!(imported.last_actor.as_deref(), Some(me.name().as_str()));
    assert_eq!(imported.last_action.as_deref(), Some("import"));
    client
        .refresh(Selection::Named(vec!["actor-0".into()]))
        .await
        .unwrap();
    // Looking is not acting: the detail (a `show` on the record) leaves the refresh last.
    let detail = client.show("actor-0".into()).await.unwrap();
    assert_eq!(detail.connection.last_action.as_deref(), Some("refresh"));
    let rows = client.list(ListQuery::default()).await.unwrap();
    let refreshed = rows.iter().find(|c| c.tenant == "actor-0").unwrap();
    assert_eq!(refreshed.last_action.as_deref(), Some("refresh"));
    assert_eq!(refreshed.last_actor.as_deref(), Some(me.name().as_str()));
    let other = rows.iter().find(|c| c.tenant == "actor-1").unwrap();
    assert_eq!(other.last_action.as_deref(), Some("import"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_says_what_the_scheduler_does_at_the_start_and_on_every_change() {
    let w = World::start(SimOptions::default()).await;
    let svc = w.service().await;
    let engine = svc.lifecycle_for_tests().clone();
    let client = LocalClient::new(svc, console_user(Role::Support));
    let mut feed = client.watch().await.unwrap();
    // In process, nobody has started a scheduler.
    match feed.next().await {
        Some(Ok(WatchEvent::Hello { scheduler, .. })) => assert!(!scheduler.running),
        other => panic!("the feed starts with a hello: {other:?}"),
    }
    engine.update_scheduler_state(|s| s.running = true);
    let ev = tokio::time::timeout(Duration::from_secs(5), feed.next())
        .await
        .expect("the change reaches the feed")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Scheduler { state } => assert!(state.running && state.paused.is_empty()),
        other => panic!("{other:?}"),
    }
}
