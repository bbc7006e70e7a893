//! The pace of the daemon's periodic loops (the scheduler, health checks, alerts): a tick
//! every period, late ticks delayed rather than bunched, and an end as soon as the daemon
//! stops.

use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{interval, Interval, MissedTickBehavior};

pub struct Ticks {
    ticker: Interval,
    stop: watch::Receiver<bool>,
}

impl Ticks {
    /// The first tick comes at once.
    pub fn new(period: Duration, stop: watch::Receiver<bool>) -> Ticks {
        let mut ticker = interval(period);
        // A pass that overran its period starts the next one a period later, not in a
        // burst of catch-up passes.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticks { ticker, stop }
    }

    /// Waits for the next tick; `false` once the daemon is stopping (or its stop signal is
    /// gone, which only happens when it is being torn down).
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.ticker.tick() => {}
            changed = self.stop.changed() => if changed.is_err() { return false },
        }
        !*self.stop.borrow()
    }

    /// The stop signal, for a pass that must notice a stop while it runs.
    pub fn stop(&self) -> &watch::Receiver<bool> {
        &self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_until_the_stop_is_raised() {
        let (tx, rx) = watch::channel(false);
        let mut t = Ticks::new(Duration::from_secs(10), rx);
        assert!(t.next().await, "the first tick comes at once");
        assert!(t.next().await, "then one a period later");
        tx.send(true).unwrap();
        assert!(!t.next().await, "a raised stop ends the loop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_stop_signal_ends_the_loop_instead_of_spinning() {
        let (tx, rx) = watch::channel(false);
        let mut t = Ticks::new(Duration::from_secs(3600), rx);
        assert!(t.next().await);
        drop(tx);
        assert!(!t.next().await);
    }
}
