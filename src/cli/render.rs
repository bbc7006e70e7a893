//! Human-readable output for the terminal. JSON output is the service's views, serialized.

use crate::service::{
    describe_refresh, AuditRecord, AuditVerifyReport, ConnectionDetail, ConnectionView,
    ImportReport, LastRefresh, RefreshOutcome, RefreshReport, Status, VerifyOutcome, VerifyReport,
    WatchEvent, REFRESH_WINDOW_DAYS,
};
use chrono::{DateTime, Utc};
use std::fmt::Write;

/// "in 42m", "3h ago".
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    if secs == 0 {
        return "just now".into();
    }
    let span = human_span(secs.unsigned_abs());
    if secs >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

fn human_span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d", s / 86_400),
    }
}

/// Wording with a symbol, so the state never depends on colour alone.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Pending => "… pending",
        Status::Active => "✓ active",
        Status::Expiring => "⚠ expiring",
        Status::NeedsReconnect => "✗ needs reconnect",
        Status::Revoking => "… revoking",
        Status::Revoked => "– revoked",
    }
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
        (Some(o), Some(t)) => format!("{o} {}", relative(t, now)),
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
                (Some(LastRefresh::Failed), Some(class)) => {
                    when_cell(Some(&format!("failed ({class})")), c.last_refresh_at, now)
                }
                (o, _) => when_cell(o.map(LastRefresh::as_str), c.last_refresh_at, now),
            };
            [
                c.tenant.clone(),
                c.realm_id.clone(),
                c.environment.to_string(),
                status_label(c.status).to_string(),
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
    out
}

pub fn detail(d: &ConnectionDetail, now: DateTime<Utc>) -> String {
    let c = &d.connection;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let time = |t: Option<DateTime<Utc>>| match t {
        Some(t) => format!(
            "{} ({})",
            t.format("%Y-%m-%d %H:%M:%S UTC"),
            relative(t, now)
        ),
        None => "-".into(),
    };
    let mut s = String::new();
    let _ = writeln!(s, "tenant            {}", c.tenant);
    let _ = writeln!(s, "realm             {} ({})", c.realm_id, c.environment);
    let _ = writeln!(s, "company           {}", opt(&c.company_name));
    let _ = writeln!(
        s,
        "status            {}{}",
        status_label(c.status),
        c.status_reason
            .as_ref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
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
    let _ = writeln!(
        s,
        "last sync         {} {} {}",
        opt(&c.last_sync_status.map(|s| s.to_string())),
        time(c.last_sync_at),
        opt(&c.last_sync_detail)
    );
    let _ = writeln!(s, "failures in row   {}", c.consecutive_failures);
    let _ = writeln!(s, "next attempt      {}", time(c.next_attempt_at));
    if !d.recent_events.is_empty() {
        let _ = writeln!(s, "\nrecent events");
        s.push_str(&audit_lines(&d.recent_events));
    }
    s.trim_end().to_string()
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
                "FAILED {error_class}: {detail}{}{}; token kept",
                tid(intuit_tid),
                next_attempt_at
                    .map(|n| format!("; retry {}", relative(n, now)))
                    .unwrap_or_default()
            ),
            RefreshOutcome::NeedsReconnect { reason, intuit_tid } => {
                format!("NEEDS RECONNECT: {reason}{}", tid(intuit_tid))
            }
            RefreshOutcome::ConfigError { detail, intuit_tid } => {
                format!("CONFIGURATION ERROR: {detail}{}", tid(intuit_tid))
            }
            RefreshOutcome::Skipped { reason } => format!("skipped: {reason}"),
            RefreshOutcome::Busy { holder } => {
                format!("BUSY: another refresher ({holder}) holds it; try again")
            }
            RefreshOutcome::Error { detail } => format!("ERROR: {detail}; nothing was stored"),
        };
        let _ = writeln!(s, "{} ({}:{}): {what}", t.tenant, t.environment, t.realm_id);
    }
    let ok = reports.iter().filter(|r| r.outcome.is_success()).count();
    let _ = write!(s, "{ok} of {} refreshed", reports.len());
    s
}

pub fn verify_reports(reports: &[VerifyReport]) -> String {
    let mut s = String::new();
    for r in reports {
        let t = &r.target;
        let what = match &r.outcome {
            VerifyOutcome::Ok { company_name, .. } => format!("ok: {company_name}"),
            VerifyOutcome::Failed {
                error_class,
                detail,
                intuit_tid,
            } => format!("FAILED {error_class}: {detail}{}", tid(intuit_tid)),
            VerifyOutcome::RefreshFailed { refresh } => {
                format!(
                    "FAILED: could not get an access token: {}",
                    describe_refresh(refresh)
                )
            }
            VerifyOutcome::Skipped { reason } => format!("skipped: {reason}"),
            VerifyOutcome::Error { detail } => format!("ERROR: {detail}; nothing was recorded"),
        };
        let _ = writeln!(s, "{} ({}:{}): {what}", t.tenant, t.environment, t.realm_id);
    }
    let ok = reports.iter().filter(|r| r.outcome.is_success()).count();
    let _ = write!(s, "{ok} of {} verified", reports.len());
    s
}

pub fn import_report(r: &ImportReport) -> String {
    let mut s = String::new();
    for row in &r.rows {
        let _ = writeln!(
            s,
            "line {}: {} {} ({}:{})",
            row.line, row.action, row.tenant, row.environment, row.realm_id
        );
    }
    let _ = write!(
        s,
        "imported {} connection(s): {} created, {} updated",
        r.rows.len(),
        r.created,
        r.updated
    );
    s
}

pub fn audit_lines(records: &[AuditRecord]) -> String {
    let mut s = String::new();
    for r in records {
        let target = match (&r.tenant, &r.environment, &r.realm_id) {
            (Some(t), Some(e), Some(re)) => format!(" {t} ({e}:{re})"),
            _ => String::new(),
        };
        let actor = match &r.actor_ssh {
            Some(ip) => format!("{}@{ip}", r.actor_account),
            None => r.actor_account.clone(),
        };
        let _ = writeln!(
            s,
            "#{} {} {} via {} [{}] {}{} {}{}{}",
            r.seq,
            r.at,
            actor,
            r.interface,
            r.role,
            r.action,
            target,
            r.outcome,
            r.error_class
                .as_ref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default(),
            r.intuit_tid
                .as_ref()
                .map(|t| format!(" intuit_tid={t}"))
                .unwrap_or_default(),
        );
    }
    s
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
            c.tenant,
            c.environment,
            c.realm_id,
            status_label(c.status)
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
    }
}

pub fn audit_verify(r: &AuditVerifyReport) -> String {
    if r.ok {
        format!(
            "audit chain intact: {} events, last sequence {}",
            r.events, r.last_seq
        )
    } else {
        format!(
            "audit chain BROKEN at sequence {}: {}",
            r.first_bad_seq.unwrap_or(0),
            r.problem.as_deref().unwrap_or("unknown problem")
        )
    }
}

fn tid(t: &Option<String>) -> String {
    t.as_ref()
        .map(|t| format!(" (intuit_tid {t})"))
        .unwrap_or_default()
}
