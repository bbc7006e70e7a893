//! Meanings to styles. Widgets ask for `Meaning::Error`, never for red; the presets say what
//! red is. Every state is also written as a glyph and a word, so nothing depends on colour:
//! with `NO_COLOR` only modifiers (bold, dim, reversed) remain.

use crate::config::ThemeName;
use crate::service::Status;
use crate::tui::filter::Outcome;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Normal,
    Error,
    Warn,
    Ok,
    Muted,
    Selected,
    Marked,
    Header,
    Title,
    Key,
}

const MEANINGS: usize = 10;

fn index(m: Meaning) -> usize {
    match m {
        Meaning::Normal => 0,
        Meaning::Error => 1,
        Meaning::Warn => 2,
        Meaning::Ok => 3,
        Meaning::Muted => 4,
        Meaning::Selected => 5,
        Meaning::Marked => 6,
        Meaning::Header => 7,
        Meaning::Title => 8,
        Meaning::Key => 9,
    }
}

#[derive(Debug, Clone)]
pub struct Theme {
    styles: [Style; MEANINGS],
}

impl Theme {
    pub fn style(&self, m: Meaning) -> Style {
        self.styles[index(m)]
    }

    /// The configured preset, or none at all when `NO_COLOR` is set (https://no-color.org:
    /// any non-empty value).
    pub fn pick(name: ThemeName, no_color: Option<&str>) -> Theme {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return Theme::no_color();
        }
        match name {
            ThemeName::Dark => Theme::dark(),
            ThemeName::Light => Theme::light(),
        }
    }

    /// Colours from the 16 every terminal has, so 256 colours are more than enough.
    pub fn dark() -> Theme {
        let s = Style::default;
        Theme {
            styles: [
                s(),
                s().fg(Color::LightRed).add_modifier(Modifier::BOLD),
                s().fg(Color::Yellow),
                s().fg(Color::Green),
                s().fg(Color::DarkGray),
                s().bg(Color::Blue).fg(Color::White),
                s().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                s().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                s().add_modifier(Modifier::BOLD),
                s().fg(Color::Cyan),
            ],
        }
    }

    pub fn light() -> Theme {
        let s = Style::default;
        Theme {
            styles: [
                s(),
                s().fg(Color::Red).add_modifier(Modifier::BOLD),
                s().fg(Color::Rgb(0x9a, 0x5b, 0x00)),
                s().fg(Color::Rgb(0x1a, 0x7f, 0x37)),
                s().fg(Color::Gray),
                s().bg(Color::LightBlue).fg(Color::Black),
                s().fg(Color::Magenta).add_modifier(Modifier::BOLD),
                s().fg(Color::Blue).add_modifier(Modifier::BOLD),
                s().add_modifier(Modifier::BOLD),
                s().fg(Color::Blue),
            ],
        }
    }

    pub fn no_color() -> Theme {
        let s = Style::default;
        Theme {
            styles: [
                s(),
                s().add_modifier(Modifier::BOLD),
                s().add_modifier(Modifier::BOLD),
                s(),
                s().add_modifier(Modifier::DIM),
                s().add_modifier(Modifier::REVERSED),
                s().add_modifier(Modifier::BOLD),
                s().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                s().add_modifier(Modifier::BOLD),
                s().add_modifier(Modifier::BOLD),
            ],
        }
    }
}

/// How a state is shown: a glyph and a word beside whatever colour the meaning has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub glyph: &'static str,
    pub word: &'static str,
    pub meaning: Meaning,
}

pub fn status_mark(s: Status) -> Mark {
    let (glyph, word, meaning) = match s {
        Status::Active => ("✓", "active", Meaning::Ok),
        Status::Expiring => ("⚠", "expiring", Meaning::Warn),
        Status::NeedsReconnect => ("✗", "needs reconnect", Meaning::Error),
        Status::Pending => ("…", "pending", Meaning::Muted),
        Status::Revoking => ("↻", "revoking", Meaning::Warn),
        Status::Revoked => ("–", "revoked", Meaning::Muted),
    };
    Mark {
        glyph,
        word,
        meaning,
    }
}

/// A refresh or sync outcome.
pub fn outcome_mark(o: Outcome) -> Mark {
    let (glyph, word, meaning) = match o {
        Outcome::Ok => ("✓", "ok", Meaning::Ok),
        Outcome::Failed => ("✗", "failed", Meaning::Error),
        Outcome::Never => ("·", "never", Meaning::Muted),
    };
    Mark {
        glyph,
        word,
        meaning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_leaves_modifiers_only() {
        let t = Theme::pick(ThemeName::Dark, Some("1"));
        for m in [
            Meaning::Error,
            Meaning::Warn,
            Meaning::Ok,
            Meaning::Selected,
            Meaning::Header,
        ] {
            let st = t.style(m);
            assert_eq!((st.fg, st.bg), (None, None), "{m:?}");
        }
        assert!(t.style(Meaning::Selected).add_modifier == Modifier::REVERSED);
        // An empty NO_COLOR does not count (no-color.org).
        assert!(Theme::pick(ThemeName::Dark, Some(""))
            .style(Meaning::Error)
            .fg
            .is_some());
    }

    #[test]
    fn the_presets_differ_and_every_status_has_a_glyph_and_a_word() {
        assert_ne!(
            Theme::dark().style(Meaning::Ok),
            Theme::light().style(Meaning::Ok)
        );
        let mut glyph_words: Vec<_> = Status::ALL
            .into_iter()
            .map(|s| {
                let m = status_mark(s);
                assert!(!m.glyph.is_empty() && !m.word.is_empty());
                (m.glyph, m.word)
            })
            .collect();
        glyph_words.dedup();
        assert_eq!(glyph_words.len(), Status::ALL.len());
    }
}
