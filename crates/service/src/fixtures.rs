//! Connections in every state at a fixed clock, for the console's tests.

use crate::{ConnectionView, Environment, Status};
use chrono::{DateTime, Duration, Utc};

pub const NOW: &str = "2026-03-02T12:00:00Z";

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("fixture times are valid RFC 3339")
        .with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at(NOW)
}

/// A healthy connection whose refresh token was issued `issued_ago` before now.
fn live(id: i64, tenant: &str, issued_ago: Duration) -> ConnectionView {
    let mut c = conn(id, tenant, Status::Active);
    let issued = now() - issued_ago;
    c.refresh_issued_at = Some(issued);
    c.refresh_expires_at = Some(issued + Duration::days(100));
    c.hard_expires_at = Some(now() + Duration::days(3 * 365));
    c.access_expires_at = Some(issued + Duration::hours(1));
    c.last_refresh_at = Some(issued);
    c.last_refresh_outcome = Some(crate::LastRefresh::Ok);
    c.last_sync_at = Some(issued + Duration::minutes(1));
    c.last_sync_status = Some(crate::SyncStatus::Ok);
    c.company_name = Some(format!("{} Ltd", tenant));
    c
}

pub fn conn(id: i64, tenant: &str, status: Status) -> ConnectionView {
    ConnectionView {
        id,
        tenant: tenant.into(),
        realm_id: format!("91300000000000{id:02}"),
        environment: Environment::Production,
        company_name: None,
        status,
        status_reason: None,
        access_expires_at: None,
        access_expires_in_secs: None,
        refresh_issued_at: None,
        refresh_expires_at: None,
        refresh_window_age_days: None,
        refresh_days_left: None,
        hard_expires_at: None,
        last_refresh_at: None,
        last_refresh_outcome: None,
        last_error_class: None,
        last_error_detail: None,
        last_intuit_tid: None,
        last_sync_at: None,
        last_sync_status: None,
        last_sync_detail: None,
        last_data_change_at: None,
        last_data_change: None,
        consecutive_failures: 0,
        next_attempt_at: None,
        created_at: at("2024-01-10T09:00:00Z"),
        updated_at: at("2026-03-01T00:00:00Z"),
        last_actor: None,
        last_action: None,
    }
}

/// One connection per state the console must show, in a fixed (not urgency) order.
pub fn every_state() -> Vec<ConnectionView> {
    let mut acme = live(1, "acme-corp", Duration::hours(20) - Duration::minutes(42));
    acme.access_expires_at = Some(now() + Duration::minutes(42));
    acme.company_name = Some("Acme Corporation".into());
    acme.last_actor = Some("alice".into());
    acme.last_action = Some("refresh".into());

    let mut globex = live(3, "globex", Duration::days(40));
    globex.status = Status::NeedsReconnect;
    globex.status_reason = Some("invalid_grant: the customer disconnected the app".into());
    globex.access_expires_at = Some(now() - Duration::hours(3));
    globex.last_refresh_at = Some(now() - Duration::hours(3));
    globex.last_refresh_outcome = Some(crate::LastRefresh::Failed);
    globex.last_error_class = Some("invalid_grant".into());
    globex.last_error_detail = Some("Token invalid".into());
    globex.last_intuit_tid = Some("1-65f0c3a2-7b1d".into());
    globex.company_name = Some("Globex Inc".into());
    globex.last_actor = Some("scheduler".into());
    globex.last_action = Some("refresh".into());

    let mut initech = live(4, "initech", Duration::days(2));
    initech.access_expires_at = Some(now() - Duration::minutes(3));
    initech.last_refresh_at = Some(now() - Duration::minutes(2));
    initech.last_refresh_outcome = Some(crate::LastRefresh::Failed);
    initech.last_error_class = Some("transient".into());
    initech.last_error_detail = Some("HTTP 503 from the token endpoint".into());
    initech.last_intuit_tid = Some("1-65f0c3b9-a3c2".into());
    initech.consecutive_failures = 3;
    initech.next_attempt_at = Some(now() + Duration::minutes(4));
    initech.last_sync_at = Some(now() - Duration::minutes(30));
    initech.last_sync_status = Some(crate::SyncStatus::Failed);
    initech.last_sync_detail = Some("could not get an access token".into());
    initech.company_name = Some("Initech Payroll".into());
    initech.last_actor = Some("scheduler".into());
    initech.last_action = Some("refresh".into());

    let mut stark = live(5, "stark", Duration::days(85) - Duration::hours(1));
    stark.company_name = Some("Stark Industries".into());

    let mut wayne = live(6, "wayne", Duration::hours(10));
    wayne.status = Status::Expiring;
    wayne.hard_expires_at = Some(now() + Duration::days(20) + Duration::hours(2));
    wayne.access_expires_at = Some(now() + Duration::minutes(50));
    wayne.last_actor = Some("bob".into());
    wayne.last_action = Some("verify".into());

    let mut umbrella = live(2, "umbrella", Duration::minutes(56));
    umbrella.environment = Environment::Sandbox;
    umbrella.access_expires_at = Some(now() + Duration::minutes(4));

    let mut hooli = conn(7, "hooli", Status::Revoked);
    hooli.environment = Environment::Sandbox;
    hooli.status_reason = Some("revoked by admin".into());
    hooli.last_actor = Some("root".into());
    hooli.last_action = Some("revoke".into());

    let pied = conn(8, "pied-piper", Status::Pending);

    let mut cyberdyne = live(9, "cyberdyne", Duration::days(5));
    cyberdyne.status = Status::Revoking;

    vec![
        acme, globex, initech, stark, wayne, umbrella, hooli, pied, cyberdyne,
    ]
}

