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
/// a terminal, the same way the CLI shows it (`crate::text`): control characters would
/// move the cursor or start an escape sequence, and bidirectional overrides would make a
/// name read as another.
fn safe(s: &str) -> String {
    crate::text::terminal_safe(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(safe("acme"), "acme");
        for hostile in [
            "a\u{1b}[2Jb",
            "x\u{9b}31m",
            "evil\u{202e}gnp.exe",
            "tab\there\n",
        ] {
            let shown = safe(hostile);
            assert!(
                !shown.chars().any(crate::text::is_unsafe),
                "{hostile:?} shown as {shown:?}"
            );
        }
        assert_eq!(safe("Zoë Ltd"), "Zoë Ltd");
    }
}
