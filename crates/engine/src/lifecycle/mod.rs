//! What happens to a connection: its status model, refresh, verify and import. Every
//! caller (CLI, scheduler, socket, token API) goes through the same `Engine`, so refresh
//! single-flight is one mechanism, not one per interface.

mod backoff;
mod commit_gate;
pub mod import;
mod keys;
mod reconnect;
mod refresh;
mod revoke;
mod single_flight;
mod verify;
mod writer;

pub use backoff::next_delay;
pub use commit_gate::CommitGate;
pub use keys::{KeyStatus, KeyUse, RotationFailure, RotationReport};
pub use reconnect::ConsentOutcome;
pub use refresh::{
    lost_answer_reason, outcome_name, RefreshOutcome, RefreshResult, NEXT_ATTEMPT_MARK,
};
pub use revoke::{RevokeMode, RevokeOutcome};
// Status moved to `domain` (the store needs it too); kept here for the lifecycle's callers.
pub use qbo_core::domain::Status;
pub use verify::{describe_refresh, VerifyOutcome};

use crate::intuit::IntuitClient;
use crate::metrics::Metrics;
use qbo_core::clock::Clock;
use qbo_core::config::{Config, ConfigError, RefreshConfig, SchedulerConfig};
use qbo_core::domain::Environment;
use qbo_core::vault::Vault;
use qbo_store::audit::{AuditEvent, AuditRecord};
use qbo_store::{Change, Store, Tx};
use rand::RngCore;
use single_flight::SingleFlight;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub type Clients = HashMap<Environment, Arc<IntuitClient>>;
pub type Missing = HashMap<Environment, String>;

pub struct Engine {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub clock: Clock,
    clients: Clients,
    /// Why an environment has no client (its section is missing or its secret unreadable),
    /// reported when a connection of that environment needs one.
    missing: Missing,
    refresh_cfg: RefreshConfig,
    /// `[intuit] timeout`: the longest a request to Intuit may take, which a refresh
    /// lease must outlast (see `refresh.rs`).
    request_timeout: std::time::Duration,
    scheduler_cfg: SchedulerConfig,
    flights: SingleFlight,
    /// Identifies this process as a lease holder: host, pid and a random tag.
    owner: String,
    changes: tokio::sync::broadcast::Sender<Change>,
    pub metrics: Arc<Metrics>,
    writer: writer::Writer,
    /// Set while a PostgreSQL listener relays every commit (ours included) to `changes`.
    relayed: AtomicBool,
    /// Where a test can stop refreshes between Intuit's answer and their commit.
    commit_gates: commit_gate::CommitGates,
    /// What this process's scheduler is doing; none runs until a daemon starts one.
    scheduler_state: tokio::sync::watch::Sender<qbo_core::domain::SchedulerState>,
}

/// Changes kept for readers that have not read them yet (about 2 MB).
const CHANGE_BACKLOG: usize = 65_536;

impl Engine {
    /// Builds one Intuit client per configured environment, reading each client secret. A
    /// configured environment whose secret cannot be read is a configuration error now, not
    /// a surprise at the first refresh; an environment without a section is remembered and
    /// reported when a connection needs it.
    pub fn clients(config: &Config) -> Result<(Clients, Missing), ConfigError> {
        let mut clients = HashMap::new();
        let mut missing = HashMap::new();
        for env in Environment::ALL {
            match config.environment(env) {
                Ok(e) => {
                    clients.insert(
                        env,
                        Arc::new(IntuitClient::new(e, &config.intuit, &config.source)?),
                    );
                }
                Err(e) => {
                    missing.insert(env, e.0);
                }
            }
        }
        Ok((clients, missing))
    }

    pub fn new(
        config: &Config,
        store: Store,
        vault: Vault,
        clock: Clock,
        clients: Clients,
        missing: Missing,
    ) -> Engine {
        let metrics = Arc::new(Metrics::new(store.write_health()));
        let writer = writer::Writer::start(store.clone());
        Engine {
            store,
            vault: Arc::new(vault),
            clock,
            clients,
            missing,
            refresh_cfg: config.refresh.clone(),
            request_timeout: config.intuit.timeout,
            scheduler_cfg: config.scheduler.clone(),
            flights: SingleFlight::default(),
            owner: lease_owner_tag(),
            // Room for a burst of changes (a health pass catching up, a large import) while
            // the consoles' roster and the live feeds read them: a reader that falls further
            // behind must read everything again.
            changes: tokio::sync::broadcast::channel(CHANGE_BACKLOG).0,
            writer,
            metrics,
            relayed: AtomicBool::new(false),
            commit_gates: Default::default(),
            scheduler_state: tokio::sync::watch::channel(Default::default()).0,
        }
    }

