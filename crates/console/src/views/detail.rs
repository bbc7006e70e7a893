//! One connection: every field, its last errors with their `intuit_tid`, and the tenant's
//! recent audit events.

use super::cells;
use crate::app::App;
use crate::safe;
use crate::theme::{condition_mark, status_mark, Meaning, Theme};
use chrono::{DateTime, SecondsFormat, Utc};
use qbo_service::{Condition, ConnectionView, Permission};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "—".into(),
        Some(t) => format!(
            "{} ({})",
            t.to_rfc3339_opts(SecondsFormat::Secs, true),
            qbo_core::present::relative(t, now)
        ),
    }
}

fn field<'a>(theme: &Theme, name: &'a str, value: String, m: Meaning) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{name:<LABEL$}"), theme.style(Meaning::Muted)),
        Span::styled(value, theme.style(m)),
    ])
}

/// The width of a field's name; a value too long for the line continues under itself.
const LABEL: usize = 16;

/// A field whose value does not fit wrapped under the value, not under the names ("the
/// customer must reconnect" at the screen's left edge read as a field of its own).
fn hang(line: Line<'_>, width: usize) -> Vec<Line<'_>> {
    let fits = line.width() <= width;
    let [label, value] = line.spans.as_slice() else {
        return vec![line];
    };
    if fits || label.content.chars().count() != LABEL || width <= LABEL + 20 {
        return vec![line];
    }
    super::wrap_words(&value.content, width - LABEL)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let name = if i == 0 {
                label.clone()
            } else {
                Span::raw(" ".repeat(LABEL))
            };
            Line::from(vec![name, Span::styled(part, value.style)])
        })
        .collect()
}

fn lines<'a>(c: &ConnectionView, theme: &Theme, now: DateTime<Utc>) -> Vec<Line<'a>> {
    let n = Meaning::Normal;
    let opt = |v: &Option<String>| v.as_deref().map_or("—".to_string(), safe);
    let mark = condition_mark(c.condition());
    let (access, access_m) = cells::access(c, now);
    let (mut window, window_m) = cells::window(c, now);
    if let (Some(used), Some(left)) = (
        crate::filter::refresh_days_used(c, now),
        crate::filter::refresh_days_left(c, now),
    ) {
        window = format!(
            "{} {used} days used, {left} left",
            &window[..window.find(' ').unwrap_or(0)]
        );
    }
    let (refresh, refresh_m) = cells::last_refresh(c, now);
    let (sync, sync_m) = cells::last_sync(c, now);
    let mut v = vec![
        field(theme, "tenant", safe(&c.tenant), Meaning::Title),
        field(theme, "company", opt(&c.company_name), n),
        field(theme, "realm id", safe(&c.realm_id), n),
        field(theme, "environment", c.environment.to_string(), n),
        field(
            theme,
            "status",
            qbo_core::present::condition_label(c.status, c.consecutive_failures),
            mark.meaning,
        ),
    ];
    if c.condition() == Condition::Failing {
        // What the lifecycle says beside how it is: still active (or expiring) at Intuit.
        let lifecycle = status_mark(c.status);
        v.push(field(
            theme,
            "  lifecycle",
            format!("{} {}", lifecycle.glyph, lifecycle.word),
            lifecycle.meaning,
        ));
    }
    if let Some(r) = &c.status_reason {
        v.push(field(theme, "  reason", safe(r), mark.meaning));
    }
    v.extend([
        field(theme, "access token", access, access_m),
        field(theme, "  expires", when(c.access_expires_at, now), n),
        field(theme, "refresh window", window, window_m),
        field(theme, "  issued", when(c.refresh_issued_at, now), n),
        field(theme, "  lapses", when(c.refresh_expires_at, now), n),
        field(theme, "5-year limit", when(c.hard_expires_at, now), n),
        field(theme, "last refresh", refresh, refresh_m),
    ]);
    if c.last_error_class.is_some() || c.last_error_detail.is_some() {
        v.push(field(
            theme,
            "  last error",
            format!(
                "{}: {}",
                opt(&c.last_error_class),
                opt(&c.last_error_detail)
            ),
            Meaning::Error,
        ));
    }
    v.extend([
        field(theme, "  intuit_tid", opt(&c.last_intuit_tid), n),
        field(
            theme,
            "  failures",
            format!("{} in a row", c.consecutive_failures),
            if c.consecutive_failures > 0 {
                Meaning::Error
            } else {
                n
            },
        ),
        field(theme, "  next attempt", when(c.next_attempt_at, now), n),
        field(theme, "last sync", sync, sync_m),
        field(theme, "  detail", opt(&c.last_sync_detail), n),
        field(theme, "last actor", safe(&cells::actor(c)), n),
        field(theme, "created", when(Some(c.created_at), now), n),
        field(theme, "updated", when(Some(c.updated_at), now), n),
    ]);
    v
}

