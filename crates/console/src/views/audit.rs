//! The audit log, newest first, and one event in full.

use super::popup;
use crate::app::App;
use crate::safe;
use crate::theme::{Meaning, Theme};
use chrono::{DateTime, Utc};
use qbo_core::identity::Kind;
use qbo_service::AuditRecord;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

fn outcome(r: &AuditRecord) -> (String, Meaning) {
    match r.outcome.as_str() {
        "ok" => ("✓ ok".into(), Meaning::Ok),
        "denied" => ("⊘ denied".into(), Meaning::Warn),
        other => (format!("✗ {}", safe(other)), Meaning::Error),
    }
}

/// The longest catalogued action name ("access token handed out").
const MAX_ACTION_WIDTH: usize = 23;
/// The ACTION column's cap under 100 columns, where the reason needs the room more.
const NARROW_ACTION_WIDTH: usize = 14;
/// The widest the ACTOR column grows (a host app's `service:NAME`); longer names are cut.
const MAX_ACTOR_WIDTH: usize = 20;

pub fn draw(app: &App, theme: &Theme, _now: DateTime<Utc>, frame: &mut Frame, area: Rect) {
    let log = &app.audit;
    if log.visible_len() == 0 {
        let text = match log.searched_to() {
            // A rare term: the daemon reads the log a window at a time, back from the newest.
            Some(seq) => format!(
                "searching older events: none matches yet back to event {}…",
                qbo_core::text::thousands(u64::try_from(seq).unwrap_or(0))
            ),
            None if log.loading => "reading the audit log…".to_string(),
            None if log.is_empty() && log.filter_text.is_empty() => {
                "the audit log is empty".to_string()
            }
            None => "no event matches the filter; esc clears it".to_string(),
        };
        frame.render_widget(
            Paragraph::new(text).style(theme.style(Meaning::Muted)),
            area,
        );
        return;
    }
    let height = area.height.saturating_sub(1) as usize;
    let offset = crate::table::visible_offset(log.offset, log.cursor, height, log.visible_len());
    let header = Row::new([
        "AT (UTC)",
        "ACTOR",
        "ACTION",
        "TENANT",
        if area.width < 100 { "" } else { "OUTCOME" },
        "REASON",
    ])
    .style(theme.style(Meaning::Header));
    // A tenant's name whole where the screen has room for it (most are under 20), cut with
    // `…` on narrow ones; the reason keeps the rest. Under 100 columns the time loses its
    // year and the actor its tail, so that the reason keeps a readable part.
    let wide = area.width >= 110;
    let narrow = area.width < 100;
    let tenant_width: usize = if wide {
        20
    } else if narrow {
        15
    } else {
        12
    };
    let at_width: usize = if narrow { 11 } else { 16 };
    let actor_cap: usize = if narrow { 12 } else { MAX_ACTOR_WIDTH };
    // The outcome's glyph alone when narrow (✓ ✗ ⊘; the event's detail says it in words).
    let outcome_width: usize = if narrow { 2 } else { 9 };
    // Names run from "root" to "service:books-sync": as wide as the widest on screen,
    // between the old ten columns and a cap.
    let actor_width = log
        .window(offset, height)
        .map(|r| r.actor_short().chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10.min(actor_cap), actor_cap) as u16;
    // "support bundle" and "console opened" cut to ten columns read as other actions: the
    // column is as wide as the longest action on screen (the reason gives way), up to a cap.
    let action_width = log
        .window(offset, height)
        .map(|r| r.action.chars().count())
        .max()
        .unwrap_or(0)
        .min(if narrow {
            NARROW_ACTION_WIDTH
        } else {
            MAX_ACTION_WIDTH
        })
        // The reason keeps at least 20 columns; narrow screens keep the old ten.
        .min(usize::from(area.width).saturating_sub(
            at_width + usize::from(actor_width) + tenant_width + outcome_width + 5 + 20,
        ))
        .max(10) as u16;
    // What the reason has left: the row less the fixed columns and their six gaps.
    let reason_width = usize::from(area.width).saturating_sub(
        at_width
            + usize::from(actor_width)
            + usize::from(action_width)
            + tenant_width
            + outcome_width
            + 5,
    );
    // Each cell whole or visibly cut (`…`), never cut mid-word without a sign.
    let fit = |text: String, width: usize| qbo_core::present::clip(&text, width);
    let rows = log.window(offset, height).enumerate().map(|(i, r)| {
        let (o, m) = outcome(r);
        let row = Row::new([
            Cell::from(
                r.at.get(16 - at_width..16)
                    .unwrap_or(&r.at)
                    .replace('T', " "),
            ),
            Cell::from(fit(safe(&r.actor_short()), usize::from(actor_width))),
            Cell::from(fit(safe(&r.action), usize::from(action_width))),
            Cell::from(fit(
                r.tenant.as_deref().map_or(String::new(), safe),
                tenant_width,
            )),
            Cell::from(Span::styled(
                if narrow {
                    o.split(' ').next().unwrap_or_default().to_string()
                } else {
                    o
                },
                theme.style(m),
            )),
            Cell::from(fit(
                r.reason.as_deref().map_or(String::new(), safe),
                reason_width,
            )),
        ]);
        if offset + i == log.cursor {
            row.style(theme.style(Meaning::Selected))
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(at_width as u16),
        Constraint::Length(actor_width),
        Constraint::Length(action_width),
        Constraint::Length(tenant_width as u16),
        Constraint::Length(outcome_width as u16),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        area,
    );
}

/// The actor line of the event detail: an operator's account and uid, anything else in
/// words (it has no OS account).
fn actor(r: &AuditRecord) -> String {
    match r.kind() {
        None | Some(Kind::Operator) => format!("{} (uid {})", safe(&r.actor_account), r.actor_uid),
        Some(_) => safe(&r.actor_words()),
    }
}

pub fn draw_event(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(r) = app.audit.selected() else {
        return;
    };
    let opt = |v: &Option<String>| v.as_deref().map_or("—".to_string(), safe);
    let (o, m) = outcome(r);
    let fields: Vec<(&str, String, Meaning)> = vec![
        ("sequence", r.seq.to_string(), Meaning::Normal),
        ("at", r.at.clone(), Meaning::Normal),
        ("actor", actor(r), Meaning::Normal),
        (
            "actor kind",
            r.actor_kind_words().to_string(),
            Meaning::Normal,
        ),
        ("from", opt(&r.actor_ssh), Meaning::Normal),
        ("interface", safe(&r.interface), Meaning::Normal),
        // Only an operator has a role; no role is shown as none, never as an empty cell.
        (
            "role",
            if r.role.is_empty() {
                "— (not an operator)".to_string()
            } else {
                safe(&r.role)
            },
            Meaning::Normal,
        ),
        ("action", safe(&r.action), Meaning::Normal),
        ("tenant", opt(&r.tenant), Meaning::Normal),
        ("realm id", opt(&r.realm_id), Meaning::Normal),
        ("environment", opt(&r.environment), Meaning::Normal),
        ("outcome", o, m),
        ("error class", opt(&r.error_class), Meaning::Normal),
        ("reason", opt(&r.reason), Meaning::Normal),
        ("intuit_tid", opt(&r.intuit_tid), Meaning::Normal),
        ("request", opt(&r.request_id), Meaning::Normal),
    ];
    let text: Vec<Line> = fields
        .into_iter()
        .map(|(k, v, m)| {
            Line::from(vec![
                Span::styled(format!("{k:<13}"), theme.style(Meaning::Muted)),
                Span::styled(v, theme.style(m)),
            ])
        })
        .collect();
    let height = text.len() as u16 + 2;
    let r = popup(frame, area, 76, height);
    frame.render_widget(
        Paragraph::new(text)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" audit event · esc closes "),
            )
            .wrap(Wrap { trim: false }),
        r,
    );
}
