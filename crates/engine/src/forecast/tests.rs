use super::*;
use chrono::{Duration, TimeZone};
use qbo_core::domain::{Environment, RealmId, Status};
use qbo_core::domain::{LastRefresh, SyncStatus};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

fn record(id: i64, tenant: &str) -> ConnectionRecord {
    ConnectionRecord {
        id,
        tenant: tenant.into(),
        realm_id: RealmId::parse(&format!("{}", 9_000_000 + id)).unwrap(),
        environment: Environment::Sandbox,
        company_name: None,
        scopes: String::new(),
        status: Status::Active,
        status_reason: None,
        access_expires_at: Some(now() + Duration::minutes(50)),
        refresh_issued_at: Some(now() - Duration::hours(1)),
        refresh_expires_at: Some(now() + Duration::days(99)),
        hard_expires_at: Some(now() + Duration::days(1500)),
        last_refresh_at: Some(now() - Duration::hours(1)),
        last_refresh_outcome: Some(LastRefresh::Ok),
        last_error_class: None,
        last_error_detail: None,
        last_intuit_tid: None,
        last_sync_at: Some(now() - Duration::hours(2)),
        last_sync_status: Some(SyncStatus::Ok),
        last_sync_detail: None,
        consecutive_failures: 0,
        next_attempt_at: None,
        lease_owner: None,
        lease_until: None,
        version: 1,
        created_at: now() - Duration::days(400),
        updated_at: now() - Duration::hours(1),
        previous_refresh_replaced_at: None,
        last_actor: None,
        last_action: None,
        last_data_change: None,
        last_data_change_at: None,
    }
}

fn facts(id: i64) -> SyncFacts {
    SyncFacts {
        id,
        last_sync_ok_at: Some(now() - Duration::hours(2)),
        disconnected_at: None,
        ..SyncFacts::default()
    }
}

fn ctx(paused: &[PausedEnvironment]) -> Context<'_> {
    Context {
        now: now(),
        paused,
        no_sync_days: 7,
        link_unused_days: 2,
    }
}

#[test]
fn a_healthy_connection_is_not_in_the_forecast() {
    let items = forecast(&[record(1, "fine")], &[facts(1)], &ctx(&[]), 365);
    assert_eq!(items, vec![]);
}

#[test]
fn each_risk_is_dated_explained_and_sorted_by_date() {
    let mut dead = record(1, "dead");
    dead.status = Status::NeedsReconnect;
    dead.status_reason = Some("invalid_grant: token revoked".into());
    dead.last_refresh_at = Some(now() - Duration::days(2));
    let mut failing = record(2, "failing");
    failing.last_refresh_outcome = Some(LastRefresh::Failed);
    failing.consecutive_failures = 40;
    failing.last_error_class = Some("transient".into());
    failing.last_error_detail = Some("HTTP 503".into());
    failing.refresh_expires_at = Some(now() + Duration::days(20));
    let mut old = record(3, "old");
    old.hard_expires_at = Some(now() + Duration::days(10));
    let mut quiet = record(4, "quiet");
    quiet.last_sync_status = Some(SyncStatus::Failed);
    quiet.last_sync_detail = Some("HTTP 500".into());
    let mut quiet_facts = facts(4);
    quiet_facts.last_sync_ok_at = Some(now() - Duration::days(9));
    let mut gone = record(5, "gone");
    gone.last_sync_status = Some(SyncStatus::Failed);
    let mut gone_facts = facts(5);
    gone_facts.disconnected_at = Some(now() - Duration::hours(1));
    let records = [failing, old, dead, quiet, gone];
    let all_facts = [facts(1), facts(2), facts(3), quiet_facts, gone_facts];
    let items = forecast(&records, &all_facts, &ctx(&[]), 30);
    let got: Vec<(&str, Risk, DateTime<Utc>)> = items
        .iter()
        .map(|i| (i.tenant.as_str(), i.risk, i.date))
        .collect();
    assert_eq!(
        got,
        vec![
            ("dead", Risk::NeedsReconnect, now() - Duration::days(2)),
            ("quiet", Risk::NoSync, now() - Duration::days(2)),
            (
                "gone",
                Risk::CustomerDisconnected,
                now() - Duration::hours(1)
            ),
            ("old", Risk::HardLimit, now() + Duration::days(10)),
            ("failing", Risk::RefreshFailing, now() + Duration::days(20)),
        ]
    );
    assert!(items[0].reason.contains("token revoked"), "{:?}", items[0]);
    assert!(items[0].action.contains("reconnect link"));
    assert!(
        items[4].reason.contains("40 refreshes failed"),
        "{:?}",
        items[4]
    );
    assert!(items[4].action.contains("keeps retrying"));
    // A shorter horizon drops what lies beyond it.
    let near = forecast(&records, &all_facts, &ctx(&[]), 15);
    assert_eq!(near.len(), 4);
}

