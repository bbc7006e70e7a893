//! The question before a bulk action: what, on how many, and which keys answer it.

use super::popup;
use crate::app::App;
use crate::keymap::{Action, View};
use crate::safe;
use crate::table::Targets;
use crate::theme::{Meaning, Theme};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// Names listed before "and N more".
const LISTED: usize = 5;

/// The connections a question is about: the first few by name, or the filter that selects
/// them (and that the daemon counts again before it acts).
fn listed(app: &App, theme: &Theme, targets: &Targets, realm: bool) -> Vec<Line<'static>> {
    let ids = match targets {
        Targets::Ids(ids) => ids,
        Targets::Filter(m) => {
            let what = if m.filter.is_empty() {
                "  every connection".to_string()
            } else {
                format!(
                    "  every connection the filter `{}` selects",
                    safe(&m.filter)
                )
            };
            return vec![
                Line::raw(what),
                Line::styled(
                    format!("  {} now; if the count changes, nothing is done", m.count),
                    theme.style(Meaning::Muted),
                ),
            ];
        }
    };
    let mut lines: Vec<Line> = ids
        .iter()
        .take(LISTED)
        .map(|id| {
            let name = app.table.get(*id).map_or_else(
                || {
                    app.table
                        .tenant_of(*id)
                        .map_or_else(|| format!("connection {id}"), |t| safe(&t))
                },
                |c| {
                    if realm {
                        format!(
                            "{} ({}:{})",
                            safe(&c.tenant),
                            c.environment,
                            safe(&c.realm_id)
                        )
                    } else {
                        safe(&c.tenant)
                    }
                },
            );
            Line::raw(format!("  {name}"))
        })
        .collect();
    if ids.len() > LISTED {
        lines.push(Line::styled(
            format!("  … and {} more", ids.len() - LISTED),
            theme.style(Meaning::Muted),
        ));
    }
    lines
}

pub fn draw(
    app: &App,
    theme: &Theme,
    action: Action,
    targets: &Targets,
    frame: &mut Frame,
    area: Rect,
) {
    let mut text = vec![
        Line::styled(
            format!(
                "{} {} connections?",
                capitalized(action.name()),
                targets.len()
            ),
            theme.style(Meaning::Title),
        ),
        Line::raw(""),
    ];
    text.extend(listed(app, theme, targets, false));
    text.push(Line::raw(""));
    let keys = |a: Action| {
        app.keymap
            .keys_for(View::Confirm, a)
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join("/")
    };
    text.push(Line::from(vec![
        Span::styled(keys(Action::Confirm), theme.style(Meaning::Key)),
        Span::raw(format!(" {} all {}   ", action.name(), targets.len())),
        Span::styled(keys(Action::Back), theme.style(Meaning::Key)),
        Span::raw(" cancel"),
    ]));
    let height = text.len() as u16 + 2;
    let r = popup(frame, area, 50, height);
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" confirm ")),
        r,
    );
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The revoke question: which connections, and the words to type (the realm id of one,
/// the count of several) on the prompt line below.
pub fn draw_typed(
    app: &App,
    theme: &Theme,
    targets: &Targets,
    expected: &str,
    frame: &mut Frame,
    area: Rect,
) {
    let one = matches!(targets, Targets::Ids(ids) if ids.len() == 1);
    let mut text = vec![
        Line::styled(
            format!(
                "Revoke {} at Intuit?",
                if one {
                    "1 connection".to_string()
                } else {
                    format!("{} connections", targets.len())
                }
            ),
            theme.style(Meaning::Title),
        ),
        Line::raw("Intuit ends the grant; the local tokens are destroyed."),
        Line::raw(""),
    ];
    text.extend(listed(app, theme, targets, true));
    text.push(Line::raw(""));
    let what = if one { "the realm id" } else { "the count" };
    text.push(Line::from(vec![
        Span::raw(format!("Type {what} ")),
        Span::styled(safe(expected), theme.style(Meaning::Key)),
        Span::raw(" below."),
    ]));
    text.push(Line::raw("Enter revokes; Esc cancels."));
    let height = text.len() as u16 + 2;
    let r = popup(frame, area, 64, height);
    frame.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" revoke ")),
        r,
    );
}
