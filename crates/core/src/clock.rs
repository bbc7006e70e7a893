//! Where "now" comes from. Production uses the system clock; tests and the emulator-driven
//! scenarios move a manual clock so that 400 days can pass in seconds.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// System time shifted by an offset (in milliseconds) that tests can advance.
    Offset(Arc<AtomicI64>),
}

impl Clock {
    pub fn offset() -> Self {
        Clock::Offset(Arc::new(AtomicI64::new(0)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Offset(ms) => Utc::now() + Duration::milliseconds(ms.load(Ordering::Relaxed)),
        }
    }

    /// Moves an offset clock forward; a no-op on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Offset(ms) = self {
            ms.fetch_add(by.num_milliseconds(), Ordering::Relaxed);
        }
    }
}
