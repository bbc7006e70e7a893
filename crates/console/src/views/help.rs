//! Every key of the screen underneath, from the same table that dispatches them, with the
//! filter language and the commands.

use super::popup;
use crate::app::{App, Screen};
use crate::filter::VALID_FORMS;
use crate::keymap::View;
use crate::theme::{Meaning, Theme};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// Two spaces and fourteen columns of keys before each description.
const KEYS_COLUMN: usize = 16;

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let view = match app.screen {
        Screen::Connections => View::Connections,
        Screen::Detail(_) => View::Detail,
        Screen::Audit => View::Audit,
        Screen::Forecast => View::Forecast,
        Screen::Campaigns => View::Campaigns,
    };
    let mut text = vec![Line::styled(
        format!("keys: {}", view.title()),
        theme.style(Meaning::Header),
    )];
    let r = popup(frame, area, 90.min(area.width), area.height);
    // Inside the borders, after the keys' column: a description that does not fit wraps
    // under itself rather than under the keys.
    let room = usize::from(r.width).saturating_sub(2 + KEYS_COLUMN).max(20);
    for l in app.keymap.help(view, app.role(), app.session.demo) {
        let m = if l.refused.is_some() {
            Meaning::Muted
        } else {
            Meaning::Normal
        };
        for (i, part) in super::wrap_words(l.action.describe(), room)
            .into_iter()
            .enumerate()
        {
            let keys = if i == 0 { l.keys.as_str() } else { "" };
            text.push(Line::from(vec![
                Span::styled(format!("  {keys:<14}"), theme.style(Meaning::Key)),
                Span::styled(part, theme.style(m)),
            ]));
        }
        if let Some(why) = l.refused {
            text.push(Line::styled(
                format!("  {:<14}⊘ {why}", ""),
                theme.style(Meaning::Muted),
            ));
        }
    }
    text.push(Line::raw(""));
    text.push(Line::styled("filter (/)", theme.style(Meaning::Header)));
    text.push(Line::raw(format!("  {VALID_FORMS}")));
    text.push(Line::raw(""));
    text.push(Line::styled("commands (:)", theme.style(Meaning::Header)));
    text.push(Line::raw(format!("  {}", crate::app::command_synopsis())));
    frame.render_widget(
        Paragraph::new(text)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" help · esc closes "),
            )
            .wrap(Wrap { trim: false })
            .scroll((app.help_scroll.min(u16::MAX as usize) as u16, 0)),
        r,
    );
}
