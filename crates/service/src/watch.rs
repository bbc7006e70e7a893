//! `watch`: the live feed a screen can live on. A subscriber first hears a hello (the
//! protocol version, and who it is with which role), then one event per committed change
//! carrying the changed connection's view, so that it never has to re-list (and write a
//! `list` record) per change; if it fell behind, a `missed` notice, after which it re-lists.

use super::{ConnectionView, Result};
use qbo_core::domain::SchedulerState;
use qbo_core::identity::{Actor, Role};
use qbo_engine::lifecycle::Engine;
use qbo_store::Change;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// The version of the operators' protocol: the requests, replies and the watch feed.
pub const PROTOCOL_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchEvent {
    /// The first event of every subscription.
    Hello {
        protocol: u32,
        account: String,
        role: Role,
        /// What the daemon's scheduler is doing at the start; `scheduler` events follow.
        #[serde(default)]
        scheduler: SchedulerState,
    },
    /// A committed change. `connection` is the changed connection as it is now: absent for
    /// a change about no connection (a refusal, say) or one that no longer exists.
    Change {
        audit_seq: i64,
        connection_id: Option<i64>,
        connection: Option<Box<ConnectionView>>,
    },
    /// The subscriber fell behind and `count` changes were dropped: re-list.
    Missed { count: u64 },
    /// The scheduler started, stopped, or paused an environment.
    Scheduler { state: SchedulerState },
}

/// One subscription. Subscribed before the hello is handed out, so a client that lists
/// after the hello misses nothing committed since.
pub struct WatchFeed {
    engine: Arc<Engine>,
    changes: broadcast::Receiver<Change>,
    scheduler: tokio::sync::watch::Receiver<SchedulerState>,
    hello: Option<WatchEvent>,
}

impl WatchFeed {
    pub(super) fn new(engine: Arc<Engine>, caller: &Actor) -> WatchFeed {
        let mut scheduler = engine.scheduler_state();
        let state = scheduler.borrow_and_update().clone();
        WatchFeed {
            changes: engine.subscribe(),
            scheduler,
            engine,
            hello: Some(WatchEvent::Hello {
                protocol: PROTOCOL_VERSION,
                account: caller.name(),
                role: caller.role().unwrap_or(qbo_core::identity::Role::Unmapped),
                scheduler: state,
            }),
        }
    }

    /// The next event, or `None` once the engine has shut down. Reading the changed row is
    /// not a `show`: the subscription is on the audit record once, not every change it sees.
    pub async fn next(&mut self) -> Option<Result<WatchEvent>> {
        if let Some(hello) = self.hello.take() {
            return Some(Ok(hello));
        }
        let received = tokio::select! {
            c = self.changes.recv() => c,
            // A scheduler that is gone (its sender dropped with the engine) says no more.
            Ok(()) = self.scheduler.changed() => {
                let state = self.scheduler.borrow_and_update().clone();
                return Some(Ok(WatchEvent::Scheduler { state }));
            }
        };
        let change = match received {
            Ok(c) => c,
            Err(RecvError::Lagged(count)) => return Some(Ok(WatchEvent::Missed { count })),
            Err(RecvError::Closed) => return None,
        };
        let connection = match change.connection_id {
            None => None,
            Some(id) => match self.engine.store.get_connection(id).await {
                Ok(row) => {
                    row.map(|r| Box::new(ConnectionView::from_record(r, self.engine.clock.now())))
                }
                Err(e) => return Some(Err(e.into())),
            },
        };
        Some(Ok(WatchEvent::Change {
            audit_seq: change.audit_seq,
            connection_id: change.connection_id,
            connection,
        }))
    }
}