#[allow(clippy::too_many_arguments)]
fn event(
    seq: i64,
    at: &str,
    actor: &str,
    role: &str,
    action: &str,
    tenant: Option<(i64, &str)>,
    outcome: &str,
    reason: &str,
) -> crate::AuditRecord {
    // The kind follows the name: the daemon's tasks, a host app, a browser and Intuit
    // have no role and no OS account; anyone else is an operator at the console.
    use qbo_core::identity::{Kind, NO_UID};
    let kind = if actor.starts_with("service:") {
        Kind::Service
    } else if actor.starts_with("customer") {
        Kind::Customer
    } else {
        Kind::parse(actor)
            .filter(|k| *k != Kind::Service && *k != Kind::Customer)
            .unwrap_or(Kind::Operator)
    };
    let operator = kind == Kind::Operator;
    crate::AuditRecord {
        seq,
        at: at.into(),
        actor_account: actor.into(),
        actor_uid: if operator { 1000 + seq } else { NO_UID },
        actor_ssh: match actor {
            "alice" => Some("203.0.113.7".to_string()),
            a if a.starts_with("customer") => Some("198.51.100.23".to_string()),
            _ => None,
        },
        interface: match kind {
            Kind::Operator => "tui",
            Kind::Service => "token_api",
            Kind::Customer | Kind::Intuit => "callback",
            _ => "scheduler",
        }
        .into(),
        role: if operator { role.into() } else { String::new() },
        action: action.into(),
        connection_id: tenant.map(|t| t.0),
        environment: tenant.map(|_| "production".into()),
        realm_id: tenant.map(|t| format!("91300000000000{:02}", t.0)),
        tenant: tenant.map(|t| t.1.to_string()),
        outcome: outcome.into(),
        error_class: (outcome == "failed").then(|| "transient".to_string()),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        intuit_tid: (outcome == "failed").then(|| "1-65f0c3b9-a3c2".to_string()),
        request_id: Some(format!("req{seq:04}")),
        fingerprints: String::new(),
        prev_hash: "0".repeat(64),
        hash: "f".repeat(64),
        actor_kind: Some(kind.as_str().to_string()),
    }
}

/// A page of the audit log, newest first.
pub fn audit_records() -> Vec<crate::AuditRecord> {
    vec![
        event(
            11,
            "2026-03-02T12:30:00.000000Z",
            "intuit",
            "",
            "customer disconnected",
            Some((5, "umbrella")),
            "ok",
            "Intuit's Disconnect URL named this company",
        ),
        event(
            10,
            "2026-03-02T12:20:00.000000Z",
            "customer:fp:5c1d0e9a7b3f2a61",
            "",
            "code exchanged",
            Some((3, "globex")),
            "ok",
            "link 4 completed",
        ),
        event(
            9,
            "2026-03-02T12:05:00.000000Z",
            "service:books-sync",
            "",
            "access token handed out",
            Some((1, "acme-corp")),
            "ok",
            "first hand-out of this access token to service:books-sync",
        ),
        event(
            8,
            "2026-03-02T11:58:00.000000Z",
            "mallory",
            "viewer",
            "refresh",
            Some((4, "initech")),
            "denied",
            "role viewer lacks permission for refresh",
        ),
        event(
            7,
            "2026-03-02T11:58:00.000000Z",
            "scheduler",
            "",
            "refresh",
            Some((4, "initech")),
            "failed",
            "HTTP 503 from the token endpoint",
        ),
        event(
            6,
            "2026-03-02T11:41:00.000000Z",
            "alice",
            "support",
            "refresh",
            Some((1, "acme-corp")),
            "ok",
            "",
        ),
        event(
            5,
            "2026-03-02T11:40:00.000000Z",
            "alice",
            "support",
            "show",
            Some((1, "acme-corp")),
            "ok",
            "shown with 3 recent audit events",
        ),
        event(
            4,
            "2026-03-02T09:00:00.000000Z",
            "scheduler",
            "",
            "refresh",
            Some((3, "globex")),
            "failed",
            "invalid_grant: the customer disconnected the app",
        ),
        event(
            3,
            "2026-03-02T02:00:00.000000Z",
            "health check",
            "",
            "verify",
            Some((6, "wayne")),
            "ok",
            "",
        ),
        event(
            2,
            "2026-03-01T18:00:00.000000Z",
            "alice",
            "support",
            "list",
            None,
            "ok",
            "listed 9 connections (status any, environment any)",
        ),
        event(
            1,
            "2026-03-01T09:00:00.000000Z",
            "root",
            "admin",
            "import",
            None,
            "ok",
            "imported 9 connections",
        ),
    ]
}
