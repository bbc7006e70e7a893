//! Human-readable output for the terminal. JSON output is the service's views, serialized.
//!
//! Every string field here may carry outside text (a tenant name, Intuit's company name or
//! error detail), so each is printed through `text::Safe`; every function's result passes
//! `text::terminal_safe_lines` once more, so a field added later without it is still safe.

use chrono::{DateTime, Utc};
use qbo_core::text::{terminal_safe_lines, Safe};
use qbo_service::{
    describe_refresh, AuditRecord, AuditVerifyReport, ConnectionDetail, ConnectionView,
    ImportReport, LastRefresh, RefreshOutcome, RefreshReport, Status, VerifyOutcome, VerifyReport,
    WatchEvent, REFRESH_WINDOW_DAYS,
};
use std::fmt::Write;

/// The last guard on a rendered block: escapes what a field's own escaping missed.
fn guarded(s: String) -> String {
    terminal_safe_lines(&s).into_owned()
}

fn safe(s: &str) -> String {
    Safe(s).to_string()
}

fn safe_opt(v: &Option<String>) -> String {
    v.as_deref().map(safe).unwrap_or_else(|| "-".into())
}

use qbo_core::present::relative;

/// Wording with a symbol, so the state never depends on colour alone.
pub fn status_label(s: Status) -> String {
    qbo_core::present::status(s).label()
}

/// How a connection is, as the console's first cell says it: `↯ failing ×3` for a live
/// one whose refreshes fail, else its lifecycle state.
pub fn condition_label(c: &ConnectionView) -> String {
    qbo_core::present::condition_label(c.status, c.consecutive_failures)
}

fn access_cell(c: &ConnectionView, now: DateTime<Utc>) -> String {
    match c.access_expires_at {
        None => "unknown".into(),
        Some(t) if t <= now => format!("expired {}", relative(t, now)),
        Some(t) => format!("expires {}", relative(t, now)),
    }
}

fn refresh_cell(c: &ConnectionView) -> String {
    match (c.refresh_window_age_days, c.refresh_days_left) {
        (Some(age), Some(left)) => format!("{age}/{REFRESH_WINDOW_DAYS}d ({left}d left)"),
        _ => "unknown".into(),
    }
}

fn when_cell(outcome: Option<&str>, at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match (outcome, at) {
        (Some(o), Some(t)) => format!("{} {}", Safe(o), relative(t, now)),
        _ => "never".into(),
    }
}

