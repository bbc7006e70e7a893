//! `qbo-sim`: an HTTP emulator of Intuit's OAuth 2.0 service and of the one
//! QuickBooks Online API call the console makes (companyinfo).
//!
//! It models the protocol facts in INTUIT.md: single-use codes whose replay
//! revokes the grant, the 100-day rolling refresh window and the five-year
//! hard limit, daily or per-refresh rotation with or without a 24-hour grace
//! for the replaced token, customer disconnects, `intuit_tid` on every answer,
//! and injected faults. This module deliberately shares no code with the
//! product's Intuit client or connection lifecycle: an emulator built on the
//! product's assumptions could not catch them.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use qbo_sim::{self as sim, SimOptions};
//! let sim = sim::start(SimOptions::default()).await?;
//! let grant = sim.seed_grant("sim-sandbox-client", None, None)?;
//! println!("{} {}", sim.base_url(), grant.realm_id);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admin;
mod authorize;
pub mod cli;
mod clock;
mod conn;
mod discovery;
mod error;
mod exchange;
mod faults;
mod http;
mod options;
mod qbo;
mod realms;
mod scopes;
mod server;
mod state;
mod stats;
mod token;
mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::SimError;
pub use options::{
    FaultConfig, FaultKind, PreviousToken, Rotation, SimClient, SimEnvironment, SimOptions,
    Surface, DEFAULT_ACCESS_TOKEN_TTL_SECS, DEFAULT_HARD_LIMIT_SECS, DEFAULT_REFRESH_IDLE_SECS,
};
pub use stats::SimStats;

/// What Intuit makes of a refresh token now (`SimHandle::refresh_token_standing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStanding {
    /// The grant's newest refresh token.
    Current,
    /// Replaced, but still taken within Intuit's 24-hour grace.
    InGrace,
    /// Intuit would answer invalid_grant, for this reason.
    Refused { reason: String },
}

use clock::SimClock;
use scopes::ScopeSet;
use state::State;

/// A consented grant created without the browser dance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeededGrant {
    pub client_id: String,
    pub realm_id: String,
    pub company_name: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub x_refresh_token_expires_in: i64,
    /// Seconds left of the five-year limit at `issued_at`.
    pub x_refresh_token_hard_expires_in: i64,
    /// When the tokens were issued (sim clock): now, unless the seed gave a history.
    pub issued_at: DateTime<Utc>,
}

/// What to seed: the company, and optionally a history, so a grant can start its life
/// near Intuit's limits (consented almost five years ago, a refresh token unused for
/// 90 days).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSeed {
    /// Reconnects an existing company or creates one with this id; `None` creates a new one.
    pub realm_id: Option<String>,
    pub company_name: Option<String>,
    /// When the customer first consented; the five-year limit runs from here. Default:
    /// `issued_at`, or now.
    pub consented_at: Option<DateTime<Utc>>,
    /// When the current tokens were issued; the 100-day idle window runs from here.
    /// Default: the consent.
    pub issued_at: Option<DateTime<Utc>>,
}