    /// What the scheduler is doing now, and every change of it after.
    pub fn scheduler_state(
        &self,
    ) -> tokio::sync::watch::Receiver<qbo_core::domain::SchedulerState> {
        self.scheduler_state.subscribe()
    }

    /// The scheduler says what it is doing (started, stopped, an environment paused).
    pub fn update_scheduler_state(&self, f: impl FnOnce(&mut qbo_core::domain::SchedulerState)) {
        self.scheduler_state.send_modify(f);
    }

    /// Changes as they commit, for live views.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Finishes a unit of work: appends `events` to the audit log as its last writes,
    /// commits, and only then tells live views about the changes. The one way a transaction
    /// that changes something ends, so no event is forgotten and no change is told before
    /// it is durable (a view that heard of a change a crash then undid would show a lie).
    pub async fn commit_audited(
        &self,
        mut tx: Tx,
        events: &[AuditEvent],
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let mut records = Vec::with_capacity(events.len());
        for ev in events {
            records.push(tx.audit(ev).await?);
        }
        self.published(tx.commit().await?);
        Ok(records)
    }

    /// Records what callers were shown (views, token hand-outs) in a transaction of its own,
    /// without telling this process's live views: a subscriber that reads on every change
    /// would otherwise record a read, hear of it, read again, and never stop; and the token
    /// API would drop its caches at each hand-out it records. (On PostgreSQL every append is
    /// also NOTIFYed to every daemon, this one included; the watch feed reads views only for
    /// changes that name a connection, which a read record does not.)
    pub async fn record_reads(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        let mut tx = self.store.begin().await?;
        for ev in events {
            tx.audit(ev).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tells subscribers about a commit, unless a PostgreSQL listener will (it hears every
    /// daemon's commits, this one's included, so relaying here too would double them).
    pub(crate) fn published(&self, changes: Vec<Change>) {
        if !self.relayed.load(Ordering::Relaxed) {
            for c in changes {
                let _ = self.changes.send(c);
            }
        }
    }

    /// Called by the PostgreSQL listener for every change any daemon committed.
    pub fn relay(&self, change: Change) {
        let _ = self.changes.send(change);
    }

    pub fn set_relayed(&self, on: bool) {
        self.relayed.store(on, Ordering::Relaxed);
    }

    /// Appends an audit event inside `tx` (a failure is counted for `/metrics` when the
    /// transaction is dropped uncommitted).
    pub async fn audit(&self, tx: &mut Tx, ev: &AuditEvent) -> anyhow::Result<AuditRecord> {
        tx.audit(ev).await
    }

    pub fn refresh_config(&self) -> &RefreshConfig {
        &self.refresh_cfg
    }

    /// The client for `env`, or why there is none: a configuration problem, phrased as
    /// when the configuration was read.
    pub fn client(&self, env: Environment) -> Result<&Arc<IntuitClient>, ConfigError> {
        self.clients.get(&env).ok_or_else(|| {
            ConfigError(
                self.missing
                    .get(&env)
                    .cloned()
                    .unwrap_or_else(|| format!("no Intuit client for {env}")),
            )
        })
    }

    pub fn scheduler_config(&self) -> &SchedulerConfig {
        &self.scheduler_cfg
    }

    pub fn lease_owner(&self) -> &str {
        &self.owner
    }

    /// For tests: from now on, refreshes stop between Intuit's answer and their commit
    /// until the returned gate is opened (see `commit_gate.rs`).
    #[doc(hidden)]
    pub fn hold_commits(&self) -> Arc<CommitGate> {
        self.commit_gates.close()
    }

    /// For tests: opens the gate `hold_commits` closed, for good.
    #[doc(hidden)]
    pub fn release_commits(&self) {
        self.commit_gates.clear()
    }
}

fn lease_owner_tag() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let mut tag = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut tag);
    format!(
        "{host}:{}:{}",
        std::process::id(),
        qbo_core::vault::hex(&tag)
    )
}
