//! The forecast: which connections die within N days if nothing changes, when and why,
//! through the CLI (`forecast`, `--json`, `--days`) and pass by pass on the simulated
//! clock: refreshes failing with 503 for weeks, and a grant near Intuit's 5-year limit.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::catalogue::assert_catalogued;
use common::{World, SANDBOX_CLIENT};
use qbo_engine::forecast::{Cause, ForecastFrame, ForecastItem};
use qbo_sim::{FaultConfig, FaultKind, GrantSeed, SimOptions};
use qbo_store::audit::Action;

fn me() -> String {
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

const HARD_LIMIT: i64 = 5 * 365 * 86_400;

/// Seeds a grant whose customer consented `ago` before the emulator's now, and imports it.
async fn seed_consented(w: &World, tenant: &str, ago: Duration) -> String {
    let g = w
        .sim
        .seed_grant_with(
            SANDBOX_CLIENT,
            &GrantSeed {
                consented_at: Some(w.sim.now() - ago),
                issued_at: Some(w.sim.now()),
                ..GrantSeed::default()
            },
        )
        .unwrap();
    let file = w.path(&format!("{tenant}.csv"));
    std::fs::write(
        &file,
        format!(
            "tenant,realm_id,environment,refresh_token\n{tenant},{},sandbox,{}\n",
            g.realm_id, g.refresh_token
        ),
    )
    .unwrap();
    w.ok(&["import", file.to_str().unwrap()]).await;
    std::fs::remove_file(&file).unwrap();
    g.realm_id
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() <= 5
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weeks_of_503s_and_the_5_year_limit_are_forecast_with_their_dates() {
    let w = World::start(SimOptions::default()).await;
    let failing = w.seed(1, "failing").await;
    w.seed(1, "healthy").await;
    let d = w.in_process().await;
    let refreshed_at = w.sim.now();
    d.tick().await;
    // Intuit answers this company's token requests 503 from now on.
    w.sim.set_realm_faults(
        &failing[0].realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    for _ in 0..14 {
        w.advance(&d, Duration::days(5));
        d.tick().await;
        d.health_pass().await;
    }
    // 70 days on: a customer who consented 5 years less 20 days ago.
    seed_consented(
        &w,
        "old",
        Duration::seconds(HARD_LIMIT) - Duration::days(20),
    )
    .await;
    let consent_ends = w.sim.now() + Duration::days(20);
    d.tick().await;
    d.health_pass().await;

    let f = d.forecast(40).await;
    let lines: Vec<(&str, &str)> = f
        .items
        .iter()
        .map(|i| (i.tenant.as_str(), i.risk.as_str()))
        .collect();
    // The failing connection cannot sync either: both its risks are listed, soonest first.
    assert_eq!(
        lines,
        vec![
            ("failing-0", "no_sync"),
            ("old", "hard_limit"),
            ("failing-0", "refresh_failing"),
        ],
        "{f:#?}"
    );
    let old = &f.items[1];
    assert!(
        close(old.date, consent_ends),
        "{} vs {consent_ends}",
        old.date
    );
    assert!(old.action.contains("reconnect link"), "{old:?}");
    let lapse = &f.items[2];
    let expected = refreshed_at + Duration::days(100);
    assert!(close(lapse.date, expected), "{} vs {expected}", lapse.date);
    assert!(
        lapse.reason.contains("refreshes failed in a row"),
        "{lapse:?}"
    );
    assert!(lapse.reason.contains("503"), "{lapse:?}");
    // A shorter horizon leaves the lapse out; the healthy connection is never listed.
    let near = d.forecast(25).await;
    assert_eq!(near.items.len(), 2, "{near:#?}");
    assert!(f.items.iter().all(|i| i.tenant != "healthy-0"));

    // Grouped by cause, gravest first: Intuit failing (the 503s), the 5-year limit, no
    // sync; each group one heading with its count and its one remedy.
    let groups = f.groups();
    let causes: Vec<(Cause, u64, Vec<&str>)> = groups
        .iter()
        .map(|g| {
            (
                g.cause,
                g.count,
                g.items.iter().map(|i| i.tenant.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        causes,
        vec![
            (Cause::IntuitFailing, 1, vec!["failing-0"]),
            (Cause::FiveYearLimit, 1, vec!["old"]),
            (Cause::NoSync, 1, vec!["failing-0"]),
        ]
    );
    // JSON: a cause on each item and a summary per cause.
    let json = serde_json::to_value(&f).unwrap();
    let item_causes: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cause"].as_str().unwrap())
        .collect();
    assert_eq!(
        item_causes,
        ["no_sync", "five_year_limit", "intuit_failing"]
    );
    let summary = json["causes"].as_array().unwrap();
    assert_eq!(summary.len(), 3, "{json:#}");
    for (s, cause) in
        summary
            .iter()
            .zip([Cause::IntuitFailing, Cause::FiveYearLimit, Cause::NoSync])
    {
        assert_eq!(s["cause"], cause.as_str());
        assert_eq!(s["count"], 1);
        assert_eq!(s["title"], cause.title());
        assert_eq!(s["remedy"], cause.remedy());
    }
    // Text: each heading, its remedy under it, then its connections' lines, one each.
    let text = qbo_console::cli::forecast::render(&f);
    let at = |needle: &str, from: usize| {
        from + text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} after {from} in\n{text}"))
    };
    let mut from = 0;
    for (cause, tenant) in [
        (Cause::IntuitFailing, "failing-0"),
        (Cause::FiveYearLimit, "old"),
        (Cause::NoSync, "failing-0"),
    ] {
        from = at(
            &format!("{} (1)\n  -> {}\n", cause.title(), cause.remedy()),
            from,
        );
        from = at(&format!("  {tenant} "), from);
    }
    assert!(
        text.starts_with("3 risks within 40 days if nothing changes, in 3 groups by cause:"),
        "{text}"
    );
    // One line per connection: no remedy repeated under each.
    assert_eq!(text.matches("-> ").count(), 3, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_forecast_verb_prints_each_risk_with_its_date_and_remedy() {
    let w = World::start(SimOptions::default()).await;
    w.seed(1, "fine").await;
    seed_consented(
        &w,
        "veteran",
        Duration::seconds(HARD_LIMIT) - Duration::days(10),
    )
    .await;
    let consent_ends = Utc::now() + Duration::days(10);
    w.ok(&["refresh", "--all"]).await;

    let json: serde_json::Value =
        serde_json::from_str(&w.ok(&["forecast", "--json"]).await).unwrap();
    assert_eq!(json["days"], 30);
    assert_eq!(json["count"], 1);
    assert_eq!(json["by_risk"]["hard_limit"], 1);
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{json:#}");
    assert_eq!(items[0]["tenant"], "veteran");
    assert_eq!(items[0]["risk"], "hard_limit");
    let date: DateTime<Utc> = items[0]["date"].as_str().unwrap().parse().unwrap();
    assert!(
        (date - consent_ends).num_minutes().abs() <= 1,
        "{date} vs {consent_ends}"
    );

    let text = w.ok(&["forecast", "--days", "5"]).await;
    assert!(
        text.contains("no connection is forecast to die within 5 days"),
        "{text}"
    );
    let text = w.ok(&["forecast"]).await;
    assert!(
        text.contains("veteran")
            && text.contains(Cause::FiveYearLimit.title())
            && text.contains("reconnect link"),
        "{text}"
    );

    let out = w.cli(&["forecast", "--days", "0"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));

    let events = w.audit_events(1).await;
    assert_catalogued(&events[0], Action::Forecast, &me());
    assert!(events[0]["reason"]
        .as_str()
        .unwrap()
        .contains("1 risk found, 1 shown"));
    w.assert_no_secrets().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_forecast_is_served_over_the_daemons_socket_to_a_viewer() {
    let w = World::start(SimOptions::default()).await;
    seed_consented(
        &w,
        "veteran",
        Duration::seconds(HARD_LIMIT) - Duration::days(3),
    )
    .await;
    w.ok(&["refresh", "--all"]).await;
    // A viewer may read it, like the list.
    w.append_config(&format!("[roles]\nviewer = [\"{}\"]\n", me()));
    let daemon = w.start_daemon(&[]).await;
    let out = w.via_daemon(&["forecast", "--json", "--days", "7"]).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["days"], 7);
    assert_eq!(json["items"][0]["tenant"], "veteran");
    assert_eq!(json["items"][0]["risk"], "hard_limit");
    daemon.stop(&w).await;
}

/// The `link_unused` and `link_expired` lines of a forecast, as (tenant, risk).
fn link_lines(f: &qbo_engine::forecast::Forecast) -> Vec<(&str, &str)> {
    f.items
        .iter()
        .filter(|i| i.risk.as_str().starts_with("link_"))
        .map(|i| (i.tenant.as_str(), i.risk.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_sent_for_a_dead_connection_and_left_unused_is_forecast_until_the_customer_uses_it()
{
    // No grace, so the daemon's own clock lists the link at once through the CLI.
    let p = crate::links::start("\n[forecast]\nlink_unused_days = 0").await;
    let (id, realm, _) = crate::links::dead_tenant(&p, "idle").await;
    let link = p.link(&["idle-0"]).await;
    let url = link["url"].as_str().unwrap();
    let expires: DateTime<Utc> = link["expires_at"].as_str().unwrap().parse().unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&p.w.ok(&["forecast", "--json"]).await).unwrap();
    let items = json["items"].as_array().unwrap();
    let unused: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["risk"] == "link_unused")
        .collect();
    assert_eq!(unused.len(), 1, "{json:#}");
    assert_eq!(unused[0]["connection_id"], id);
    let date: DateTime<Utc> = unused[0]["date"].as_str().unwrap().parse().unwrap();
    assert!(close(date, expires), "{date} vs {expires}");
    let sent = Utc::now().format("%Y-%m-%d").to_string();
    let action = unused[0]["action"].as_str().unwrap();
    assert!(
        action.contains(&format!(
            "the customer has not used the link sent on {sent}"
        )) && action.contains("`qbo-console link idle-0`"),
        "{action}"
    );
    // The text table carries it too.
    assert!(p
        .w
        .ok(&["forecast"])
        .await
        .contains(Cause::LinkUnused.title()));

    // The customer opens it: still unused until the consent completes.
    let (intuit, cookie) = p.open(url).await;
    let f = p.w.ok(&["forecast", "--json"]).await;
    assert!(f.contains("opened on"), "{f}");
    let callback = p.consent(&intuit, "approve", Some(&realm)).await;
    assert_eq!(p.get(&callback, Some(&cookie)).await.status, 200);
    let json: serde_json::Value =
        serde_json::from_str(&p.w.ok(&["forecast", "--json"]).await).unwrap();
    assert!(
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["connection_id"] != id),
        "reconnected, nothing left to say about it: {json:#}"
    );
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unused_link_is_alerted_once_then_once_more_when_it_expires_and_a_cancelled_one_is_not_listed(
) {
    let rx = common::receiver::Receiver::start().await;
    let w = World::start(SimOptions::default()).await;
    w.append_config(&format!(
        "[public]\nbase_url = \"https://connect.example.com\"\nlink_expires = \"7d\"\n\n\
         [alerts]\nretry_base = \"1m\"\ndigest_interval = \"30d\"\n{}",
        rx.webhook_config()
    ));
    let g = w.seed(1, "gone").await.remove(0);
    w.sim.disconnect(&g.realm_id);
    let d = w.in_process().await;
    d.tick().await;
    assert_eq!(d.alerts_pass().await.opened, 1, "needs_reconnect");
    let admin = qbo_core::identity::Actor::current_process(
        qbo_core::identity::Interface::Cli,
        qbo_core::identity::Role::Admin,
    );
    let req = qbo_service::LinkRequest {
        target: Some("gone-0".into()),
        ..Default::default()
    };
    let issued = d.service.link_issue(&admin, &req).await.unwrap();

    // Within [forecast] link_unused_days (2): the customer has had no time yet.
    d.clock.advance(Duration::days(1));
    assert_eq!(link_lines(&d.forecast(30).await), vec![]);
    assert_eq!(d.alerts_pass().await.opened, 0);

    d.clock.advance(Duration::days(2));
    let f = d.forecast(30).await;
    assert_eq!(link_lines(&f), vec![("gone-0", "link_unused")], "{f:#?}");
    let item = f
        .items
        .iter()
        .find(|i| i.risk.as_str() == "link_unused")
        .unwrap();
    assert!(close(item.date, issued.expires_at), "{item:?}");
    let r = d.alerts_pass().await;
    assert_eq!((r.opened, r.delivered), (1, 1), "{r:?}");
    // Once per change of state: later passes say nothing more.
    for _ in 0..3 {
        d.clock.advance(Duration::hours(6));
        assert_eq!(d.alerts_pass().await.opened, 0);
    }

    // The link expires unused (the sweep closes it): a new state, one more alert.
    d.clock.advance(Duration::days(4));
    d.service.expire_links().await.unwrap();
    let f = d.forecast(30).await;
    assert_eq!(link_lines(&f), vec![("gone-0", "link_expired")], "{f:#?}");
    let r = d.alerts_pass().await;
    assert_eq!((r.opened, r.closed), (1, 1), "{r:?}");
    assert_eq!(d.alerts_pass().await.opened, 0);
    let got = rx.accepted();
    let risks: Vec<&str> = got
        .iter()
        .map(|a| a["condition"]["risk"].as_str().unwrap())
        .collect();
    assert_eq!(risks, ["needs_reconnect", "link_unused", "link_expired"]);

    // A new link, left unused past the grace, then cancelled: the operator decided.
    let again = d.service.link_issue(&admin, &req).await.unwrap();
    d.clock.advance(Duration::days(3));
    assert_eq!(
        link_lines(&d.forecast(30).await),
        vec![("gone-0", "link_unused")]
    );
    let open = d.service.links_open(&admin).await.unwrap();
    assert_eq!(open.len(), 1);
    assert!(close(open[0].expires_at, again.expires_at));
    d.service
        .link_cancel(&admin, &open[0].id.to_string())
        .await
        .unwrap();
    assert_eq!(link_lines(&d.forecast(30).await), vec![]);
    // The connection itself is still dead and listed as such.
    assert!(d
        .forecast(30)
        .await
        .items
        .iter()
        .any(|i| i.risk.as_str() == "needs_reconnect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_grace_longer_than_a_link_can_live_is_refused_naming_the_key() {
    let w = World::start(SimOptions::default()).await;
    w.append_config("[forecast]\nlink_unused_days = 91\n");
    let out = w.cli(&["forecast"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("[forecast] link_unused_days (91)") && err.contains("0 to 90"),
        "{err}"
    );
    w.append_config("[forecast]\nlink_unused_days = 90\n");
    w.ok(&["forecast"]).await;
}

/// The forecast reads the connections a page at a time (its memory must not grow with the
/// table): a table longer than a page still has every connection weighed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_longer_than_one_page_is_forecast_whole_and_each_connection_once() {
    let w = World::start(SimOptions::default()).await;
    // One page is 2,000 connections.
    let n = 2_003;
    w.seed(n, "many").await;
    let d = w.in_process().await;
    // None has synced in the eight days since the import: each is listed once for that.
    w.advance(&d, Duration::days(8));
    let f = d.forecast(30).await;
    let mut ids: Vec<i64> = f
        .items
        .iter()
        .filter(|i| i.risk.as_str() == "no_sync")
        .map(|i| i.connection_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "every connection weighed once");
    assert_eq!(
        f.items
            .iter()
            .filter(|i| i.risk.as_str() == "no_sync")
            .count(),
        n,
        "none twice"
    );
    assert!(
        f.items.windows(2).all(|p| p[0].date <= p[1].date),
        "soonest first across pages"
    );
    assert_eq!(f.count, n as u64);

    // The soonest few, the same as the whole forecast's first few, with the count of all.
    let few = d.forecast_limited(30, 5).await;
    assert_eq!(few.items, f.items[..5]);
    assert_eq!((few.count, few.by_risk["no_sync"]), (n as u64, n as u64));

    // Streamed: every risk once, a page at a time in connection order, then the counts.
    let frames = d.forecast_streamed(30).await;
    assert!(matches!(frames[0], ForecastFrame::Head { days: 30, .. }));
    let pages: Vec<&Vec<ForecastItem>> = frames
        .iter()
        .filter_map(|f| match f {
            ForecastFrame::Items { items } => Some(items),
            _ => None,
        })
        .collect();
    assert!(pages.len() >= 2, "{} pages", pages.len());
    let streamed: Vec<i64> = pages
        .iter()
        .flat_map(|p| p.iter().map(|i| i.connection_id))
        .collect();
    assert!(
        streamed.windows(2).all(|p| p[0] <= p[1]),
        "connection order"
    );
    let mut sorted: Vec<ForecastItem> = pages.into_iter().flatten().cloned().collect();
    qbo_engine::forecast::sort(&mut sorted);
    assert_eq!(sorted, f.items, "the same risks as the whole forecast");
    match frames.last() {
        Some(ForecastFrame::End { count, by_risk, .. }) => {
            assert_eq!((*count, by_risk["no_sync"]), (n as u64, n as u64));
        }
        other => panic!("the stream ends with its counts, not {other:?}"),
    }
}
