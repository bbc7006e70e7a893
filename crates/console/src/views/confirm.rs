//! The question before a bulk action: what, on how many, and which keys answer it.

use super::popup;
use crate::app::App;
use crate::keymap::{Action, View};
use crate::safe;
use crate::theme::{Meaning, Theme};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// Names listed before "and N more".
const LISTED: usize = 5;

pub fn draw(app: &App, theme: &Theme, action: Action, ids: &[i64], frame: &mut Frame, area: Rect) {
    let mut text = vec![
        Line::styled(
            format!("{} {} connections?", capitalized(action.name()), ids.len()),
            theme.style(Meaning::Title),
        ),
        Line::raw(""),
    ];
    for id in ids.iter().take(LISTED) {
        let name = app
            .table
            .get(*id)
            .map_or_else(|| format!("connection {id}"), |c| safe(&c.tenant));
        text.push(Line::raw(format!("  {name}")));
    }
    if ids.len() > LISTED {
        text.push(Line::styled(
            format!("  … and {} more", ids.len() - LISTED),
            theme.style(Meaning::Muted),
        ));
    }
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
        Span::raw(format!(" {} all {}   ", action.name(), ids.len())),
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
    ids: &[i64],
    expected: &str,
    frame: &mut Frame,
    area: Rect,
) {
    let mut text = vec![
        Line::styled(
            format!(
                "Revoke {} at Intuit?",
                match ids {
                    [_] => "1 connection".to_string(),
                    many => format!("{} connections", many.len()),
                }
            ),
            theme.style(Meaning::Title),
        ),
        Line::raw("Intuit ends the grant; the local tokens are destroyed."),
        Line::raw(""),
    ];
    for id in ids.iter().take(LISTED) {
        let name = app.table.get(*id).map_or_else(
            || format!("connection {id}"),
            |c| {
                format!(
                    "{} ({}:{})",
                    safe(&c.tenant),
                    c.environment,
                    safe(&c.realm_id)
                )
            },
        );
        text.push(Line::raw(format!("  {name}")));
    }
    if ids.len() > LISTED {
        text.push(Line::styled(
            format!("  … and {} more", ids.len() - LISTED),
            theme.style(Meaning::Muted),
        ));
    }
    text.push(Line::raw(""));
    let what = if ids.len() == 1 {
        "the realm id"
    } else {
        "the count"
    };
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
