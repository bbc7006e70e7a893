//! Incidents (issue 25): Intuit's token endpoint failing for most connections of one
//! environment is one incident, one "opened" and one "resolved" alert, a scheduler that
//! only probes while it lasts and then catches up most urgent first within its rate; a
//! customer's own disconnect in the same minutes stays that customer's.

use crate::common::catalogue::assert_catalogued;
use crate::common::receiver::Receiver;
use crate::common::{Tuning, World};
use chrono::Duration;
use qbo_sim::{FaultConfig, FaultKind, SimOptions, Surface};
use qbo_store::audit::Action;
use serde_json::Value;

/// Connections of the outage, and the rate the catch-up may not exceed.
const FLEET: usize = 12;
const RATE: usize = 10;

/// The detector as most tests here set it: five companies make an outage, a probe a minute.
const INCIDENTS: &str = "[scheduler.incidents]\nmin_connections = 5\nwindow = \"10m\"\n\
                         probe_every = \"1m\"\nrecovery_probes = 2\n";

/// A world whose `[scheduler]` has `scheduler`'s keys, then [`INCIDENTS`].
async fn with_incidents(scheduler: &str) -> World {
    World::start_tuned(
        SimOptions::default(),
        Tuning {
            extra: format!("{scheduler}{INCIDENTS}"),
            ..Tuning::default()
        },
    )
    .await
}

async fn world(rx: &Receiver) -> World {
    let w = with_incidents(&format!(
        "max_concurrency = 1\nrate_per_second = {RATE}\n\n"
    ))
    .await;
    w.append_config(&format!(
        "[health]\ninterval = \"1d\"\n\n[alerts]\nretry_base = \"1m\"\nwarn_days = 120\n{}",
        rx.webhook_config()
    ));
    w
}

fn me() -> String {
    // SAFETY: getuid cannot fail and has no preconditions.
    qbo_core::identity::account_name(unsafe { libc::getuid() })
}

/// `incidents --json`: the newest incidents, newest first.
async fn incidents_json(w: &World) -> Vec<Value> {
    serde_json::from_str(&w.ok(&["incidents", "--json"]).await).unwrap()
}

/// `incidents show ID --json`.
async fn incident_json(w: &World, id: i64) -> Value {
    serde_json::from_str(
        &w.ok(&["incidents", "show", &id.to_string(), "--json"])
            .await,
    )
    .unwrap()
}

