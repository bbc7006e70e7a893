//! Every key of the screen underneath, from the same table that dispatches them, with the
//! filter language and the commands.

use super::popup;
use crate::tui::app::{App, Screen};
use crate::tui::filter::VALID_FORMS;
use crate::tui::keymap::View;
use crate::tui::theme::{Meaning, Theme};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let view = match app.screen {
        Screen::Connections => View::Connections,
        Screen::Detail(_) => View::Detail,
        Screen::Audit => View::Audit,
        Screen::Forecast => View::Forecast,
    };
    let mut text = vec![Line::styled(
        format!("keys: {}", view.title()),
        theme.style(Meaning::Header),
    )];
    for l in app.keymap.help(view, app.role(), app.session.demo) {
        let m = if l.refused.is_some() {
            Meaning::Muted
        } else {
            Meaning::Normal
        };
        text.push(Line::from(vec![
            Span::styled(format!("  {:<14}", l.keys), theme.style(Meaning::Key)),
            Span::styled(l.action.describe(), theme.style(m)),
        ]));
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
    text.push(Line::raw(
        "  :refresh  :verify  :filter TEXT  :sort COLUMN [desc]  :audit  :forecast  :help  :q",
    ));
    let r = popup(frame, area, 90.min(area.width), area.height);
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
