//! How often Intuit's Disconnect URL may have a connection checked: at most once per
//! connection per `EVERY`, however many requests name it. The URL is anonymous, so without
//! this anyone could make the daemon call CompanyInfo for a realm as often as their request
//! budget allows, spending that realm's API quota at Intuit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The least time between two checks of one connection on the URL's account.
pub const EVERY: Duration = Duration::from_secs(10 * 60);
/// Connections remembered before stale ones are dropped (the table stays bounded).
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct CheckGate {
    last: Mutex<HashMap<i64, Instant>>,
}

impl CheckGate {
    /// Whether connection `id` may be checked now; counts the check when it may.
    pub fn admit(&self, id: i64, now: Instant) -> bool {
        // A poisoned lock only means another request panicked while counting.
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() >= SWEEP_AT {
            last.retain(|_, at| now.duration_since(*at) < EVERY);
        }
        match last.get(&id) {
            Some(at) if now.duration_since(*at) < EVERY => false,
            _ => {
                last.insert(id, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_checked_once_per_period_and_others_apart() {
        let g = CheckGate::default();
        let t = Instant::now();
        assert!(g.admit(1, t));
        assert!(!g.admit(1, t + Duration::from_secs(1)));
        assert!(g.admit(2, t + Duration::from_secs(1)));
        assert!(!g.admit(1, t + EVERY - Duration::from_millis(1)));
        assert!(g.admit(1, t + EVERY));
    }
}
