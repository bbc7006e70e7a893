//! Text from outside (tenant names, Intuit's company names and error details, audit
//! fields) made safe to print on an operator's terminal.
//!
//! A terminal obeys control characters: ESC starts sequences that clear the screen, retitle
//! the window or rewrite what is shown; CR moves back over a line; Unicode bidi controls
//! reorder what follows so `evil.com` reads as `moc.live`. A company name comes from
//! Intuit's CompanyInfo, which the customer sets, so none of these may reach the terminal
//! raw. Each one is shown as a visible escape instead (`\x1b`, `\r`, `\u{202e}`), so the
//! operator still sees that something odd is in the name. Every human-readable interface
//! (CLI, console) prints through this module; JSON output stays faithful, as JSON escapes.
//!
//! Backslashes are left alone: escaping is idempotent, so a layer that applies it again to
//! already-escaped text changes nothing.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal raw: C0 controls, DEL, C1 controls, the Unicode
/// bidirectional controls, and the Unicode line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        // Arabic letter mark, left-to-right and right-to-left marks.
        | '\u{061c}' | '\u{200e}' | '\u{200f}'
        // Embeddings and overrides (LRE, RLE, PDF, LRO, RLO).
        | '\u{202a}'..='\u{202e}'
        // Isolates (LRI, RLI, FSI, PDI).
        | '\u{2066}'..='\u{2069}'
        // Line and paragraph separators: some terminals and viewers break the line there.
        | '\u{2028}' | '\u{2029}')
}

fn write_escape(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

fn escape_with(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_here = |c: char| is_unsafe(c) && !keep(c);
    if !s.chars().any(unsafe_here) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_here(c) {
            // Writing to a String cannot fail.
            let _ = write_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One field (a name, a reason, a detail) as it may be printed: every unsafe character,
/// newlines included, replaced by a visible escape. Borrowed when nothing needed escaping.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// A block already laid out in lines: like [`terminal_safe`] but keeps `\n`, so it can
/// guard a whole rendered output without undoing its layout.
pub fn terminal_safe_lines(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c == '\n')
}

/// `terminal_safe` as a `Display`, for `format!` without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub struct Safe<'a>(pub &'a str);

impl fmt::Display for Safe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(is_unsafe) {
            f.write_str(&rest[..i])?;
            // `find` returned the start of a char, so there is one.
            let c = rest[i..].chars().next().unwrap_or_default();
            write_escape(f, c)?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// At most `max` characters of `s`, cut at a character boundary and marked with `…` when
/// cut, for text from outside that is kept (a company name) rather than refused.
pub fn truncate_chars(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
            Cow::Owned(format!("{}…", &s[..end]))
        }
    }
}

/// A count with its thousands grouped, as people read large numbers: `1,000,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Strips a password from a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    const HOSTILE: &str = "a\u{1b}[2Jb\u{1b}]0;pwned\u{7}c\rd\0e\u{202e}moc.live\u{9b}31m\u{7f}";

    fn has_unsafe_byte(s: &str) -> bool {
        let b = s.as_bytes();
        b.iter().any(|&x| x < 0x20 || x == 0x7f)
            // C1 controls in UTF-8: C2 80 ..= C2 9F.
            || b.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
            || s.contains('\u{202e}')
    }

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for s in [
            "Acme Ltd",
            "Société Générale",
            "東京株式会社",
            r"DOMAIN\user",
            "",
        ] {
            assert!(matches!(terminal_safe(s), Cow::Borrowed(x) if x == s));
        }
    }

    #[test]
    fn escape_sequences_and_controls_become_visible_escapes() {
        let out = terminal_safe(HOSTILE);
        assert!(!has_unsafe_byte(&out), "{out:?}");
        assert_eq!(
            out,
            r"a\x1b[2Jb\x1b]0;pwned\x07c\rd\x00e\u{202e}moc.live\u{9b}31m\x7f"
        );
    }

    #[test]
    fn every_bidi_control_is_escaped() {
        for c in ('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}'])
        {
            let s = format!("x{c}y");
            let out = terminal_safe(&s);
            assert!(!out.contains(c), "{c:?} survived: {out:?}");
            assert_eq!(out, format!("x\\u{{{:x}}}y", c as u32));
        }
    }

    #[test]
    fn newlines_are_escaped_in_a_field_and_kept_in_a_block() {
        assert_eq!(terminal_safe("a\nb\tc"), r"a\nb\tc");
        assert_eq!(terminal_safe_lines("a\nb\r\x1b\n"), "a\nb\\r\\x1b\n");
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = terminal_safe(HOSTILE).into_owned();
        assert_eq!(terminal_safe(&once), once);
        assert_eq!(terminal_safe_lines(&once), once);
    }

    #[test]
    fn the_display_wrapper_prints_what_terminal_safe_returns() {
        for s in [HOSTILE, "plain", "\u{202e}", "end\u{1b}", "é\u{85}ü"] {
            assert_eq!(Safe(s).to_string(), terminal_safe(s));
        }
    }

    #[test]
    fn truncation_keeps_whole_characters_and_marks_the_cut() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 4).chars().count(), 4);
        assert_eq!(
            truncate_chars(&"x".repeat(1_000_000), 200).chars().count(),
            200
        );
    }

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://ops:hunter2@db/qbo"),
            "postgres://ops:***@db/qbo"
        );
    }
}
