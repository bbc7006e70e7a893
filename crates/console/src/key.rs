//! Keys by name: how `[tui.keys]` writes them, and how the footer and help show them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::fmt;

/// A key as the tables know it. Shift is folded into the character it produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mods = match code {
            // Shift is part of what these keys are: 'R', '?', shift-tab.
            KeyCode::Char(_) | KeyCode::BackTab => mods - KeyModifiers::SHIFT,
            _ => mods,
        } & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        Key { code, mods }
    }

    pub fn of(e: &KeyEvent) -> Key {
        Key::new(e.code, e.modifiers)
    }

    pub(crate) fn plain(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    pub(crate) fn named(code: KeyCode) -> Key {
        Key::new(code, KeyModifiers::NONE)
    }

    pub(crate) fn ctrl(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// "x", "R", "?", "ctrl-r", "alt-x", "shift-tab", "enter", "pgdn", "f5".
    pub fn parse(text: &str) -> Option<Key> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            let cut = ["ctrl-", "alt-", "shift-"]
                .into_iter()
                .find(|p| lower.starts_with(p) && rest.len() > p.len());
            match cut {
                Some("ctrl-") => mods |= KeyModifiers::CONTROL,
                Some("alt-") => mods |= KeyModifiers::ALT,
                Some(_) => mods |= KeyModifiers::SHIFT,
                None => break,
            }
            rest = &rest[cut.map_or(0, str::len)..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            }),
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "space" => KeyCode::Char(' '),
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                f if f.starts_with('f') => match f[1..].parse::<u8>() {
                    Ok(n @ 1..=12) => KeyCode::F(n),
                    _ => return None,
                },
                _ => return None,
            },
        };
        if code == KeyCode::BackTab {
            mods -= KeyModifiers::SHIFT;
        }
        Some(Key::new(code, mods))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("del"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            _ => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        Key::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn key_names_round_trip() {
        for s in [
            "x", "R", "?", "ctrl-r", "alt-x", "enter", "esc", "pgdn", "f5", "space", "tab",
        ] {
            let k = key(s);
            assert_eq!(Key::parse(&k.to_string()), Some(k), "{s}");
        }
        assert_eq!(key("CTRL-R"), key("ctrl-r"));
        assert_eq!(key("shift-tab"), Key::named(KeyCode::BackTab));
        // What crossterm sends for shift-tab.
        let event = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(Key::of(&event), key("shift-tab"));
        assert!(Key::parse("f13").is_none());
        assert!(Key::parse("hyper-x").is_none());
        assert!(Key::parse("").is_none());
    }
}
