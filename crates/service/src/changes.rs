//! What the service commits, told to those who keep a view of it: subscribers in this
//! process, and, on PostgreSQL, every other daemon's commits relayed here.

use crate::Service;
use qbo_core::domain::Change;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

impl Service {
    /// Changes as they commit (after the commit, never before), for caches and live views.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Change> {
        self.engine.subscribe()
    }

    /// On PostgreSQL, relays every daemon's commits (this one's included) to the
    /// subscribers until `stop`; `None` on SQLite, where this process is the only writer.
    pub async fn relay_database_changes(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Option<JoinHandle<()>>> {
        let Some(mut listener) = self.store().change_listener().await? else {
            return Ok(None);
        };
        let engine = self.engine.clone();
        engine.set_relayed(true);
        Ok(Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    n = listener.next() => match n {
                        Ok(Some(c)) => engine.relay(c),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "PostgreSQL LISTEN connection lost; reconnecting");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    },
                    _ = stop.changed() => break,
                }
            }
            engine.set_relayed(false);
        })))
    }

    /// Closes the database once the daemon's tasks are done with it.
    pub async fn close(&self) {
        self.store().close().await;
    }
}
