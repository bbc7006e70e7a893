//! Meanings to styles. Widgets ask for `Meaning::Error`, never for red; the presets say what
//! red is. Every state is also written as a glyph and a word, so nothing depends on colour:
//! with `NO_COLOR` only modifiers (bold, dim, reversed) remain.

use crate::filter::Outcome;
use crate::ConsoleError;
use qbo_core::config::ThemeName;
use qbo_core::present::{self, Tone};
use qbo_service::{Condition, Status};
use ratatui::style::{Color, Modifier, Style};
use std::collections::BTreeMap;
use std::str::FromStr;

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

/// Every meaning by the name `[tui.colors]` uses for it.
const NAMES: [(&str, Meaning); MEANINGS] = [
    ("normal", Meaning::Normal),
    ("error", Meaning::Error),
    ("warn", Meaning::Warn),
    ("ok", Meaning::Ok),
    ("muted", Meaning::Muted),
    ("selected", Meaning::Selected),
    ("marked", Meaning::Marked),
    ("header", Meaning::Header),
    ("title", Meaning::Title),
    ("key", Meaning::Key),
];

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
    /// any non-empty value). `[tui.colors]` goes on top with `with_colors`, except under
    /// `NO_COLOR`, which wins.
    pub fn pick(name: ThemeName, no_color: Option<&str>) -> Theme {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return Theme::no_color();
        }
        match name {
            ThemeName::Dark => Theme::dark(),
            ThemeName::Light => Theme::light(),
        }
    }

    /// The preset with `[tui.colors]` applied: meaning name to a colour ("red",
    /// "lightblue", "#1a7f37", or a 256-colour index "208"), the text's colour for most
    /// meanings and the bar's for `selected`. Modifiers stay, and the glyph and word beside
    /// each state stay, so no override can make a state depend on colour alone. A mistake
    /// names the key and what is allowed.
    pub fn with_colors(mut self, colors: &BTreeMap<String, String>) -> Result<Theme, ConsoleError> {
        for (name, value) in colors {
            let Some((_, meaning)) = NAMES.iter().find(|(n, _)| n == name) else {
                return Err(ConsoleError::from(format!(
                    "[tui.colors] {name:?} is not a meaning; use one of {}",
                    NAMES.map(|(n, _)| n).join(", ")
                )));
            };
            let color = Color::from_str(value.trim()).map_err(|_| {
                format!(
                    "[tui.colors] {name} = {value:?} is not a colour; use a name (\"red\", \"lightblue\"), \"#rrggbb\" or a 256-colour index (\"208\")"
                )
            })?;
            let style = &mut self.styles[index(*meaning)];
            *style = if *meaning == Meaning::Selected {
                style.bg(color)
            } else {
                style.fg(color)
            };
        }
        Ok(self)
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

/// A connection's state, in the words every interface uses (`present`).
pub fn status_mark(s: Status) -> Mark {
    Mark::from(present::status(s))
}

/// How a connection is (`↯ failing` for a live one whose refreshes fail).
pub fn condition_mark(c: Condition) -> Mark {
    Mark::from(present::condition(c))
}

/// A refresh or sync outcome.
pub fn outcome_mark(o: Outcome) -> Mark {
    Mark::from(present::outcome(o))
}

impl From<present::Mark> for Mark {
    fn from(m: present::Mark) -> Mark {
        Mark {
            glyph: m.glyph,
            word: m.word,
            meaning: match m.tone {
                Tone::Ok => Meaning::Ok,
                Tone::Warn => Meaning::Warn,
                Tone::Error => Meaning::Error,
                Tone::Muted => Meaning::Muted,
            },
        }
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

    #[test]
    fn colours_can_be_overridden_by_meaning_and_mistakes_name_the_key() {
        let colors = BTreeMap::from([
            ("error".to_string(), "#ff8800".to_string()),
            ("selected".to_string(), "208".to_string()),
        ]);
        let t = Theme::dark().with_colors(&colors).unwrap();
        assert_eq!(t.style(Meaning::Error).fg, Some(Color::Rgb(0xff, 0x88, 0)));
        // The bold that marks an error without colour stays.
        assert!(t
            .style(Meaning::Error)
            .add_modifier
            .contains(Modifier::BOLD));
        assert_eq!(t.style(Meaning::Selected).bg, Some(Color::Indexed(208)));
        assert_eq!(t.style(Meaning::Ok), Theme::dark().style(Meaning::Ok));

        let bad = BTreeMap::from([("eror".to_string(), "red".to_string())]);
        let e = Theme::dark().with_colors(&bad).unwrap_err().0;
        assert!(e.contains("\"eror\"") && e.contains("error, warn"), "{e}");
        let bad = BTreeMap::from([("ok".to_string(), "greenish".to_string())]);
        let e = Theme::dark().with_colors(&bad).unwrap_err().0;
        assert!(
            e.contains("ok = \"greenish\"") && e.contains("#rrggbb"),
            "{e}"
        );
    }
}
