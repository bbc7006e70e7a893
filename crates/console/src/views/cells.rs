//! How one figure of a connection is written in a cell.

use crate::filter::{self, Outcome};
use crate::theme::{outcome_mark, Meaning};
use chrono::{DateTime, Utc};
use qbo_service::{ConnectionView, REFRESH_WINDOW_DAYS};

/// Within this many days of the 5-year limit the days are shown (the scheduler's default
/// warning window; the status says `expiring` when the configured one is reached).
pub const HARD_WARNING_DAYS: i64 = 30;

/// Time left, as a cell: `42m`, `3h` (the CLI writes `in 42m`; both from `present`).
fn span(secs: i64) -> String {
    qbo_core::present::span(secs.unsigned_abs())
}

pub use qbo_core::present::ago;

/// The access token's countdown: `42m`, `expired 3m ago`.
pub fn access(c: &ConnectionView, now: DateTime<Utc>) -> (String, Meaning) {
    if !c.status.has_tokens() {
        return ("—".into(), Meaning::Muted);
    }
    match c.access_expires_at {
        None => ("unknown".into(), Meaning::Muted),
        Some(t) if t <= now => (format!("expired {}", ago(t, now)), Meaning::Warn),
        Some(t) if (t - now).num_minutes() < 5 => (span((t - now).num_seconds()), Meaning::Warn),
        Some(t) => (span((t - now).num_seconds()), Meaning::Normal),
    }
}

/// The refresh window: a five-step gauge of days used, then days used/left.
pub fn window(c: &ConnectionView, now: DateTime<Utc>) -> (String, Meaning) {
    let (Some(used), Some(left)) = (
        filter::refresh_days_used(c, now),
        filter::refresh_days_left(c, now),
    ) else {
        return ("—".into(), Meaning::Muted);
    };
    let filled = ((used * 5 + REFRESH_WINDOW_DAYS - 1) / REFRESH_WINDOW_DAYS).clamp(0, 5) as usize;
    let gauge = format!("{}{}", "█".repeat(filled), "░".repeat(5 - filled));
    let meaning = match left {
        l if l < 10 => Meaning::Error,
        l if l < 30 => Meaning::Warn,
        _ => Meaning::Normal,
    };
    (format!("{gauge} {used}/{left}"), meaning)
}

/// Days to the 5-year limit, only within the warning window.
pub fn hard(c: &ConnectionView, now: DateTime<Utc>) -> (String, Meaning) {
    match filter::hard_days_left(c, now) {
        Some(d) if d <= HARD_WARNING_DAYS && c.status.has_tokens() => {
            (format!("{d}d"), Meaning::Warn)
        }
        _ => (String::new(), Meaning::Muted),
    }
}

/// The last refresh: outcome glyph, when, and the error class of a failure.
pub fn last_refresh(c: &ConnectionView, now: DateTime<Utc>) -> (String, Meaning) {
    let o = filter::refresh_outcome(c);
    let m = outcome_mark(o);
    let Some(at) = c.last_refresh_at else {
        return (format!("{} never", m.glyph), Meaning::Muted);
    };
    let when = ago(at, now);
    match (o, c.last_error_class.as_deref()) {
        (Outcome::Failed, class @ Some(_)) => (
            format!(
                "{} {} {}",
                m.glyph,
                when.trim_end_matches(" ago"),
                qbo_core::present::failure(class, c.last_error_detail.as_deref())
            ),
            m.meaning,
        ),
        _ => (format!("{} {when}", m.glyph), m.meaning),
    }
}

/// The last sync (a verify): outcome glyph and when.
pub fn last_sync(c: &ConnectionView, now: DateTime<Utc>) -> (String, Meaning) {
    let m = outcome_mark(filter::sync_outcome(c));
    match c.last_sync_at {
        Some(at) => (format!("{} {}", m.glyph, ago(at, now)), m.meaning),
        None => (format!("{} never", m.glyph), Meaning::Muted),
    }
}

/// Who acted last, and what they did.
pub fn actor(c: &ConnectionView) -> String {
    match (&c.last_actor, &c.last_action) {
        (Some(who), Some(what)) => format!("{who} {what}"),
        (Some(who), None) => who.clone(),
        _ => String::new(),
    }
}

pub fn env(c: &ConnectionView) -> &'static str {
    match c.environment {
        qbo_service::Environment::Production => "prod",
        qbo_service::Environment::Sandbox => "sbox",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qbo_service::fixtures::{at, NOW};

    #[test]
    fn countdowns_read_as_time_left_or_time_since() {
        let now = at(NOW);
        let rows = qbo_service::fixtures::every_state();
        assert_eq!(access(&rows[0], now).0, "42m");
        assert_eq!(access(&rows[2], now).0, "expired 3m ago");
        assert_eq!(access(&rows[6], now).0, "—");
        assert_eq!(window(&rows[3], now).0, "█████ 85/15");
        assert_eq!(window(&rows[0], now).0, "█░░░░ 1/99");
        assert_eq!(hard(&rows[4], now).0, "20d");
        assert_eq!(hard(&rows[0], now).0, "");
        // The failure in words (the stored class is `transient`, the detail HTTP 503).
        assert_eq!(last_refresh(&rows[2], now).0, "✗ 2m Intuit 503");
        assert_eq!(last_refresh(&rows[0], now).0, "✓ 19h ago");
    }
}
