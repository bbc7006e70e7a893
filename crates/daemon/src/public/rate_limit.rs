//! A per-address request budget for the public listener: at most `[public]
//! rate_limit_per_minute` requests from one browser address in any minute-long window,
//! counted in memory (each daemon counts its own).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered before stale ones are dropped, so a flood of addresses cannot grow
/// the table without bound.
const SWEEP_AT: usize = 10_000;

pub struct RateLimiter {
    per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `addr`; `Err(wait)` when its budget for this window is spent.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked while counting: the counts
        // are still usable.
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(WINDOW.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_budget_per_window_and_others_are_counted_apart() {
        let r = RateLimiter::new(3);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(r.check(a, t).is_ok());
        }
        assert!(r.check(a, t).is_err());
        assert!(r.check(b, t).is_ok());
        assert!(r.check(a, t + WINDOW).is_ok());
    }
}
