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

use crate::domain::Status;
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