#[test]
fn a_paused_environment_puts_its_connections_at_risk_until_the_pause_ends() {
    let mut r = record(1, "acme");
    r.refresh_expires_at = Some(now() + Duration::days(5));
    let paused = [PausedEnvironment {
        environment: Environment::Sandbox,
        until: now() + Duration::minutes(5),
        reason: "HTTP 401 invalid_client".into(),
    }];
    let items = forecast(std::slice::from_ref(&r), &[facts(1)], &ctx(&paused), 30);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].risk, Risk::CredentialsRejected);
    assert_eq!(items[0].date, now() + Duration::days(5));
    assert!(items[0].action.contains("[environments.sandbox]"));
    let over = [PausedEnvironment {
        until: now() - Duration::minutes(1),
        ..paused[0].clone()
    }];
    assert!(forecast(&[r], &[facts(1)], &ctx(&over), 30).is_empty());
}

#[test]
fn a_connection_at_risk_in_two_ways_has_a_line_for_each() {
    let mut r = record(1, "acme");
    r.hard_expires_at = Some(now() + Duration::days(3));
    r.last_refresh_outcome = Some(LastRefresh::Failed);
    r.consecutive_failures = 2;
    r.refresh_expires_at = Some(now() + Duration::days(9));
    let items = forecast(&[r], &[facts(1)], &ctx(&[]), 30);
    let risks: Vec<Risk> = items.iter().map(|i| i.risk).collect();
    assert_eq!(risks, vec![Risk::HardLimit, Risk::RefreshFailing]);
}

#[test]
fn a_connection_that_never_synced_is_listed_only_once_the_days_have_passed() {
    let mut r = record(1, "new");
    r.created_at = now() - Duration::days(3);
    let none = SyncFacts {
        id: 1,
        ..Default::default()
    };
    assert!(forecast(
        std::slice::from_ref(&r),
        std::slice::from_ref(&none),
        &ctx(&[]),
        30
    )
    .is_empty());
    r.created_at = now() - Duration::days(8);
    let items = forecast(&[r], &[none], &ctx(&[]), 30);
    assert_eq!(items[0].risk, Risk::NoSync);
    assert_eq!(items[0].date, now() - Duration::days(1));
    assert!(items[0].reason.contains("ever"));
}

/// A connection that needs reconnecting, whose latest link has `status`, was issued
/// `issued_ago` and expires `expires_in` from now.
fn with_link(
    status: &str,
    issued_ago: Duration,
    expires_in: Duration,
) -> (ConnectionRecord, SyncFacts) {
    let mut dead = record(7, "dead co");
    dead.status = Status::NeedsReconnect;
    let mut f = facts(7);
    f.link_id = Some(12);
    f.link_status = Some(status.into());
    f.link_created_at = Some(now() - issued_ago);
    f.link_expires_at = Some(now() + expires_in);
    (dead, f)
}

fn link_lines(r: &ConnectionRecord, f: &SyncFacts) -> Vec<ForecastItem> {
    forecast(
        std::slice::from_ref(r),
        std::slice::from_ref(f),
        &ctx(&[]),
        30,
    )
    .into_iter()
    .filter(|i| i.risk != Risk::NeedsReconnect)
    .collect()
}

#[test]
fn an_open_link_unused_past_the_grace_is_dated_at_its_expiry_with_the_call_to_make() {
    let (dead, f) = with_link("open", Duration::days(3), Duration::days(4));
    let items = link_lines(&dead, &f);
    assert_eq!(items.len(), 1, "{items:#?}");
    let i = &items[0];
    assert_eq!(i.risk, Risk::LinkUnused);
    assert_eq!(i.date, now() + Duration::days(4));
    let sent = (now() - Duration::days(3)).format("%Y-%m-%d").to_string();
    assert!(i.reason.contains("never opened"), "{i:?}");
    assert_eq!(
        i.action,
        format!(
            "the customer has not used the link sent on {sent}: call them, or cancel it \
             (`qbo-console link cancel 12`) and send a new one (`qbo-console link 'dead co'`)"
        )
    );
    // Within the grace: the customer has not had time yet.
    let (dead, f) = with_link("open", Duration::days(1), Duration::days(6));
    assert_eq!(link_lines(&dead, &f), vec![]);
}

#[test]
fn a_link_past_its_expiry_is_link_expired_and_used_or_cancelled_ones_are_not_listed() {
    for status in ["expired", "open"] {
        let (dead, f) = with_link(status, Duration::days(8), -Duration::days(1));
        let items = link_lines(&dead, &f);
        assert_eq!(items.len(), 1, "{status}: {items:#?}");
        assert_eq!(items[0].risk, Risk::LinkExpired);
        assert_eq!(items[0].date, now() - Duration::days(1));
        assert!(items[0].action.contains("`qbo-console link 'dead co'`"));
    }
    for status in ["cancelled", "completed"] {
        let (dead, f) = with_link(status, Duration::days(8), -Duration::days(1));
        assert_eq!(link_lines(&dead, &f), vec![], "{status}");
    }
    // A live connection's open link is no risk of its own.
    let (mut live, f) = with_link("open", Duration::days(3), Duration::days(4));
    live.status = Status::Active;
    assert_eq!(link_lines(&live, &f), vec![]);
}