fn events(all: &[Value], action: Action) -> Vec<&Value> {
    all.iter()
        .filter(|e| e["action"] == action.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intuit_outage_is_one_incident_probed_then_caught_up_most_urgent_first() {
    let rx = Receiver::start().await;
    let w = world(&rx).await;
    // Seeded first, so refreshed first: the most urgent when the outage begins, and its
    // own refusal is among the refreshes the incident is judged on.
    let customer = w.seed(1, "cust").await.remove(0);
    let grants = w.seed(FLEET, "inc").await;
    let d = w.in_process().await;
    d.tick().await;
    assert_eq!(d.alerts_pass().await.opened, 0, "all well to begin with");

    // Intuit's token endpoint answers 503 to everyone but one customer, who has
    // disconnected the app: theirs is an ordinary invalid_grant.
    w.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable));
    w.sim
        .set_realm_faults(&customer.realm_id, FaultConfig::none());
    w.sim.disconnect(&customer.realm_id);
    w.advance(&d, Duration::minutes(55));
    w.sim.reset_stats();
    d.tick().await;
    let tried = w.sim.stats().token_requests;
    assert!(
        (6..=7).contains(&tried),
        "the customer's refusal, then five failures break the circuit: {tried} calls"
    );

    let listed = incidents_json(&w).await;
    assert_eq!(listed.len(), 1, "exactly one incident: {listed:#?}");
    let inc = &listed[0];
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["environment"], "sandbox");
    assert_eq!(inc["endpoint"], "token");
    assert_eq!(inc["class"], "server_error", "{inc}");
    assert!(inc["ended_at"].is_null());
    let affected = inc["connections"].as_u64().unwrap();
    assert!((5..=6).contains(&affected), "{inc}");
    let tids = inc["sample_tids"].as_array().unwrap();
    assert!(!tids.is_empty() && tids.len() <= 5, "{inc}");
    let started =
        chrono::DateTime::parse_from_rfc3339(inc["started_at"].as_str().unwrap()).unwrap();
    let detail = incident_json(&w, id).await;
    let members: Vec<&str> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(members.len() as u64, affected);
    assert!(
        !members.contains(&"cust-0"),
        "a customer's disconnect is not folded into the incident: {members:?}"
    );
    // Its connections' detail and support bundles say their failures are the incident's.
    let member = members[0];
    let show: Value = serde_json::from_str(&w.ok(&["show", member, "--json"]).await).unwrap();
    assert_eq!(show["incident"]["id"], id, "{show}");
    assert!(w
        .ok(&["show", member])
        .await
        .contains(&format!("Intuit's, {id}")));
    let bundle: Value =
        serde_json::from_str(&w.ok(&["support-bundle", member, "--json"]).await).unwrap();
    assert_eq!(bundle["incidents"][0]["incident"]["id"], id, "{bundle}");
    assert_eq!(bundle["incidents"][0]["this_connection"], true);
    let md = w.ok(&["support-bundle", member]).await;
    assert!(md.contains("## Intuit incidents in the window (1)"), "{md}");
    let cust: Value = serde_json::from_str(&w.ok(&["show", "cust-0", "--json"]).await).unwrap();
    assert!(cust.get("incident").is_none(), "{cust}");
    let human = w.ok(&["incidents"]).await;
    assert!(
        human.contains("OPEN") && human.contains("sandbox"),
        "{human}"
    );
    let shown = w.audit_events(20).await;
    let read = events(&shown, Action::IncidentsShown);
    assert_catalogued(read[0], Action::IncidentsShown, &me());

    // One alert for the incident, one for the customer; none per failing connection.
    d.alerts_pass().await;
    let got = rx.accepted();
    let risks: Vec<(&str, &str)> = got
        .iter()
        .map(|a| {
            (
                a["event"].as_str().unwrap(),
                a["condition"]["risk"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(risks.len(), 2, "{got:#?}");
    assert!(risks.contains(&("opened", "intuit_incident")), "{risks:?}");
    assert!(risks.contains(&("opened", "needs_reconnect")), "{risks:?}");

    // While it lasts: one probe a minute, counted at qbo-sim, and each failing.
    w.sim.reset_stats();
    for _ in 0..10 {
        w.advance(&d, Duration::seconds(30));
        d.tick().await;
    }
    let during = w.sim.stats().token_requests;
    assert!(
        (4..=6).contains(&during),
        "five minutes of an incident: one probe a minute, not {during} calls"
    );
    assert!(rx.accepted().len() == 2, "no more alerts while it lasts");
    let f = d.forecast(120).await;
    let tied: Vec<_> = f.items.iter().filter(|i| i.incident == Some(id)).collect();
    assert!(
        !tied.is_empty(),
        "the forecast ties the failures to the incident"
    );
    assert!(
        tied[0].reason.contains(&format!("incident {id}")),
        "{}",
        tied[0].reason
    );

    // Intuit recovers, but for one company whose own answers stay broken.
    let stubborn = &grants[FLEET - 1];
    w.sim.set_faults(FaultConfig::none());
    w.sim.set_realm_faults(
        &stubborn.realm_id,
        FaultConfig::always(FaultKind::ServiceUnavailable),
    );
    let before: Vec<Value> = w.connections_json().await;
    let urgency = |tenant: &str| {
        before
            .iter()
            .find(|c| c["tenant"] == tenant)
            .and_then(|c| c["refresh_expires_at"].as_str())
            .map(str::to_string)
            .unwrap()
    };
    w.sim.reset_stats();
    let mut ended = false;
    for _ in 0..6 {
        w.advance(&d, Duration::minutes(1));
        d.tick().await;
        let now = incidents_json(&w).await;
        if !now[0]["ended_at"].is_null() {
            ended = true;
            break;
        }
    }
    assert!(ended, "two good probes in a row end it");
    let s = w.sim.stats();
    assert!(
        s.refreshes >= (FLEET - 1) as u64,
        "every connection but the stubborn one caught up: {s:?}"
    );
    let rows = w.connections_json().await;
    for r in rows
        .iter()
        .filter(|r| r["tenant"].as_str().unwrap().starts_with("inc-"))
    {
        let ok = r["consecutive_failures"] == 0;
        assert_eq!(ok, r["tenant"] != stubborn_tenant(&grants, stubborn), "{r}");
    }

    // The catch-up went most urgent first and within the rate.
    let log = w.audit_events(500).await;
    let closed = events(&log, Action::IncidentClosed);
    assert_eq!(closed.len(), 1);
    assert_catalogued(closed[0], Action::IncidentClosed, "scheduler");
    let opened = events(&log, Action::IncidentOpened);
    assert_eq!(opened.len(), 1, "opened once");
    assert_catalogued(opened[0], Action::IncidentOpened, "scheduler");
    let reason = opened[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("incident {id} opened")),
        "{reason}"
    );
    let opened_at =
        chrono::DateTime::parse_from_rfc3339(opened[0]["at"].as_str().unwrap()).unwrap();
    assert!(
        opened_at - started <= Duration::minutes(10),
        "opened within the configured window of its first failure"
    );
    let closed_seq = closed[0]["seq"].as_i64().unwrap();
    let mut caught: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["action"] == "refresh"
                && e["outcome"] == "ok"
                && e["seq"].as_i64().unwrap() > closed_seq
        })
        .collect();
    caught.sort_by_key(|e| e["seq"].as_i64().unwrap());
    let order: Vec<String> = caught
        .iter()
        .map(|e| urgency(e["tenant"].as_str().unwrap()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    if order != sorted {
        for e in log
            .iter()
            .filter(|e| e["seq"].as_i64().unwrap() > closed_seq - 8)
        {
            eprintln!(
                "{} {} {} {} {}",
                e["seq"], e["action"], e["tenant"], e["outcome"], e["reason"]
            );
        }
        for c in &before {
            eprintln!(
                "{} {} {} {}",
                c["tenant"],
                c["next_attempt_at"],
                c["refresh_expires_at"],
                c["consecutive_failures"]
            );
        }
    }
    assert_eq!(
        order, sorted,
        "most urgent (soonest refresh-token lapse) first"
    );
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = caught
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap())
        .collect();
    for (i, t) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|u| **u - *t < Duration::seconds(1))
            .count();
        assert!(
            within <= RATE + 2,
            "{within} refreshes within a second of {t}"
        );
    }

    // One "resolved" for the incident; then the stubborn company, still failing after the
    // end, is alerted on its own, and no other connection is.
    for _ in 0..3 {
        w.advance(&d, Duration::minutes(2));
        d.tick().await;
    }
    d.alerts_pass().await;
    let got = rx.accepted();
    let resolved: Vec<&Value> = got.iter().filter(|a| a["event"] == "resolved").collect();
    assert_eq!(resolved.len(), 1, "{got:#?}");
    assert_eq!(resolved[0]["incident"]["id"], id);
    let own: Vec<&str> = got
        .iter()
        .filter(|a| a["condition"]["risk"] == "refresh_failing")
        .map(|a| a["condition"]["connection"]["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(own, vec![stubborn_tenant(&grants, stubborn)], "{got:#?}");
    assert_eq!(
        got.len(),
        4,
        "opened, customer, resolved, the stubborn one: {got:#?}"
    );
}

/// The tenant name `seed` gave a grant.
fn stubborn_tenant<'a>(grants: &[qbo_sim::SeededGrant], g: &qbo_sim::SeededGrant) -> &'a str {
    let i = grants
        .iter()
        .position(|x| x.realm_id == g.realm_id)
        .unwrap();
    Box::leak(format!("inc-{i}").into_boxed_str())
}

/// Intuit's accounting API failing for most companies of one environment while its OAuth
/// service answers: one incident about the accounting endpoint, seen by the health checks,
/// which stop but for a probe a minute; refreshes go on meanwhile; one "opened" and one
/// "resolved" alert; when it ends every company it held back is checked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accounting_api_outage_holds_the_health_checks_not_the_refreshes() {
    let rx = Receiver::start().await;
    let w = with_incidents("").await;
    // One check at a time, so the count of calls before the circuit breaks is exact.
    w.append_config(&format!(
        "[health]\ninterval = \"1d\"\nmax_concurrency = 1\n\n[alerts]\nretry_base = \"1m\"\nwarn_days = 120\n{}",
        rx.webhook_config()
    ));
    let grants = w.seed(FLEET, "acct").await;
    let d = w.in_process().await;
    // A day on, every company's check is due; the scheduler refreshes first, so each
    // check is one companyinfo call.
    w.advance(&d, Duration::days(1));
    d.tick().await;
    assert_eq!(d.alerts_pass().await.opened, 0, "all well to begin with");

    w.sim.set_faults(
        FaultConfig::always(FaultKind::ServiceUnavailable).only_on(&[Surface::CompanyInfo]),
    );
    w.sim.reset_stats();
    let pass = d.health_pass().await;
    let faulted = w.sim.stats().faults_injected;
    assert_eq!(
        faulted, 5,
        "five companies failing the same way break the circuit; the other checks wait: {pass:?}"
    );
    assert_eq!((pass.failed, pass.skipped), (5, FLEET - 5), "{pass:?}");

    let listed = incidents_json(&w).await;
    assert_eq!(listed.len(), 1, "exactly one incident: {listed:#?}");
    let inc = &listed[0];
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(inc["endpoint"], "accounting", "{inc}");
    assert_eq!(inc["class"], "server_error", "{inc}");
    assert_eq!(inc["connections"], 5, "{inc}");
    let detail = incident_json(&w, id).await;
    assert!(
        detail["remedy"].as_str().unwrap().contains("health checks"),
        "{detail}"
    );
    let member = detail["members"][0]["tenant"].as_str().unwrap().to_string();
    let show: Value = serde_json::from_str(&w.ok(&["show", &member, "--json"]).await).unwrap();
    assert_eq!(
        show["incident"]["id"], id,
        "its failed sync is the incident's: {show}"
    );

    // Refreshes are the token endpoint's, which answers: they go on.
    w.sim.reset_stats();
    w.advance(&d, Duration::minutes(55));
    let ticked = d.tick().await;
    assert!(
        ticked.refreshed >= FLEET,
        "the scheduler is not held back by the accounting API: {ticked:?}"
    );

    // While it lasts: one probe a minute, each failing, and nothing else reaches companyinfo.
    w.sim.reset_stats();
    for _ in 0..10 {
        w.advance(&d, Duration::seconds(30));
        d.health_pass().await;
    }
    // Every companyinfo call is faulted while it lasts: the faults are the calls.
    let s = w.sim.stats();
    assert!(
        (4..=6).contains(&s.faults_injected),
        "five minutes of an incident: one probe a minute, not {} calls",
        s.faults_injected
    );
    d.alerts_pass().await;
    let got = rx.accepted();
    assert_eq!(
        got.len(),
        1,
        "one alert for the incident, none per company: {got:#?}"
    );
    assert_eq!(got[0]["condition"]["risk"], "intuit_incident", "{got:#?}");

    // Intuit recovers: two good probes end it and every company is checked again.
    w.sim.set_faults(FaultConfig::none());
    let mut ended = false;
    for _ in 0..4 {
        w.advance(&d, Duration::minutes(1));
        d.health_pass().await;
        let now = incidents_json(&w).await;
        if !now[0]["ended_at"].is_null() {
            ended = true;
            break;
        }
    }
    assert!(ended, "two good probes in a row end it");
    for r in w.connections_json().await {
        assert_eq!(
            r["last_sync_status"], "ok",
            "checked again after the end: {r}"
        );
    }
    let show: Value = serde_json::from_str(&w.ok(&["show", &member, "--json"]).await).unwrap();
    assert!(show.get("incident").is_none(), "synced since: {show}");
    let log = w.audit_events(300).await;
    let opened = events(&log, Action::IncidentOpened);
    assert_eq!(opened.len(), 1);
    assert_catalogued(opened[0], Action::IncidentOpened, "health check");
    let reason = opened[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("sandbox accounting endpoint") && reason.contains("health checks"),
        "{reason}"
    );
    let closed = events(&log, Action::IncidentClosed);
    assert_eq!(closed.len(), 1);
    assert_catalogued(closed[0], Action::IncidentClosed, "health check");
    assert!(
        closed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("for a health check"),
        "{}",
        closed[0]["reason"]
    );
    d.alerts_pass().await;
    let got = rx.accepted();
    let resolved: Vec<&Value> = got.iter().filter(|a| a["event"] == "resolved").collect();
    assert_eq!(resolved.len(), 1, "{got:#?}");
    assert_eq!(got.len(), 2, "opened and resolved, nothing else: {got:#?}");
    drop(grants);
}

/// Two daemons on one database each refresh a part of the companies: neither sees enough
/// failures alone to call it an outage; together they do, and both are in the one incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemons_sharing_a_database_see_one_outage_between_them() {
    let w = World::start_tuned(
        SimOptions::default(),
        Tuning {
            extra: "max_concurrency = 1\n\n[scheduler.incidents]\nmin_connections = 6\n\
                    window = \"2h\"\nprobe_every = \"1m\"\nrecovery_probes = 2\n"
                .into(),
            ..Tuning::default()
        },
    )
    .await;
    let a = w.in_process().await;
    let b = w.in_process().await;
    let both = |by: Duration| {
        w.advance(&a, by);
        b.clock.advance(by);
    };
    w.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable));

    // Daemon a meets four companies failing: fewer than six, no incident of its own.
    w.seed(4, "first").await;
    both(Duration::minutes(55));
    let ra = a.tick().await;
    assert_eq!(ra.failed, 4, "{ra:?}");
    assert!(
        incidents_json(&w).await.is_empty(),
        "four are not an outage"
    );

    // Daemon b meets four others within the window: enough between them.
    w.seed(4, "second").await;
    both(Duration::minutes(55));
    let rb = b.tick().await;
    assert!(rb.failed >= 4, "{rb:?}");
    let open = incidents_json(&w).await;
    assert_eq!(open.len(), 1, "one outage seen by two daemons: {open:#?}");
    let id = open[0]["id"].as_i64().unwrap();
    // It opened at b's second failure (two of its own and a's four): only b's are members
    // yet.
    let own = open[0]["connections"].as_u64().unwrap();
    assert!((2..=4).contains(&own), "b's own failures first: {open:#?}");
    let log = w.audit_events(100).await;
    let opened = events(&log, Action::IncidentOpened);
    assert_eq!(opened.len(), 1);
    assert!(
        opened[0]["reason"]
            .as_str()
            .unwrap()
            .contains("; 6 connections, 6 of the 6 refreshes tried failing"),
        "{}",
        opened[0]["reason"]
    );

    // Daemon a's next pass reads the open incident: its four join, and it holds back.
    w.sim.reset_stats();
    a.tick().await;
    let now = incidents_json(&w).await;
    assert_eq!(now.len(), 1, "{now:#?}");
    assert_eq!(now[0]["id"], id);
    // a's four, and perhaps its probe's company (one of those b had given back unsent).
    let shown = incident_json(&w, id).await;
    let members: Vec<&str> = shown["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant"].as_str().unwrap())
        .collect();
    for t in ["first-0", "first-1", "first-2", "first-3"] {
        assert!(members.contains(&t), "{t} joined: {members:?}");
    }
    let total = now[0]["connections"].as_u64().unwrap();
    assert!((own + 4..=own + 5).contains(&total), "{own} then {now:#?}");
    assert!(
        w.sim.stats().token_requests <= 1,
        "a probe at most: {:?}",
        w.sim.stats()
    );
}

