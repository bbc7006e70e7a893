//! A test's hand on the refresh path: it can stop refreshes between Intuit's answer and
//! their commit, where a process death, a stalled database or a slow disk would leave
//! them. Aborting the refresh's task there is, for everything the database and Intuit can
//! see, the process dying at that point; opening the gate later is a commit delayed for as
//! long as the test likes. Inert unless a test closes it: the refresh path only looks.

use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};

#[derive(Default)]
pub(crate) struct CommitGates {
    closed: Mutex<Option<Arc<CommitGate>>>,
}

/// Refreshes with Intuit's answer in hand wait here while the gate is closed.
pub struct CommitGate {
    reached: Notify,
    waiting: std::sync::atomic::AtomicUsize,
    open: Semaphore,
}

impl Default for CommitGate {
    fn default() -> Self {
        CommitGate {
            reached: Notify::new(),
            waiting: Default::default(),
            open: Semaphore::new(0),
        }
    }
}

impl CommitGate {
    /// Waits until a refresh has Intuit's answer and stands at the gate.
    pub async fn reached(&self) {
        loop {
            let notified = self.reached.notified();
            if self.waiting.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                return;
            }
            notified.await;
        }
    }

    /// Lets every refresh waiting now, and every later one, go on to its commit.
    pub fn open(&self) {
        self.open.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    async fn pass(&self) {
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.reached.notify_waiters();
        // The semaphore is never closed, so acquiring fails only if it were.
        if let Ok(p) = self.open.acquire().await {
            p.forget();
        }
    }
}

impl CommitGates {
    pub(crate) fn close(&self) -> Arc<CommitGate> {
        let gate = Arc::new(CommitGate::default());
        *self.closed.lock().unwrap_or_else(|p| p.into_inner()) = Some(gate.clone());
        gate
    }

    pub(crate) fn clear(&self) {
        if let Some(g) = self.closed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            g.open();
        }
    }

    pub(crate) async fn pass(&self) {
        let gate = self
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(g) = gate {
            g.pass().await;
        }
    }
}
