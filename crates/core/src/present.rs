//! The product's words for people: how a connection's state, an outcome and a length of
//! time are written, once, for every human interface (the CLI, the console, support
//! bundles, reports and the reasons stored in the audit log).
//!
//! Two interfaces that word the same fact differently make an operator wonder which one is
//! right; the CLI once showed a revoking connection as `…` and the console as `↻`. Every
//! renderer takes its words from here, and `interfaces_agree` (a test at the crate's top)
//! fails when the CLI's table and the console's cells say different things about the same
//! row. Colour is the console's business (`tui::theme`), from the `Tone` given here;
//! a glyph and a word always go together, so no state depends on colour alone.

use crate::domain::{Condition, Status};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How a state should strike the reader; the console maps it to a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Error,
    Muted,
}

/// A state as shown: a glyph and a word, and its tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub glyph: &'static str,
    pub word: &'static str,
    pub tone: Tone,
}

impl Mark {
    /// The glyph and the word, as one label: `✓ active`.
    pub fn label(&self) -> String {
        format!("{} {}", self.glyph, self.word)
    }
}

/// A connection's lifecycle state.
pub fn status(s: Status) -> Mark {
    let (glyph, word, tone) = match s {
        Status::Active => ("✓", "active", Tone::Ok),
        Status::Expiring => ("⚠", "expiring", Tone::Warn),
        Status::NeedsReconnect => ("✗", "needs reconnect", Tone::Error),
        Status::Pending => ("…", "pending", Tone::Muted),
        Status::Revoking => ("↻", "revoking", Tone::Warn),
        Status::Revoked => ("–", "revoked", Tone::Muted),
    };
    Mark { glyph, word, tone }
}

/// How a connection is: its lifecycle state's mark, or `↯ failing` for a live one whose
/// refreshes fail (a green tick on a connection that failed eight times told a lie).
pub fn condition(c: Condition) -> Mark {
    c.lifecycle().map_or(
        Mark {
            glyph: "↯",
            word: "failing",
            tone: Tone::Error,
        },
        status,
    )
}

/// A connection's condition as a cell or a column says it: the mark, and for a failing one
/// how many refreshes in a row failed (`↯ failing ×8`).
pub fn condition_label(status: Status, consecutive_failures: i64) -> String {
    labelled(status, consecutive_failures, |word| word)
}

/// As [`condition_label`], in the fewest words (`✗ reconnect`): what a narrow terminal's
/// status column holds, as the header's counts shorten it.
pub fn condition_label_short(status: Status, consecutive_failures: i64) -> String {
    labelled(status, consecutive_failures, |word| {
        word.rsplit(' ').next().unwrap_or(word)
    })
}

fn labelled(
    status: Status,
    consecutive_failures: i64,
    said: fn(&'static str) -> &'static str,
) -> String {
    let c = Condition::of(status, consecutive_failures);
    let m = condition(c);
    let label = format!("{} {}", m.glyph, said(m.word));
    match c {
        Condition::Failing => format!("{label} ×{consecutive_failures}"),
        _ => label,
    }
}

/// How the last refresh or sync of a connection went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Never,
}

pub fn outcome(o: Outcome) -> Mark {
    let (glyph, word, tone) = match o {
        Outcome::Ok => ("✓", "ok", Tone::Ok),
        Outcome::Failed => ("✗", "failed", Tone::Error),
        Outcome::Never => ("·", "never", Tone::Muted),
    };
    Mark { glyph, word, tone }
}

/// Why a call to Intuit failed, in a few words a person reads at a glance (`Intuit 503`,
/// `rate limited`, `timed out`), from the stored error class and detail. The class's
/// identifier stays in JSON and in the detail pane; a cell cut to `invalid_` said nothing.
pub fn failure(class: Option<&str>, detail: Option<&str>) -> String {
    let detail = detail.unwrap_or_default();
    let status = detail
        .strip_prefix("HTTP ")
        .and_then(|rest| rest.get(..3))
        .filter(|code| code.bytes().all(|b| b.is_ascii_digit()));
    // At most 12 columns, so that `✗ 59d ` and the words fit the console's column.
    match class {
        Some("invalid_grant") => "dead grant".into(),
        Some("invalid_client") => "bad client".into(),
        Some("rate_limited") => "rate limited".into(),
        Some("transient") if detail.contains("not a token response") => "garbled".into(),
        Some("transient") if detail.starts_with("timed out") => "timed out".into(),
        Some("transient") if detail.starts_with("could not connect") => "unreachable".into(),
        Some("transient") if detail.starts_with("the connection") => "cut off".into(),
        Some("transient") => match status {
            Some(code) => format!("Intuit {code}"),
            None => "Intuit error".into(),
        },
        Some(other) => other.replace('_', " "),
        None => "failed".into(),
    }
}

/// `text` in at most `width` columns: whole, or cut at a word's end where one is near and
/// marked `…`, never mid-word without the mark.
pub fn clip(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for ch in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(ch);
        used += w;
    }
    // Back to the last space when it keeps most of the room, so that a word is either
    // whole or visibly cut.
    if let Some(space) = out.trim_end().rfind(' ') {
        if space * 3 >= out.len() * 2 {
            out.truncate(space);
        }
    }
    let mut out = out.trim_end().to_string();
    out.push('…');
    out
}

