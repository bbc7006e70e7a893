//! The emulator's clock: wall time plus an offset that tests move forward, so
//! 100-day and 5-year expiries can be reached without waiting.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub(crate) struct SimClock {
    offset_ms: AtomicI64,
}

impl SimClock {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the clock forward; a negative `by` is ignored because expiry
    /// bookkeeping assumes time never runs backwards.
    pub(crate) fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds();
        if ms > 0 {
            self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        }
    }

    pub(crate) fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_forward_only() {
        let c = SimClock::default();
        c.advance(Duration::days(100));
        assert_eq!(c.offset(), Duration::days(100));
        c.advance(Duration::days(-5));
        assert_eq!(c.offset(), Duration::days(100));
        assert!(c.now() > Utc::now() + Duration::days(99));
    }
}