/// Intuit's revoke endpoint failing while its token endpoint answers: an admin's bulk revoke
/// leaves the tenants `revoking`; their retries are judged, one incident opens about the
/// revoke endpoint, the retries wait but for a probe, and when Intuit recovers every tenant
/// is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_endpoint_outage_holds_the_retries_then_revokes_every_tenant() {
    let w = with_incidents("").await;
    w.seed(FLEET, "gone").await;
    let d = w.in_process().await;
    w.sim
        .set_faults(FaultConfig::always(FaultKind::ServiceUnavailable).only_on(&[Surface::Revoke]));
    // Unconfirmed revokes exit 1: the tenants wait on the daemon's retries.
    let out = w
        .cli(&["revoke", "--where", "gone", "--yes", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.matches("\"revoking\"").count(), FLEET, "{out}");

    // The retries come due; five failing alike open the incident and the rest wait.
    w.sim.reset_stats();
    w.advance(&d, Duration::minutes(10));
    d.tick().await;
    // Five failing alike, and perhaps the incident's first probe in the same pass.
    let tried = w.sim.stats().faults_injected;
    assert!(
        (5..=6).contains(&tried),
        "five retries failing alike, then the probe alone: {tried}"
    );
    let listed = incidents_json(&w).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let id = listed[0]["id"].as_i64().unwrap();
    assert_eq!(listed[0]["endpoint"], "revoke", "{listed:#?}");
    assert_eq!(
        listed[0]["connections"].as_u64(),
        Some(tried),
        "the five and the failed probe: {listed:#?}"
    );
    let show: Value = serde_json::from_str(&w.ok(&["show", "gone-0", "--json"]).await).unwrap();
    assert_eq!(show["incident"]["id"], id, "{show}");

    // While it lasts: one retry a minute.
    w.sim.reset_stats();
    for _ in 0..10 {
        w.advance(&d, Duration::seconds(30));
        d.tick().await;
    }
    let during = w.sim.stats().faults_injected;
    assert!(
        (4..=6).contains(&during),
        "{during} revoke calls in five minutes"
    );

    // Intuit recovers: two good probes end it and every tenant's revoke goes through.
    w.sim.set_faults(FaultConfig::none());
    for _ in 0..4 {
        w.advance(&d, Duration::minutes(1));
        d.tick().await;
    }
    let now = incidents_json(&w).await;
    assert!(!now[0]["ended_at"].is_null(), "{now:#?}");
    let rows = w.connections_json().await;
    assert!(
        rows.iter().all(|r| r["status"] == "revoked"),
        "{:?}",
        rows.iter().map(|r| &r["status"]).collect::<Vec<_>>()
    );
    let log = w.audit_events(300).await;
    let opened = events(&log, Action::IncidentOpened);
    assert_eq!(opened.len(), 1);
    assert_catalogued(opened[0], Action::IncidentOpened, "revoke retry");
    assert!(
        opened[0]["reason"]
            .as_str()
            .unwrap()
            .contains("sandbox revoke endpoint"),
        "{}",
        opened[0]["reason"]
    );
    let closed = events(&log, Action::IncidentClosed);
    assert_eq!(closed.len(), 1);
    assert_catalogued(closed[0], Action::IncidentClosed, "revoke retry");
}