/// A length of time for a cell or a line, in its largest whole unit, the precision a
/// person acts on and a column can hold: `42s`, `5m`, `3h`, `12d`. Never milliseconds.
/// (Where the exact moment matters, the detail pane and `show` print it in RFC 3339 too.)
pub fn span(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A moment against now: `in 42m`, `3h ago`, `0s ago` (as short as the rest, so a
/// column never cuts what follows it).
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (t - now).num_seconds();
    let s = span(secs.unsigned_abs());
    if secs > 0 {
        format!("in {s}")
    } else {
        format!("{s} ago")
    }
}

/// A moment in the past: `3h ago` (a moment a skewed clock puts ahead reads `0s ago`).
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    relative(t.min(now), now)
}

/// A wait or a limit written into a sentence (a reason, a refusal): whole seconds and up,
/// `29s`, `1m 30s`, `2h`, in the form `humantime` reads back (support bundles parse the
/// backoff out of refresh reasons). Sub-second waits round up to `1s`, never to `0s`.
pub fn duration(d: Duration) -> String {
    let secs = if d.subsec_nanos() > 0 {
        d.as_secs() + 1
    } else {
        d.as_secs()
    };
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn failures_read_as_words_that_fit_a_cell() {
        let said = |class: &str, detail: &str| failure(Some(class), Some(detail));
        assert_eq!(
            said("transient", "HTTP 503 with an HTML page"),
            "Intuit 503"
        );
        assert_eq!(
            said("transient", "timed out waiting for Intuit"),
            "timed out"
        );
        assert_eq!(
            said("transient", "could not connect to Intuit"),
            "unreachable"
        );
        assert_eq!(
            said("transient", "HTTP 200 but the body is not a token response"),
            "garbled"
        );
        assert_eq!(
            said("rate_limited", "HTTP 429 fault 003001"),
            "rate limited"
        );
        assert_eq!(said("invalid_grant", "Token invalid"), "dead grant");
        assert_eq!(said("invalid_client", ""), "bad client");
        for class in [
            "invalid_grant",
            "invalid_client",
            "rate_limited",
            "transient",
            "other",
        ] {
            assert!(said(class, "HTTP 500 with an XML body").chars().count() <= 12);
        }
    }

    #[test]
    fn a_clipped_text_is_whole_or_marked_and_never_wider_than_asked() {
        assert_eq!(clip("acme", 10), "acme");
        assert_eq!(
            clip("role viewer lacks permission", 20),
            "role viewer lacks…"
        );
        assert_eq!(clip("silver-birch-den", 12), "silver-birc…");
        assert_eq!(clip("anything", 0), "");
        assert_eq!(clip("ab", 1), "…");
        for w in 1..30 {
            let c = clip("first hand-out of this access token today", w);
            assert!(
                unicode_width::UnicodeWidthStr::width(c.as_str()) <= w,
                "{w}: {c}"
            );
            assert!(c.ends_with('…'), "{w}: {c}");
        }
    }

    #[test]
    fn spans_read_at_a_persons_precision() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (3 * 3600 + 7 * 60 + 59, "3h"),
            (86_399, "23h"),
            (86_400, "1d"),
            (100 * 86_400 + 5, "100d"),
        ];
        for (secs, want) in cases {
            assert_eq!(span(secs), want, "{secs}s");
        }
    }

    #[test]
    fn moments_read_as_time_left_or_time_since() {
        let now = at("2026-03-01T12:00:00Z");
        assert_eq!(relative(at("2026-03-01T12:42:00Z"), now), "in 42m");
        assert_eq!(relative(at("2026-03-01T08:53:00Z"), now), "3h ago");
        assert_eq!(relative(now, now), "0s ago");
        assert_eq!(ago(at("2026-02-27T12:00:00Z"), now), "2d ago");
        assert_eq!(ago(at("2026-03-01T12:00:05Z"), now), "0s ago");
    }

    #[test]
    fn durations_in_sentences_carry_no_milliseconds_and_read_back() {
        for (d, want) in [
            (Duration::from_millis(29_956), "30s"),
            (Duration::from_millis(1), "1s"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(7200), "2h"),
        ] {
            let text = duration(d);
            assert_eq!(text, want);
            assert!(!text.contains("ms"));
            let back = humantime::parse_duration(&text).unwrap();
            assert!(back >= d && back - d < Duration::from_secs(1), "{text}");
        }
    }

    #[test]
    fn every_state_has_its_own_glyph_and_word() {
        let labels: std::collections::HashSet<String> =
            Status::ALL.iter().map(|s| status(*s).label()).collect();
        assert_eq!(labels.len(), Status::ALL.len());
        for s in Status::ALL {
            // The word is the state's own name, spaced for people.
            assert_eq!(status(s).word, s.as_str().replace('_', " "));
        }
    }
}