pub fn draw(app: &App, theme: &Theme, now: DateTime<Utc>, id: i64, frame: &mut Frame, area: Rect) {
    let Some(c) = app.table.get(id) else {
        frame.render_widget(
            Paragraph::new("this connection is no longer listed; esc goes back")
                .style(theme.style(Meaning::Muted)),
            area,
        );
        return;
    };
    let width = usize::from(area.width);
    let mut text: Vec<Line> = lines(c, theme, now)
        .into_iter()
        .flat_map(|l| hang(l, width))
        .collect();
    if let Some(i) = app
        .detail
        .as_ref()
        .filter(|d| d.connection.id == id)
        .and_then(|d| d.incident.as_ref())
    {
        let said = format!(
            "{}{}: {} on the {} {} endpoint since {} — not this customer's fault; {}. `qbo-console incidents show {}`",
            if i.class.is_ours() { "incident " } else { "Intuit incident " },
            i.id,
            i.class.words(),
            i.environment,
            i.endpoint,
            i.started_at.format("%Y-%m-%d %H:%M UTC"),
            match (i.class.is_ours(), i.ended_at) {
                (true, _) => "fix our client credentials".to_string(),
                (false, None) => "the scheduler probes and catches up when Intuit recovers".to_string(),
                (false, Some(end)) => format!("ended {}, catching up", end.format("%H:%M UTC")),
            },
            i.id
        );
        text.extend(hang(field(theme, "incident", said, Meaning::Warn), width));
    }
    text.push(Line::raw(""));
    text.push(Line::styled(
        "recent audit events",
        theme.style(Meaning::Header),
    ));
    match &app.detail {
        None => text.push(Line::styled("loading…", theme.style(Meaning::Muted))),
        Some(d) if d.recent_events.is_empty() => {
            // The service leaves them out for roles that may neither read the audit log
            // nor act on connections.
            let role = app.role();
            let why = if role.allows(Permission::ReadAudit) || role.allows(Permission::Refresh) {
                "none"
            } else {
                "not shown to role viewer (auditor, support and admin see them)"
            };
            text.push(Line::styled(why, theme.style(Meaning::Muted)))
        }
        Some(d) => {
            for e in &d.recent_events {
                let m = match e.outcome.as_str() {
                    "ok" => Meaning::Normal,
                    "denied" => Meaning::Warn,
                    _ => Meaning::Error,
                };
                let mut s = format!(
                    "{} {} {} {}",
                    e.at.get(..16).unwrap_or(&e.at).replace('T', " "),
                    safe(&e.actor_short()),
                    safe(&e.action),
                    e.outcome
                );
                if let Some(r) = &e.reason {
                    s.push_str(&format!(": {}", safe(r)));
                }
                if let Some(t) = &e.intuit_tid {
                    s.push_str(&format!(" (intuit_tid {})", safe(t)));
                }
                text.push(Line::styled(s, theme.style(m)));
            }
        }
    }
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        format!(" {} · realm {} ", safe(&c.tenant), safe(&c.realm_id)),
        theme.style(Meaning::Title),
    ));
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}
