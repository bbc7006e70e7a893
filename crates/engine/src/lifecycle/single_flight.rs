//! In-process single flight: one refresh of one connection at a time inside this process.
//! Across processes the database lease does the same job; this layer keeps a process's own
//! callers (scheduler, CLI over the socket, token API) queued instead of polling the lease.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct SingleFlight {
    slots: Mutex<HashMap<i64, Arc<AsyncMutex<()>>>>,
}

pub struct FlightGuard<'a> {
    owner: &'a SingleFlight,
    key: i64,
    guard: Option<OwnedMutexGuard<()>>,
}

impl SingleFlight {
    pub async fn enter(&self, key: i64) -> FlightGuard<'_> {
        let slot = {
            // A poisoned map only means another thread panicked while inserting; the map
            // itself is still consistent, so keep using it.
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(key).or_default().clone()
        };
        let guard = slot.lock_owned().await;
        FlightGuard {
            owner: self,
            key,
            guard: Some(guard),
        }
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut slots = self.owner.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds the slot now: nobody is waiting, so forget it.
        if slots
            .get(&self.key)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            slots.remove(&self.key);
        }
    }
}
