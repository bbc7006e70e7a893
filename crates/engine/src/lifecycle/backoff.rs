//! Retry timing after a transient failure: exponential, jittered, capped, and never sooner
//! than Intuit's Retry-After unless that is beyond the cap.

use super::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use std::time::Duration;

/// Delay before the next attempt after `failures` consecutive failures (1 = first).
pub fn next_delay(
    failures: u32,
    base: Duration,
    cap: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    // Full jitter over the upper half: spreads a herd without ever retrying too eagerly.
    let half = raw / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis().max(1) as u64);
    let delay = (half + Duration::from_millis(jitter)).min(cap);
    // Retry-After is honoured up to the cap: a rate limit asking for more than that (or a
    // garbled header asking for a year) must not park a connection until its refresh
    // token lapses.
    match retry_after {
        Some(ra) if ra > delay => ra.min(cap),
        _ => delay,
    }
}

/// When a connection that failed once more is tried next.
pub(super) struct Retry {
    /// Failures in a row, this one included.
    pub failures: u32,
    pub delay: Duration,
    pub at: DateTime<Utc>,
}

impl Engine {
    /// The next attempt after one more failure of a connection that had failed
    /// `consecutive_failures` times in a row: the `[refresh]` backoff, or Intuit's
    /// Retry-After up to its cap. Refresh and revoke retry on the same schedule.
    pub(super) fn retry(
        &self,
        consecutive_failures: i64,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Retry> {
        let failures = u32::try_from(consecutive_failures + 1).unwrap_or(u32::MAX);
        let cfg = self.refresh_config();
        let delay = next_delay(failures, cfg.backoff_base, cfg.backoff_cap, retry_after);
        Ok(Retry {
            failures,
            delay,
            at: now + chrono::Duration::from_std(delay)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let base = Duration::from_secs(30);
        let cap = Duration::from_secs(1800);
        for f in 1..40 {
            let d = next_delay(f, base, cap, None);
            assert!(d <= cap, "failure {f}: {d:?} beyond cap");
            let floor = (base.saturating_mul(1 << (f - 1).min(20)).min(cap)) / 2;
            assert!(d >= floor, "failure {f}: {d:?} below {floor:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(600);
        let d = next_delay(1, base, cap, Some(Duration::from_secs(120)));
        assert_eq!(d, Duration::from_secs(120));
        // A year-long Retry-After would let the refresh token lapse: the cap wins.
        let year = Duration::from_secs(365 * 86_400);
        assert_eq!(next_delay(1, base, cap, Some(year)), cap);
        // Shorter than our own backoff: ours stands.
        let d = next_delay(12, base, cap, Some(Duration::from_secs(1)));
        assert!(d >= cap / 2, "{d:?}");
    }
}
