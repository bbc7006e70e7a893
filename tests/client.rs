//! The typed client in process (`LocalClient`): what the embedded CLI and the console stand
//! on. The socket client is covered by its unit tests and, end to end, by `daemon_process`.

mod common;

use common::World;
use futures_util::StreamExt;
use qbo_console::service::{
    Actor, Client, ClientError, ConnectionFilter, Interface, LastRefresh, LocalClient,
    RefreshOutcome, Role, Selection, Status, WatchEvent, PROTOCOL_VERSION,
};
use qbo_console::sim::SimOptions;
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
    let rows = tokio::spawn(async move { c.list(ConnectionFilter::default()).await })
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
    let rows = client.list(ConnectionFilter::default()).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names, ["alpha-0", "beta", "mid-0", "zeta-0", "zeta-1"]);
    let sandbox = client
        .list(ConnectionFilter {
            status: None,
            environment: Some(qbo_console::service::Environment::Sandbox),
        })
        .await
        .unwrap();
    let names: Vec<&str> = sandbox.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names, ["alpha-0", "mid-0", "zeta-0", "zeta-1"]);
}
