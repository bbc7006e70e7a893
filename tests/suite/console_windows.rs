//! The console's windows against a real service on the suite's backend (SQLite, or
//! PostgreSQL in its pass): a window shows exactly what a full list, filtered and sorted
//! the same way, shows there, while live changes move rows into and out of the filter; the
//! counts match the full list; and a bulk action over a filter acts on exactly what the
//! filter selects when it arrives, or on nothing if that is not the count confirmed.

use crate::common::World;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_service::filter::Filter;
use qbo_service::sort::{Sort, SortKey};
use qbo_service::{
    Condition, ConnectionView, ListQuery, RevokeRequest, Selection, Service, Status, WindowQuery,
};
use qbo_sim::SimOptions;

fn admin() -> Actor {
    Actor::current_process(Interface::Tui, Role::Admin)
}

/// Revokes `tenants` through `svc`, as an admin.
async fn revoke(svc: &Service, tenants: &[&str]) {
    svc.revoke(
        &admin(),
        &RevokeRequest {
            targets: tenants.iter().map(|t| t.to_string()).collect(),
            ..RevokeRequest::default()
        },
    )
    .await
    .expect("revoke");
}

/// How many connections a window on `filter` says it selects.
async fn matching(svc: &Service, filter: &str) -> u64 {
    svc.window(
        &admin(),
        &WindowQuery {
            filter: filter.into(),
            rows: 10,
            ..WindowQuery::default()
        },
    )
    .await
    .expect("a window")
    .matching
}

/// What a full list shows for a window's filter and order, from `offset`, `rows` of it.
fn expected(all: &[ConnectionView], q: &WindowQuery) -> (Vec<i64>, u64) {
    let now = chrono::Utc::now();
    let f = Filter::parse(&q.filter).expect("the test's filters parse");
    let mut hits: Vec<&ConnectionView> = all.iter().filter(|c| f.matches(c, now)).collect();
    hits.sort_by(|a, b| q.sort.compare(*a, *b));
    let ids = hits
        .iter()
        .skip(q.offset as usize)
        .take(q.rows as usize)
        .map(|c| c.id)
        .collect();
    (ids, hits.len() as u64)
}