pub fn connections_table(rows: &[ConnectionView], now: DateTime<Utc>) -> String {
    let header = [
        "TENANT",
        "REALM",
        "ENV",
        "STATUS",
        "ACCESS TOKEN",
        "REFRESH WINDOW",
        "LAST REFRESH",
        "LAST SYNC",
    ];
    let body: Vec<[String; 8]> = rows
        .iter()
        .map(|c| {
            let last_refresh = match (c.last_refresh_outcome, c.last_error_class.as_deref()) {
                (Some(LastRefresh::Failed), class @ Some(_)) => when_cell(
                    Some(&format!(
                        "failed ({})",
                        Safe(&qbo_core::present::failure(
                            class,
                            c.last_error_detail.as_deref()
                        ))
                    )),
                    c.last_refresh_at,
                    now,
                ),
                (o, _) => when_cell(o.map(LastRefresh::as_str), c.last_refresh_at, now),
            };
            [
                safe(&c.tenant),
                safe(&c.realm_id),
                c.environment.to_string(),
                condition_label(c),
                access_cell(c, now),
                refresh_cell(c),
                last_refresh,
                when_cell(c.last_sync_status.map(|s| s.as_str()), c.last_sync_at, now),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &body {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            l.push_str(cell);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header.map(String::from));
    for r in &body {
        line(&mut out, r);
    }
    let _ = write!(
        out,
        "{} connection{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    );
    guarded(out)
}

pub fn detail(d: &ConnectionDetail, now: DateTime<Utc>) -> String {
    let c = &d.connection;
    let opt = safe_opt;
    let time = |t: Option<DateTime<Utc>>| match t {
        Some(t) => format!(
            "{} ({})",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            relative(t, now)
        ),
        None => "-".into(),
    };
    let mut s = String::new();
    let _ = writeln!(s, "tenant            {}", Safe(&c.tenant));
    let _ = writeln!(
        s,
        "realm             {} ({})",
        Safe(&c.realm_id),
        c.environment
    );
    let _ = writeln!(s, "company           {}", opt(&c.company_name));
    let _ = writeln!(
        s,
        "status            {}{}",
        condition_label(c),
        c.status_reason
            .as_ref()
            .map(|r| format!(": {}", Safe(r)))
            .unwrap_or_default()
    );
    if c.condition() == qbo_service::Condition::Failing {
        let _ = writeln!(s, "  lifecycle       {}", status_label(c.status));
    }
    let _ = writeln!(s, "access token      {}", access_cell(c, now));
    let _ = writeln!(s, "refresh window    {}", refresh_cell(c));
    let _ = writeln!(s, "refresh issued    {}", time(c.refresh_issued_at));
    let _ = writeln!(s, "refresh expires   {}", time(c.refresh_expires_at));
    let _ = writeln!(s, "hard limit        {}", time(c.hard_expires_at));
    let _ = writeln!(
        s,
        "last refresh      {} {}",
        opt(&c.last_refresh_outcome.map(|o| o.to_string())),
        time(c.last_refresh_at)
    );
    if c.last_error_class.is_some() {
        let _ = writeln!(
            s,
            "last error        {}: {}",
            opt(&c.last_error_class),
            opt(&c.last_error_detail)
        );
    }
    let _ = writeln!(s, "last intuit_tid   {}", opt(&c.last_intuit_tid));
    if let Some(i) = &d.incident {
        let _ = writeln!(
            s,
            "incident          {} {}: {} ({} {} endpoint) since {}; not this customer's fault \
             (`qbo-console incidents show {}`)",
            if i.class.is_ours() {
                "our credentials,"
            } else {
                "Intuit's,"
            },
            i.id,
            i.class.words(),
            i.environment,
            i.endpoint,
            i.started_at.format("%Y-%m-%d %H:%M UTC"),
            i.id
        );
    }
    let _ = writeln!(
        s,
        "last sync         {} {} {}",
        opt(&c.last_sync_status.map(|s| s.to_string())),
        time(c.last_sync_at),
        opt(&c.last_sync_detail)
    );
    // What Intuit's webhooks last said changed in the company: a sync that failed after
    // it is the one that matters.
    let _ = writeln!(
        s,
        "last data change  {} {}",
        opt(&c.last_data_change),
        time(c.last_data_change_at)
    );
    let _ = writeln!(s, "failures in row   {}", c.consecutive_failures);
    let _ = writeln!(s, "next attempt      {}", time(c.next_attempt_at));
    if !d.recent_events.is_empty() {
        let _ = writeln!(s, "\nrecent events");
        s.push_str(&audit_lines(&d.recent_events));
    }
    guarded(s.trim_end().to_string())
}

pub fn refresh_reports(reports: &[RefreshReport], now: DateTime<Utc>) -> String {
    let mut s = String::new();
    for r in reports {
        let t = &r.target;
        let what = match &r.outcome {
            RefreshOutcome::Refreshed {
                access_expires_at,
                rotated,
                ..
            } => format!(
                "refreshed; access token expires {}{}",
                relative(*access_expires_at, now),
                if *rotated {
                    "; refresh token rotated"
                } else {
                    ""
                }
            ),
            RefreshOutcome::AlreadyRefreshed { .. } => {
                "already refreshed by another refresher".into()
            }
            RefreshOutcome::Failed {
                error_class,
                detail,
                intuit_tid,
                next_attempt_at,
            } => format!(
                "FAILED {error_class}: {}{}{}; token kept",
                Safe(detail),
                tid(intuit_tid),
                next_attempt_at
                    .map(|n| format!("; retry {}", relative(n, now)))
                    .unwrap_or_default()
            ),
            RefreshOutcome::NeedsReconnect { reason, intuit_tid } => {
                format!("NEEDS RECONNECT: {}{}", Safe(reason), tid(intuit_tid))
            }
            RefreshOutcome::ConfigError { detail, intuit_tid } => {
                format!("CONFIGURATION ERROR: {}{}", Safe(detail), tid(intuit_tid))
            }
            RefreshOutcome::Skipped { reason } => format!("skipped: {}", Safe(reason)),
            RefreshOutcome::Busy { holder } => {
                format!(
                    "BUSY: another refresher ({}) holds it; try again",
                    Safe(holder)
                )
            }
            RefreshOutcome::Error { detail } => {
                format!("ERROR: {}; nothing was stored", Safe(detail))
            }
        };
        let _ = writeln!(
            s,
            "{} ({}:{}): {what}",
            Safe(&t.tenant),
            t.environment,
            Safe(t.realm_id.as_str())
        );
    }
    let ok = reports.iter().filter(|r| r.outcome.is_success()).count();
    let _ = write!(s, "{ok} of {} refreshed", reports.len());
    guarded(s)
}

pub fn verify_reports(reports: &[VerifyReport]) -> String {
    let mut s = String::new();
    for r in reports {
        let t = &r.target;
        let what = match &r.outcome {
            VerifyOutcome::Ok { company_name, .. } => format!("ok: {}", Safe(company_name)),
            VerifyOutcome::Failed {
                error_class,
                detail,
                intuit_tid,
            } => format!("FAILED {error_class}: {}{}", Safe(detail), tid(intuit_tid)),
            VerifyOutcome::RefreshFailed { refresh } => {
                format!(
                    "FAILED: could not get an access token: {}",
                    Safe(&describe_refresh(refresh))
                )
            }
            VerifyOutcome::Skipped { reason } => format!("skipped: {}", Safe(reason)),
            VerifyOutcome::Error { detail } => {
                format!("ERROR: {}; nothing was recorded", Safe(detail))
            }
        };
        let _ = writeln!(
            s,
            "{} ({}:{}): {what}",
            Safe(&t.tenant),
            t.environment,
            Safe(t.realm_id.as_str())
        );
    }
    let ok = reports.iter().filter(|r| r.outcome.is_success()).count();
    let _ = write!(s, "{ok} of {} verified", reports.len());
    guarded(s)
}

pub fn import_report(r: &ImportReport) -> String {
    let lines = match (r.first_line, r.last_line) {
        (Some(f), Some(l)) if f == l => format!(" (line {f})"),
        (Some(f), Some(l)) => format!(" (lines {f} to {l})"),
        _ => String::new(),
    };
    let from = if r.from_line > 1 {
        format!("; rows before line {} were left as they were", r.from_line)
    } else {
        String::new()
    };
    guarded(format!(
        "imported {} connection(s) from {}{lines}: {} created, {} updated{from}; \
         each row's event is in the audit log (`qbo-console audit tail --action import`)",
        r.created + r.updated,
        Safe(&r.file),
        r.created,
        r.updated
    ))
}

pub fn audit_lines(records: &[AuditRecord]) -> String {
    let mut s = String::new();
    for r in records {
        let target = match (&r.tenant, &r.environment, &r.realm_id) {
            (Some(t), Some(e), Some(re)) => {
                format!(" {} ({}:{})", Safe(t), Safe(e), Safe(re))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "#{} {} {} {}{} {}{}{}",
            r.seq,
            Safe(&r.at),
            Safe(&r.actor_words()),
            Safe(&r.action),
            target,
            Safe(&r.outcome),
            r.error_class
                .as_ref()
                .map(|c| format!(" {}", Safe(c)))
                .unwrap_or_default(),
            r.intuit_tid
                .as_ref()
                .map(|t| format!(" intuit_tid={}", Safe(t)))
                .unwrap_or_default(),
        );
    }
    guarded(s)
}

/// One line per change: which tenant, and its status now. The hello says nothing on
/// stdout (the role is the operator's own business); a gap says what to do about it.
pub fn watch_event(ev: &WatchEvent) -> Option<String> {
    match ev {
        WatchEvent::Hello { .. } => None,
        WatchEvent::Change {
            audit_seq,
            connection: Some(c),
            ..
        } => Some(format!(
            "audit #{audit_seq}: {} ({}:{}) {}",
            Safe(&c.tenant),
            c.environment,
            Safe(&c.realm_id),
            condition_label(c)
        )),
        WatchEvent::Change {
            audit_seq,
            connection_id: Some(id),
            connection: None,
        } => Some(format!(
            "audit #{audit_seq}: connection {id} (no longer exists)"
        )),
        WatchEvent::Change { audit_seq, .. } => Some(format!("audit #{audit_seq}")),
        WatchEvent::Missed { count } => Some(format!(
            "missed {count} change(s) while falling behind; `qbo-console list` shows the current state"
        )),
        WatchEvent::Scheduler { state } => Some(scheduler_line(state)),
    }
}

/// What the daemon's scheduler is doing, in one line.
fn scheduler_line(state: &qbo_core::domain::SchedulerState) -> String {
    let mut line = if state.running {
        "scheduler running".to_string()
    } else {
        "scheduler stopped".to_string()
    };
    for p in &state.paused {
        let _ = write!(
            line,
            "; {} paused until {}: {}",
            p.environment,
            p.until.format("%Y-%m-%d %H:%M:%SZ"),
            Safe(&p.reason)
        );
    }
    line
}

pub fn audit_verify(r: &AuditVerifyReport) -> String {
    let from = r
        .archived_through
        .map(|s| format!(" (from the archived head at sequence {s})"))
        .unwrap_or_default();
    let mut out = if r.ok {
        format!(
            "audit chain intact: {} events, last sequence {}{from}",
            r.events, r.last_seq
        )
    } else {
        format!(
            "audit chain BROKEN at sequence {} ({}): {}{from}",
            r.first_bad_seq.unwrap_or(0),
            r.kind.map_or("damaged", |k| k.as_str()),
            Safe(r.problem.as_deref().unwrap_or("unknown problem"))
        )
    };
    out.push_str(&repairs(&r.repairs));
    if let Some(why) = &r.read_not_recorded {
        out.push_str(&format!(
            "\nthis read could not be recorded in the audit log: {}",
            Safe(why)
        ));
    }
    out
}

/// One line per `chain repaired` event: when, who, and what was removed (with the hashes).
pub fn repairs(notes: &[qbo_service::RepairNote]) -> String {
    notes
        .iter()
        .map(|n| {
            format!(
                "\nrepaired at sequence {} on {} by {} ({}): {}",
                n.seq,
                Safe(&n.at),
                Safe(&n.actor_account),
                Safe(&n.role),
                Safe(&n.reason)
            )
        })
        .collect()
}

fn tid(t: &Option<String>) -> String {
    t.as_ref()
        .map(|t| format!(" (intuit_tid {})", Safe(t)))
        .unwrap_or_default()
}

/// `keys status`: the keys by id, what each seals, and whether rotation is done.
pub fn key_status(s: &qbo_service::KeyStatus) -> String {
    let mut out = format!(
        "current key {}; fingerprint key {} ({})\n",
        s.current_key_id,
        s.fingerprint_key_id,
        match s.fingerprint_key {
            qbo_core::vault::FingerprintKeySource::Configured => "[vault] fingerprint_key_file",
            qbo_core::vault::FingerprintKeySource::DerivedFromTokenKey =>
                "derived from the token key: set [vault] fingerprint_key_file before rotating",
        }
    );
    out.push_str(&format!(
        "{:<18} {:<8} {:>12} {:>8}\n",
        "KEY ID", "ROLE", "CONNECTIONS", "VALUES"
    ));
    for k in &s.keys {
        out.push_str(&format!(
            "{:<18} {:<8} {:>12} {:>8}\n",
            k.key_id, k.role, k.connections, k.values
        ));
    }
    out.push_str(if s.rotation_complete {
        "rotation complete: every stored value is under the current key"
    } else {
        "rotation incomplete: run `qbo-console keys rotate --new-key FILE`"
    });
    out
}

/// `keys rotate`: what this run did.
pub fn rotation_report(r: &qbo_service::RotationReport) -> String {
    let mut out = format!(
        "re-sealed {} connection(s) under key {}",
        r.resealed, r.key_id
    );
    if !r.failed.is_empty() {
        out.push_str(&format!("; {} would not open (see errors)", r.failed.len()));
    }
    out.push_str(if r.complete {
        "; rotation complete: the old key may be removed from [vault] old_key_files"
    } else {
        "; rotation incomplete"
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_core::domain::{Environment, ErrorClass};
    use qbo_service::{Status, Target};

    /// ESC sequences (clear screen, OSC title), BEL, CR, LF, C1 CSI, DEL and a bidi override.
    const HOSTILE: &str = "x\u{1b}[2J\u{1b}]0;t\u{7}\r\n\u{9b}\u{7f}\u{202e}y";

    fn raw_control(s: &str) -> Option<char> {
        s.chars()
            .find(|&c| c != '\n' && qbo_core::text::is_unsafe(c))
    }

    fn view(s: &str) -> ConnectionView {
        let now = Utc::now();
        let o = || Some(s.to_string());
        ConnectionView {
            id: 1,
            tenant: s.into(),
            realm_id: s.into(),
            environment: Environment::Sandbox,
            company_name: o(),
            status: Status::Active,
            status_reason: o(),
            access_expires_at: Some(now),
            access_expires_in_secs: Some(0),
            refresh_issued_at: Some(now),
            refresh_expires_at: Some(now),
            refresh_window_age_days: Some(1),
            refresh_days_left: Some(99),
            hard_expires_at: Some(now),
            last_refresh_at: Some(now),
            last_refresh_outcome: Some(qbo_core::domain::LastRefresh::Failed),
            last_error_class: o(),
            last_error_detail: o(),
            last_intuit_tid: o(),
            last_sync_at: Some(now),
            last_sync_status: Some(qbo_core::domain::SyncStatus::Failed),
            last_sync_detail: o(),
            last_data_change_at: Some(now),
            last_data_change: o(),
            consecutive_failures: 1,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
            last_actor: o(),
            last_action: o(),
        }
    }

    fn record(s: &str) -> AuditRecord {
        let o = || Some(s.to_string());
        AuditRecord {
            seq: 1,
            at: s.into(),
            actor_account: s.into(),
            actor_uid: 0,
            actor_ssh: o(),
            interface: s.into(),
            role: s.into(),
            action: s.into(),
            connection_id: Some(1),
            environment: o(),
            realm_id: o(),
            tenant: o(),
            outcome: s.into(),
            error_class: o(),
            reason: o(),
            intuit_tid: o(),
            request_id: o(),
            fingerprints: s.into(),
            prev_hash: s.into(),
            hash: s.into(),
            actor_kind: None,
        }
    }

    fn target(s: &str) -> Target {
        Target {
            connection_id: 1,
            tenant: s.into(),
            realm_id: s.into(),
            environment: Environment::Sandbox,
        }
    }

    /// Every human-readable rendering, with every string field set to `s`.
    fn everything(s: &str) -> Vec<(&'static str, String)> {
        let now = Utc::now();
        let o = || Some(s.to_string());
        let refresh = [
            RefreshOutcome::Failed {
                error_class: ErrorClass::Transient,
                detail: s.into(),
                intuit_tid: o(),
                next_attempt_at: Some(now),
            },
            RefreshOutcome::NeedsReconnect {
                reason: s.into(),
                intuit_tid: o(),
            },
            RefreshOutcome::ConfigError {
                detail: s.into(),
                intuit_tid: o(),
            },
            RefreshOutcome::Skipped { reason: s.into() },
            RefreshOutcome::Busy { holder: s.into() },
            RefreshOutcome::Error { detail: s.into() },
        ];
        let verify = [
            VerifyOutcome::Ok {
                company_name: s.into(),
                intuit_tid: o(),
            },
            VerifyOutcome::Failed {
                error_class: ErrorClass::Other,
                detail: s.into(),
                intuit_tid: o(),
            },
            VerifyOutcome::RefreshFailed {
                refresh: refresh[0].clone(),
            },
            VerifyOutcome::Skipped { reason: s.into() },
            VerifyOutcome::Error { detail: s.into() },
        ];
        vec![
            ("list", connections_table(&[view(s)], now)),
            (
                "show",
                detail(
                    &ConnectionDetail {
                        connection: view(s),
                        recent_events: vec![record(s)],
                        incident: None,
                    },
                    now,
                ),
            ),
            (
                "refresh",
                refresh_reports(
                    &refresh
                        .iter()
                        .map(|outcome| RefreshReport {
                            target: target(s),
                            outcome: outcome.clone(),
                        })
                        .collect::<Vec<_>>(),
                    now,
                ),
            ),
            (
                "verify",
                verify_reports(
                    &verify
                        .iter()
                        .map(|outcome| VerifyReport {
                            target: target(s),
                            outcome: outcome.clone(),
                        })
                        .collect::<Vec<_>>(),
                ),
            ),
            (
                "import",
                import_report(&ImportReport {
                    file: s.into(),
                    created: 1,
                    updated: 0,
                    first_line: Some(2),
                    last_line: Some(2),
                    from_line: 1,
                }),
            ),
            ("audit tail", audit_lines(&[record(s)])),
            (
                "audit verify",
                audit_verify(&AuditVerifyReport {
                    ok: false,
                    events: 1,
                    last_seq: 1,
                    first_bad_seq: Some(1),
                    kind: Some(qbo_service::Damage::Changed),
                    problem: o(),
                    archived_through: None,
                    repairs: vec![qbo_service::RepairNote {
                        seq: 2,
                        at: s.into(),
                        actor_account: s.into(),
                        role: s.into(),
                        reason: s.into(),
                    }],
                    read_not_recorded: o(),
                }),
            ),
        ]
    }

    #[test]
    fn every_field_of_every_rendering_is_escaped_on_its_own_line() {
        for ((what, hostile), (_, plain)) in everything(HOSTILE).into_iter().zip(everything("p")) {
            assert_eq!(raw_control(&hostile), None, "{what}: {hostile:?}");
            assert!(hostile.contains(r"\x1b[2J"), "{what}: {hostile}");
            assert!(hostile.contains(r"\u{202e}"), "{what}: {hostile}");
            // A field escaped only by the final guard would still break its line at the LF.
            assert_eq!(
                hostile.lines().count(),
                plain.lines().count(),
                "{what}: a field's newline reached the output:\n{hostile}"
            );
        }
    }

    #[test]
    fn show_gives_a_failed_syncs_reason_and_the_last_data_change() {
        let now = Utc::now();
        let mut c = view("p");
        c.last_sync_detail = Some("customer disconnected: QuickBooks refuses fresh tokens".into());
        c.last_data_change = Some("Invoice 42 Update".into());
        c.last_data_change_at = Some(now - chrono::Duration::hours(3));
        let text = detail(
            &ConnectionDetail {
                connection: c,
                recent_events: vec![],
                incident: None,
            },
            now,
        );
        let line = |label: &str| {
            text.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label:?} line in\n{text}"))
                .to_string()
        };
        let sync = line("last sync ");
        assert!(
            sync.contains("failed") && sync.contains("customer disconnected: QuickBooks refuses"),
            "{sync}"
        );
        let change = line("last data change ");
        assert!(
            change.contains("Invoice 42 Update") && change.contains("(3h ago)"),
            "{change}"
        );
    }

    /// `audit tail` names each kind of actor in words (issue 22): an operator with its
    /// interface and role, the daemon's work by its task, a host app, a customer's browser
    /// by its link and address, Intuit; none but the operator with a role.
    #[test]
    fn audit_lines_name_each_kind_of_actor_in_words() {
        use qbo_core::identity::{Actor, DaemonTask, Interface, Role};
        let seal = |a: &Actor| {
            qbo_service::AuditEvent::new(
                Utc::now(),
                a,
                qbo_service::Action::Refresh,
                qbo_service::Outcome::Ok,
            )
            .seal(1, "", None)
        };
        let mut op = Actor::current_process(Interface::Tui, Role::Support);
        if let qbo_core::identity::ActorKind::Operator(o) = &mut op.kind {
            o.account = "alice".into();
            o.ssh_client = Some("203.0.113.7".into());
        }
        let cases = [
            (op, "alice@203.0.113.7 via tui [support] refresh"),
            (
                Actor::daemon(DaemonTask::Scheduler),
                "scheduler (daemon) refresh",
            ),
            (
                Actor::daemon(DaemonTask::HealthCheck),
                "health check (daemon) refresh",
            ),
            (
                Actor::service(Some("books-sync")),
                "service:books-sync (host app) refresh",
            ),
            (
                Actor::customer(Some("fp:0011223344556677".into()), "198.51.100.23"),
                "customer (link fp:0011223344556677) from 198.51.100.23 refresh",
            ),
            (Actor::intuit(), "Intuit refresh"),
        ];
        for (actor, words) in cases {
            let line = audit_lines(&[seal(&actor)]);
            assert!(line.contains(words), "{words:?} in {line}");
            if actor.role().is_none() {
                assert!(!line.contains('['), "no role for {actor}: {line}");
            }
        }
    }
}