/// What every request handler shares.
pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) clock: SimClock,
    pub(crate) base_url: String,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    /// The one lock. A panic while holding it cannot leave the maps in a state
    /// worse than a half-applied request, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `d`, or less if the emulator shuts down meanwhile.
    pub(crate) async fn sleep(&self, d: Duration) {
        let mut rx = self.shutdown.subscribe();
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = rx.wait_for(|down| *down) => {}
        }
    }

    pub(crate) fn seed_grant(
        &self,
        client_id: &str,
        seed: &GrantSeed,
    ) -> Result<SeededGrant, SimError> {
        let access = tokens::new_access_token();
        let now = self.clock.now();
        let consented_at = seed.consented_at.or(seed.issued_at).unwrap_or(now);
        let issued_at = seed.issued_at.unwrap_or(consented_at);
        if consented_at > now || issued_at > now {
            return Err(SimError::from(
                "consented_at and issued_at must not be in the future",
            ));
        }
        if issued_at < consented_at {
            return Err(SimError::from("issued_at must not be before consented_at"));
        }
        let mut st = self.lock();
        let environment = match st.clients.get(client_id) {
            Some(c) => c.environment,
            None => {
                return Err(SimError::from(format!(
                    "client {client_id:?} is not registered"
                )))
            }
        };
        let realm = st.ensure_realm(
            seed.realm_id.as_deref(),
            environment,
            seed.company_name.as_deref(),
        )?;
        let company_name = st
            .realms
            .get(&realm)
            .map(|r| r.company_name.clone())
            .unwrap_or_default();
        let (_, set) = st.create_grant(
            client_id,
            Some(realm.clone()),
            ScopeSet::ACCOUNTING,
            consented_at,
            issued_at,
            access,
        );
        Ok(SeededGrant {
            client_id: client_id.to_string(),
            realm_id: realm,
            company_name,
            access_token: set.access_token,
            refresh_token: set.refresh_token,
            expires_in: set.expires_in,
            x_refresh_token_expires_in: set.refresh_expires_in,
            x_refresh_token_hard_expires_in: set.hard_expires_in,
            issued_at,
        })
    }

    pub(crate) fn issued_tokens(&self) -> Vec<String> {
        let snapshot = self.lock().issued_snapshot();
        state::expand_issued(snapshot)
    }
}

/// A running emulator. Dropping it stops the server too; `shutdown` waits
/// for that to finish.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

