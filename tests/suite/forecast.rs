//! The forecast: which connections die within N days if nothing changes, when and why,
//! through the CLI (`forecast`, `--json`, `--days`) and pass by pass on the simulated
//! clock: refreshes failing with 503 for weeks, and a grant near Intuit's 5-year limit.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::catalogue::assert_catalogued;
use common::{World, SANDBOX_CLIENT};
use qbo_console::audit::Action;
use qbo_console::sim::{FaultConfig, FaultKind, GrantSeed, SimOptions};

fn me() -> String {
    qbo_console::identity::account_name(unsafe { libc::getuid() })
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
        text.contains("veteran") && text.contains("hard_limit") && text.contains("reconnect link"),
        "{text}"
    );

    let out = w.cli(&["forecast", "--days", "0"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));

    let events = w.audit_events(1).await;
    assert_catalogued(&events[0], Action::Forecast, &me());
    assert!(events[0]["reason"]
        .as_str()
        .unwrap()
        .contains("1 connections at risk"));
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