/// Every window of a few filters, orders and offsets against a full list read now.
async fn windows_match_the_list(svc: &Service, when: &str) {
    let all = svc
        .list(&admin(), &ListQuery::default())
        .await
        .expect("a full list");
    let filters = [
        "",
        "status:needs_reconnect",
        "status:active,expiring",
        "win-1",
        "status:revoked,pending win",
    ];
    let sorts = [
        Sort::default(),
        Sort {
            key: SortKey::Tenant,
            descending: true,
        },
        Sort {
            key: SortKey::Left,
            descending: false,
        },
    ];
    for filter in filters {
        for sort in sorts {
            for offset in [0, 2] {
                let q = WindowQuery {
                    filter: filter.into(),
                    sort,
                    offset,
                    rows: 4,
                    selected: None,
                };
                let page = svc.window(&admin(), &q).await.expect("a window");
                let (ids, matching) = expected(&all, &q);
                let got: Vec<i64> = page.rows.iter().map(|c| c.id).collect();
                assert_eq!(
                    (got, page.matching),
                    (ids, matching),
                    "{when}: window {filter:?} {sort:?} from {offset}"
                );
                assert_eq!(page.total, all.len() as u64, "{when}");
                // Counted as the full list reads: `failing` apart from `active`.
                for s in Condition::ALL {
                    let n = all.iter().filter(|c| c.condition() == s).count() as u64;
                    let counted = page.counts.iter().find(|(x, _)| *x == s).map(|(_, n)| *n);
                    assert_eq!(counted, Some(n), "{when}: the count of {s}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_stays_right_while_live_changes_move_rows_into_and_out_of_the_filter() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(8, "win").await;
    let svc = w.service().await;
    windows_match_the_list(&svc, "after the import").await;

    // Three customers disconnect: a refresh moves them into status:needs_reconnect.
    for g in &grants[..3] {
        w.sim.disconnect(&g.realm_id);
    }
    svc.refresh(&admin(), &Selection::All)
        .await
        .expect("refresh");
    windows_match_the_list(&svc, "after three refusals").await;
    assert_eq!(
        matching(&svc, "status:needs_reconnect").await,
        3,
        "the refused ones entered the filter"
    );

    // One is revoked: it leaves status:active and enters status:revoked.
    revoke(&svc, &["win-5"]).await;
    windows_match_the_list(&svc, "after a revoke").await;

    // A new company arrives through an import made by this service.
    let g = w
        .sim
        .seed_grant(crate::common::SANDBOX_CLIENT, None, Some("Newcomer Ltd"))
        .expect("seed grant");
    let csv = format!(
        "tenant,realm_id,environment,refresh_token,company_name\nwin-new,{},sandbox,{},{}\n",
        g.realm_id, g.refresh_token, g.company_name
    );
    let imported = svc
        .import(&admin(), &csv, "new.csv", false)
        .await
        .expect("import");
    assert_eq!(imported.created, 1);
    windows_match_the_list(&svc, "after an import").await;

    // A service opened afresh reads the same table into the same windows.
    drop(svc);
    let fresh = w.service().await;
    windows_match_the_list(&fresh, "in a service opened afresh").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_action_over_a_filter_acts_on_exactly_the_confirmed_count_or_on_nothing() {
    let w = World::start(SimOptions::default()).await;
    let grants = w.seed(6, "bulk").await;
    let svc = w.service().await;
    for g in &grants[..2] {
        w.sim.disconnect(&g.realm_id);
    }
    svc.refresh(&admin(), &Selection::All)
        .await
        .expect("refresh");
    let before = w.sim.stats().refreshes;

    // The operator saw 4 live connections and confirmed 4: exactly those are refreshed.
    let live = Selection::Matching {
        filter: "status:active".into(),
        expect: Some(4),
    };
    let reports = svc.refresh(&admin(), &live).await.expect("a bulk refresh");
    let mut names: Vec<String> = reports.iter().map(|r| r.target.tenant.clone()).collect();
    names.sort();
    assert_eq!(names, ["bulk-2", "bulk-3", "bulk-4", "bulk-5"]);
    assert_eq!(
        w.sim.stats().refreshes - before,
        4,
        "one refresh per selected connection"
    );

    // Meanwhile one more is revoked: the filter now selects 3, not the 4 confirmed.
    revoke(&svc, &["bulk-2"]).await;
    let before = w.sim.stats().refreshes;
    let refused = svc
        .refresh(&admin(), &live)
        .await
        .expect_err("a count that changed is refused");
    let text = refused.to_string();
    assert!(
        text.contains("now selects 3") && text.contains("not the 4 confirmed"),
        "{text}"
    );
    assert_eq!(
        w.sim.stats().refreshes,
        before,
        "nothing was sent to Intuit"
    );

    // Verify and revoke take the same guard.
    let verify = svc
        .verify(
            &admin(),
            &Selection::Matching {
                filter: "status:active".into(),
                expect: Some(3),
            },
        )
        .await
        .expect("a bulk verify of the confirmed 3");
    assert_eq!(verify.len(), 3);
    let revoke = svc
        .revoke(
            &admin(),
            &RevokeRequest {
                filter: Some("status:needs_reconnect".into()),
                expect: Some(5),
                ..RevokeRequest::default()
            },
        )
        .await
        .expect_err("revoke of a count that differs is refused");
    assert!(
        revoke.to_string().contains("not the 5 confirmed"),
        "{revoke}"
    );
    let dead = svc
        .list(
            &admin(),
            &ListQuery {
                status: Some(Status::NeedsReconnect),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 2, "nothing was revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_roster_read_again_after_its_feed_fell_behind_shows_what_the_list_shows() {
    let w = World::start(SimOptions::default()).await;
    w.seed(8, "lag").await;
    let svc = w.service().await;
    windows_match_the_list(&svc, "after the import").await;

    // Another service on the same database revokes two: this one's feed never hears of
    // it, as if the changes had been lost in a feed that fell behind.
    let other = w.service().await;
    revoke(&other, &["lag-2", "lag-6"]).await;
    assert_eq!(
        matching(&svc, "status:revoked").await,
        0,
        "unheard of, so not yet in the window"
    );

    // Callers that go away while the roster is read again (a scrape that timed out): the
    // reading goes on without them, and whoever asks next sees every row.
    svc.roster_fell_behind_for_tests();
    let q = WindowQuery {
        rows: 4,
        ..WindowQuery::default()
    };
    for micros in [0, 1, 10, 50, 100, 200, 500, 1_000, 2_000, 5_000] {
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(micros),
            svc.window(&admin(), &q),
        )
        .await;
    }
    windows_match_the_list(&svc, "after the roster was read again").await;
    // Once read again, the roster hears its own feed as before.
    revoke(&svc, &["lag-4"]).await;
    windows_match_the_list(&svc, "after a change told by the feed").await;
}
