//! The console: one more client of the service, drawn in the terminal.
//!
//! This is its pure core: the state and its one `update` (`app`), what comes in and goes
//! out (`event`), the keys (`keymap`), the filter language (`filter`), the order
//! (`urgency`), the colours (`theme`) and the drawing (`views`). None of it does I/O: it is
//! tested by feeding messages and by drawing into a test backend.

pub mod app;
pub mod audit_log;
pub mod event;
pub mod filter;
pub mod key;
pub mod keymap;
pub mod table;
pub mod theme;
pub mod urgency;
pub mod views;

#[cfg(test)]
mod fixtures;

/// Text from the outside world (tenant and company names, error details) made harmless for
/// a terminal: control characters (C0, DEL, C1) would move the cursor or start an escape
/// sequence, and bidirectional overrides would make a name read as another. Each is shown
/// as its `\u{…}` escape instead.
fn safe(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(safe("acme"), "acme");
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(safe("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(safe("evil\u{202e}gnp.exe"), "evil\\u{202e}gnp.exe");
        assert_eq!(safe("tab\there\n"), "tab\\u{9}here\\u{a}");
        assert_eq!(safe("Zoë Ltd"), "Zoë Ltd");
    }
}