/// Binds `opts.bind` and serves in the background on the current tokio runtime.
pub async fn start(opts: SimOptions) -> anyhow::Result<SimHandle> {
    opts.validate()
        .map_err(|e| anyhow::anyhow!("invalid emulator options: {e}"))?;
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .with_context(|| format!("binding the emulator to {}", opts.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let (shutdown, mut rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(&opts)),
        clock: SimClock::default(),
        base_url: format!("http://{}", reachable(addr)),
        shutdown,
    });
    let app =
        server::router(shared.clone()).into_make_service_with_connect_info::<conn::ConnHandle>();
    let task = tokio::spawn(async move {
        let served = axum::serve(conn::SimListener::new(listener), app)
            .with_graceful_shutdown(async move {
                // An error means the sender is gone: shut down as well.
                let _ = rx.wait_for(|down| *down).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!("qbo-sim server stopped: {e}");
        }
    });
    tracing::debug!(base_url = %shared.base_url, "qbo-sim started");
    Ok(SimHandle {
        shared,
        addr,
        task: Some(task),
    })
}

/// An address clients can connect to: a wildcard bind is reached via loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, the base of every endpoint including the QBO API.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn discovery_url(&self, env: SimEnvironment) -> String {
        format!("{}{}", self.shared.base_url, discovery::discovery_path(env))
    }

    /// The sim clock: wall time plus everything `advance` added.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Moves the sim clock forward (negative durations are ignored).
    pub fn advance(&self, by: chrono::Duration) {
        self.shared.clock.advance(by);
    }

    /// Replaces the fault configuration; a rate outside 0..=1 is clamped and
    /// an empty kind list means no faults.
    pub fn set_faults(&self, mut f: FaultConfig) {
        f.rate = if f.rate.is_nan() {
            0.0
        } else {
            f.rate.clamp(0.0, 1.0)
        };
        self.shared.lock().faults = f;
    }

    /// Gives one company faults of its own, in place of the global ones (rate clamped as
    /// in `set_faults`; `FaultConfig::none()` exempts the company from global faults).
    /// The company need not exist yet.
    pub fn set_realm_faults(&self, realm_id: &str, mut f: FaultConfig) {
        f.rate = if f.rate.is_nan() {
            0.0
        } else {
            f.rate.clamp(0.0, 1.0)
        };
        self.shared
            .lock()
            .realm_faults
            .insert(realm_id.to_string(), f);
    }

    /// The company's requests follow the global fault configuration again.
    pub fn clear_realm_faults(&self, realm_id: &str) {
        self.shared.lock().realm_faults.remove(realm_id);
    }

    pub fn set_rotation(&self, r: Rotation, p: PreviousToken) {
        let mut st = self.shared.lock();
        st.policy.rotation = r;
        st.policy.previous_token = p;
    }

    pub fn set_token_latency(&self, d: Duration) {
        self.shared.lock().token_latency = d;
    }

    /// Holds every companyinfo call this long before answering it, so a client's
    /// concurrency shows in `SimStats::company_info_max_in_flight`.
    pub fn set_company_info_latency(&self, d: Duration) {
        self.shared.lock().company_info_latency = d;
    }

    /// The customer disconnects, in the reading where Intuit's OAuth service lags: the
    /// company's API answers 401 (fault 3201) to every access token while the token
    /// endpoint still refreshes its grants. `disconnect` is the strict reading.
    pub fn disconnect_api_only(&self, realm_id: &str) {
        self.shared
            .lock()
            .api_disconnected
            .insert(realm_id.to_string());
    }

    /// Creates a consented grant (accounting scope) directly. `realm_id`
    /// reconnects an existing company or creates one with that id; `None`
    /// creates a new company.
    pub fn seed_grant(
        &self,
        client_id: &str,
        realm_id: Option<&str>,
        company_name: Option<&str>,
    ) -> anyhow::Result<SeededGrant> {
        self.seed_grant_with(
            client_id,
            &GrantSeed {
                realm_id: realm_id.map(str::to_string),
                company_name: company_name.map(str::to_string),
                ..GrantSeed::default()
            },
        )
    }

    /// Creates a consented grant as `seed` describes, possibly with a history (see
    /// `GrantSeed`).
    pub fn seed_grant_with(
        &self,
        client_id: &str,
        seed: &GrantSeed,
    ) -> anyhow::Result<SeededGrant> {
        self.shared
            .seed_grant(client_id, seed)
            .map_err(|e| anyhow::anyhow!("seeding a grant: {e}"))
    }

    /// Creates a company that has not consented to any app yet; returns its realm id.
    pub fn add_company(
        &self,
        environment: SimEnvironment,
        company_name: &str,
    ) -> anyhow::Result<String> {
        self.shared
            .lock()
            .ensure_realm(None, environment, Some(company_name))
            .map_err(|e| anyhow::anyhow!("adding a company: {e}"))
    }

    /// The customer disconnects the app inside QuickBooks: every grant for the
    /// realm ends.
    pub fn disconnect(&self, realm_id: &str) {
        let ended = self.shared.lock().disconnect(realm_id);
        tracing::debug!(realm_id, ended, "realm disconnected");
    }

    /// How Intuit would take this refresh token now: the grant's current one, a replaced one
    /// still inside its grace, or not at all (`Err` with Intuit's reason). Nothing is
    /// recorded: for tests that check what a product believes of its tokens.
    pub fn refresh_token_standing(&self, token: &str) -> TokenStanding {
        let now = self.shared.clock.now();
        match self.shared.lock().refresh_usable(token, now) {
            Ok(false) => TokenStanding::Current,
            Ok(true) => TokenStanding::InGrace,
            Err(e) => TokenStanding::Refused {
                reason: e.0.to_string(),
            },
        }
    }

    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Successful refreshes so far: `stats().refreshes` without copying the per-realm
    /// counts (a million entries after a million connections refreshed, copied under the
    /// lock every request waits for), for callers that poll.
    pub fn refreshes(&self) -> u64 {
        self.shared.lock().stats.refreshes
    }

    pub fn reset_stats(&self) {
        self.shared.lock().stats = SimStats::default();
    }

    /// Every access token, refresh token and authorization code ever issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.issued_tokens()
    }

    /// Stops accepting, ends held connections and waits (up to 5 s) for the
    /// server to finish.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
