//! The world `qbo-console demo` shows in the console: `qbo-sim`, a temporary SQLite
//! database and the real daemon with its scheduler, in one process, with about 200
//! small-business tenants in every state an operator meets.
//!
//! Every state comes from the real flows wherever they exist: connections are imported
//! through the service, refreshed by the daemon's scheduler, disconnected by the customer at
//! the emulator, and failing because the emulator fails for their companies. The world is
//! built over an hour of emulated time (both clocks moved together), so access-token
//! countdowns are spread out and some are minutes from expiry. Only pending and revoked
//! connections are written directly (see `Tx::insert_demo_connection`); their status
//! reason says so.
//!
//! The daemon serves a public listener on a free loopback port, and the sandbox app's
//! redirect URI is its callback, registered at the emulator: a reconnect link issued in the
//! demo (`l`) works in a browser on this machine, through the emulator's consent page.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use qbo_core::clock::Clock;
use qbo_core::config::Config;
use qbo_core::domain::Environment;
use qbo_core::domain::Status;
use qbo_core::identity::{Actor, Interface, Role};
use qbo_daemon::Daemon;
use qbo_service::{Service, TokenlessSeed};
use qbo_sim::{
    self as sim, FaultConfig, FaultKind, GrantSeed, SeededGrant, SimEnvironment, SimHandle,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// What the demo makes of a tenant. The database decides what the console shows; this is
/// only what the world set out to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoState {
    /// Active, refreshed by the scheduler.
    Healthy,
    /// Active, its access token minutes from expiry when the world is ready.
    AccessExpiringSoon,
    /// Intuit answers its refreshes with 503s, 429s, timeouts or garbage.
    FailingTransiently,
    /// The customer disconnected the app inside QuickBooks; the scheduler met invalid_grant.
    DisconnectedByCustomer,
    Revoked,
    /// Waiting for the customer's first consent.
    Pending,
    /// Within the warning window of Intuit's five-year limit.
    NearFiveYearLimit,
    /// Its refresh token unused for 80 to 95 of its 100 days, and refreshes failing.
    IdleRefreshWindow,
}

/// Per hundred tenants; the rest are healthy. Each state gets at least one tenant.
const SHARES: [(DemoState, usize); 7] = [
    (DemoState::AccessExpiringSoon, 8),
    (DemoState::FailingTransiently, 8),
    (DemoState::DisconnectedByCustomer, 6),
    (DemoState::Revoked, 4),
    (DemoState::Pending, 4),
    (DemoState::NearFiveYearLimit, 6),
    (DemoState::IdleRefreshWindow, 5),
];

/// Emulated minutes at which healthy tenants are imported (and first refreshed): their
/// access tokens then expire spread over the hour after the world is ready.
const HEALTHY_MINUTES: [i64; 11] = [0, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55];
/// Tenants whose access token is to be minutes from expiry are imported this many minutes
/// in: with an hour-long token, that many minutes are left at `READY_MINUTE`.
const EXPIRING_SOON_MINUTES: [i64; 3] = [4, 6, 8];
/// When the world is ready, in emulated minutes after the build started.
const READY_MINUTE: i64 = 60;
/// `advance` moves time in steps no longer than this, letting the scheduler catch up after
/// each, so what falls due within an hour is refreshed near when it falls due.
const STRIDE_MINUTES: i64 = 5;
/// Longest wait for the scheduler to catch up after a step.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One tenant of the world as it was set up.
#[derive(Debug, Clone)]
pub struct DemoTenant {
    pub tenant: String,
    pub company_name: String,
    pub realm_id: String,
    pub environment: Environment,
    pub state: DemoState,
}

/// A running demo world. `shutdown` stops it; dropping it stops the emulator and leaves
/// the daemon's tasks to the end of the runtime.
pub struct DemoWorld {
    pub sim: SimHandle,
    daemon: Daemon,
    /// The daemon's clock; `advance` moves it and the emulator's together.
    pub clock: Clock,
    /// The service the daemon runs, for an in-process client.
    pub service: Service,
    /// The operators' socket of the daemon.
    pub socket: PathBuf,
    pub config_path: PathBuf,
    pub dir: PathBuf,
    pub tenants: Vec<DemoTenant>,
    /// The public listener as customers' browsers reach it (`[public] base_url`).
    pub public_base: String,
    /// Never raised: the passes `settle` runs end when nothing due is left.
    running: tokio::sync::watch::Receiver<bool>,
    /// The healthy production companies the demo's outage (`!`) fails, while it lasts.
    outage: std::sync::Mutex<Vec<String>>,
}

/// A directory for a demo world under the system's temporary directory.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("qbo-console-demo-{}", std::process::id()))
}

/// Starts the emulator and the daemon on a fresh SQLite database in `dir` and populates
/// `n` tenants (at least one per state when `n` allows). Takes a few seconds. `dir` belongs
/// to the world from now on: `shutdown` removes it, as does a build that fails.
pub async fn build(dir: &Path, n: usize) -> anyhow::Result<DemoWorld> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut world = match start(dir).await {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(dir);
            return Err(e);
        }
    };
    match world.populate(n).await {
        Ok(()) => Ok(world),
        Err(e) => {
            world.shutdown(false).await;
            Err(e)
        }
    }
}

/// The emulator and the daemon on an empty database; the caller removes `dir` on failure.
async fn start(dir: &Path) -> anyhow::Result<DemoWorld> {
    let port = free_loopback_port()?;
    // Intuit's observed behaviour: daily rotation, a replaced token usable for 24 hours.
    let sim = sim::start(sim_options(sim::SimOptions::default(), port))
        .await
        .context("cannot start the emulator")?;
    let config_path = write_config(dir, &sim.base_url(), WORLD_SCHEDULER, port)?;
    let cfg = Config::load(Some(&config_path))?;
    let clock = Clock::offset();
    let daemon = Daemon::start(&cfg, clock.clone()).await?;
    Ok(DemoWorld {
        service: daemon.service.clone(),
        socket: cfg.daemon.socket.clone(),
        sim,
        daemon,
        clock,
        config_path,
        dir: dir.to_path_buf(),
        tenants: Vec::new(),
        public_base: public_base(port),
        running: tokio::sync::watch::channel(false).1,
        outage: std::sync::Mutex::new(Vec::new()),
    })
}

/// A tenant before it exists anywhere.
struct Planned {
    tenant: String,
    company_name: String,
    environment: Environment,
    state: DemoState,
    /// Emulated minute at which it is imported.
    minute: i64,
}

impl DemoWorld {
    /// The daemon itself: its scheduler (paused environments), its HTTP listener.
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Moves the emulator's and the daemon's clocks forward by `by` (nothing if it is not
    /// positive), as if that time had passed with the daemon running: in steps of at most
    /// five minutes, each followed by the scheduler's work that fell due in it.
    pub async fn advance(&self, by: Duration) -> anyhow::Result<()> {
        let mut left = by;
        while left > Duration::zero() {
            let step = left.min(Duration::minutes(STRIDE_MINUTES));
            self.sim.advance(step);
            self.clock.advance(step);
            self.settle().await?;
            left -= step;
        }
        Ok(())
    }

    /// The demo's outage (`!` in its console): Intuit's production token endpoint answers
    /// 503 to every healthy production company, and half an hour passes, enough for the scheduler
    /// to meet the failures and open one incident. Pressed again, the emulator answers
    /// again and the clocks move a minute at a time until two probes in a row succeed, the
    /// incident ends and the backlog is caught up, most urgent first.
    pub async fn toggle_incident(&self) -> anyhow::Result<String> {
        let failing: Vec<String> =
            std::mem::take(&mut *self.outage.lock().unwrap_or_else(|p| p.into_inner()));
        if failing.is_empty() {
            let realms: Vec<String> = self
                .tenants
                .iter()
                .filter(|t| {
                    t.environment == Environment::Production
                        && matches!(
                            t.state,
                            DemoState::Healthy
                                | DemoState::AccessExpiringSoon
                                | DemoState::NearFiveYearLimit
                        )
                })
                .map(|t| t.realm_id.clone())
                .collect();
            // The token endpoint's outage, as the key's help says: the accounting API
            // answers, so the health checks see no outage of their own.
            let outage = FaultConfig::always(FaultKind::ServiceUnavailable)
                .only_on(&[qbo_sim::Surface::Token]);
            for r in &realms {
                self.sim.set_realm_faults(r, outage.clone());
            }
            *self.outage.lock().unwrap_or_else(|p| p.into_inner()) = realms.clone();
            self.advance(Duration::minutes(30)).await?;
            let open = self.service.open_incidents().await?;
            return Ok(match open.iter().find(|i| !i.class.is_ours()) {
                Some(i) => format!(
                    "Intuit's production now answers 503: incident {} opened over {} connections, refreshes held; ! ends it",
                    i.id, i.connections
                ),
                None => format!(
                    "Intuit's production now answers 503 for {} companies; no incident yet (+ moves time on); ! ends it",
                    realms.len()
                ),
            });
        }
        for r in &failing {
            self.sim.clear_realm_faults(r);
        }
        for _ in 0..4 {
            self.advance(Duration::minutes(1)).await?;
            if self
                .service
                .open_incidents()
                .await?
                .iter()
                .all(|i| i.class.is_ours())
            {
                return Ok(
                    "Intuit's production answers again: the incident ended and its connections caught up, most urgent first"
                        .into(),
                );
            }
        }
        Ok("Intuit's production answers again; the incident ends after two good probes (+ moves time on)".into())
    }

    /// Runs a pass of the daemon's scheduler now rather than at its next tick, and waits
    /// until everything due by now has been attempted (by this pass or the scheduler's own).
    pub async fn settle(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        self.daemon.scheduler.run_once(&self.running).await?;
        loop {
            let (unscheduled, overdue) = self.service.scheduler_backlog().await?;
            if unscheduled == 0 && overdue.is_none() {
                return Ok(());
            }
            // An incident holds its environment's refreshes back on purpose: that backlog
            // is caught up when it ends, not waited for.
            if !self.service.open_incidents().await?.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "the demo daemon's scheduler did not catch up within {} s ({unscheduled} connections never refreshed, oldest overdue since {}); run with QBO_CONSOLE_LOG=qbo_console=debug to see why",
                    SETTLE_TIMEOUT.as_secs(),
                    overdue.map_or("-".into(), |t| t.to_rfc3339())
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Stops the daemon and the emulator; removes the world's directory unless `keep`.
    pub async fn shutdown(self, keep: bool) {
        self.daemon.shutdown().await;
        self.sim.shutdown().await;
        if !keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn populate(&mut self, n: usize) -> anyhow::Result<()> {
        // Same names every run: screenshots and snapshots stay comparable.
        let mut rng = StdRng::seed_from_u64(0x9b0_c0de);
        let plan = plan(n, &mut rng);
        let actor = Actor::current_process(Interface::Cli, Role::Admin);
        let now = self.clock.now();

        let mut seeded: Vec<(usize, SeededGrant)> = Vec::new();
        for (i, p) in plan.iter().enumerate() {
            match p.state {
                DemoState::Pending => {
                    let realm = self
                        .sim
                        .add_company(sim_env(p.environment), &p.company_name)?;
                    self.record(p, &realm);
                    self.insert_tokenless(p, &realm, Status::Pending, &actor, now)
                        .await?;
                }
                DemoState::Revoked => {
                    let g = self.seed(p, now, &mut rng)?;
                    // The grant ends at Intuit before the demo begins.
                    self.sim.disconnect(&g.realm_id);
                    self.record(p, &g.realm_id);
                    self.insert_tokenless(p, &g.realm_id, Status::Revoked, &actor, now)
                        .await?;
                }
                _ => {
                    let g = self.seed(p, now, &mut rng)?;
                    self.record(p, &g.realm_id);
                    if let Some(kind) = fault_of(p.state, i) {
                        self.sim.set_realm_faults(
                            &g.realm_id,
                            FaultConfig {
                                // The product sees the same dropped connection after any
                                // hold; a short one keeps building and advancing quick.
                                timeout_hold: std::time::Duration::from_millis(40),
                                ..FaultConfig::always(kind)
                            },
                        );
                    }
                    seeded.push((i, g));
                }
            }
        }

        let mut minutes: Vec<i64> = plan.iter().map(|p| p.minute).collect();
        minutes.push(READY_MINUTE);
        minutes.sort_unstable();
        minutes.dedup();
        let mut at = 0;
        for minute in minutes {
            self.advance(Duration::minutes(minute - at)).await?;
            at = minute;
            let batch: Vec<(&Planned, &SeededGrant)> = seeded
                .iter()
                .filter(|(i, _)| plan[*i].minute == minute)
                .map(|(i, g)| (&plan[*i], g))
                .collect();
            if batch.is_empty() {
                continue;
            }
            let file = format!("demo-minute-{minute:02}.csv");
            self.service
                .import(&actor.for_request(), &import_csv(&batch)?, &file, false)
                .await
                .map_err(|e| anyhow::anyhow!("the demo import {file} failed: {e}"))?;
            self.settle().await?;
            // An operator checked every other one of them: their last sync, ok or failed,
            // dates from when they arrived.
            let checked: Vec<String> = batch
                .iter()
                .step_by(2)
                .map(|(p, _)| p.tenant.clone())
                .collect();
            self.service
                .verify(
                    &actor.for_request(),
                    &qbo_service::Selection::Named(checked),
                )
                .await
                .map_err(|e| anyhow::anyhow!("the demo verify at minute {minute} failed: {e}"))?;
            if minute == 0 {
                // Their first refresh went through; then the customers left. The scheduler
                // meets invalid_grant at their next refresh, before the world is ready.
                for (p, g) in &batch {
                    if p.state == DemoState::DisconnectedByCustomer {
                        self.sim.disconnect(&g.realm_id);
                    }
                }
            }
        }
        Ok(())
    }

    fn seed(
        &self,
        p: &Planned,
        now: DateTime<Utc>,
        rng: &mut StdRng,
    ) -> anyhow::Result<SeededGrant> {
        let days =
            |rng: &mut StdRng, lo: i64, hi: i64| Duration::hours(rng.gen_range(lo * 24..=hi * 24));
        let five_years = Duration::seconds(sim::DEFAULT_HARD_LIMIT_SECS);
        let (consented_at, issued_at) = match p.state {
            // Days left of the five-year limit: inside the default 30-day warning window.
            DemoState::NearFiveYearLimit => {
                (now - five_years + days(rng, 6, 28), now - days(rng, 1, 20))
            }
            DemoState::IdleRefreshWindow => (now - days(rng, 200, 1400), now - days(rng, 80, 95)),
            // An outage for their companies began shortly before the world did: the last
            // good refresh an hour or two ago, every one since failing. (Weeks of failures
            // would read as a dead connection, which is the idle tenants' story.)
            DemoState::FailingTransiently => (
                now - days(rng, 60, 1100),
                now - Duration::minutes(rng.gen_range(65..=110)),
            ),
            _ => (now - days(rng, 30, 1500), now - days(rng, 0, 20)),
        };
        let client = match p.environment {
            Environment::Sandbox => "sim-sandbox-client",
            Environment::Production => "sim-production-client",
        };
        self.sim.seed_grant_with(
            client,
            &GrantSeed {
                company_name: Some(p.company_name.clone()),
                consented_at: Some(consented_at),
                issued_at: Some(issued_at),
                ..GrantSeed::default()
            },
        )
    }

    fn record(&mut self, p: &Planned, realm_id: &str) {
        self.tenants.push(DemoTenant {
            tenant: p.tenant.clone(),
            company_name: p.company_name.clone(),
            realm_id: realm_id.to_string(),
            environment: p.environment,
            state: p.state,
        });
    }

    async fn insert_tokenless(
        &self,
        p: &Planned,
        realm_id: &str,
        status: Status,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        // Read in the detail pane beside "reason": short enough for one line at 120 columns.
        let reason = match status {
            Status::Pending => {
                "demo: waiting for the customer's first consent (seeded directly into the database)"
            }
            _ => {
                "demo: revoked at Intuit before the demo began (seeded directly into the database)"
            }
        };
        self.service
            .seed_tokenless(
                TokenlessSeed {
                    tenant: &p.tenant,
                    realm_id,
                    environment: p.environment,
                    company_name: &p.company_name,
                    status,
                    reason,
                },
                actor,
                now,
            )
            .await
    }
}

/// The fault Intuit answers a failing tenant's refreshes with; varied across tenants.
fn fault_of(state: DemoState, i: usize) -> Option<FaultKind> {
    const KINDS: [FaultKind; 4] = [
        FaultKind::ServiceUnavailable,
        FaultKind::RateLimited,
        FaultKind::Timeout,
        FaultKind::Garbage,
    ];
    match state {
        DemoState::FailingTransiently | DemoState::IdleRefreshWindow => {
            Some(KINDS[i % KINDS.len()])
        }
        _ => None,
    }
}

fn sim_env(e: Environment) -> SimEnvironment {
    match e {
        Environment::Sandbox => SimEnvironment::Sandbox,
        Environment::Production => SimEnvironment::Production,
    }
}

/// What an export from the previous system would hold: both tokens and their clocks.
fn import_csv(batch: &[(&Planned, &SeededGrant)]) -> anyhow::Result<Zeroizing<String>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "tenant",
        "realm_id",
        "environment",
        "company_name",
        "refresh_token",
        "refresh_expires_at",
        "access_token",
        "access_expires_at",
    ])?;
    for (p, g) in batch {
        let refresh_expires = g.issued_at + Duration::seconds(g.x_refresh_token_expires_in);
        let access_expires = g.issued_at + Duration::seconds(g.expires_in);
        w.write_record([
            p.tenant.as_str(),
            g.realm_id.as_str(),
            p.environment.as_str(),
            p.company_name.as_str(),
            g.refresh_token.as_str(),
            refresh_expires.to_rfc3339().as_str(),
            g.access_token.as_str(),
            access_expires.to_rfc3339().as_str(),
        ])?;
    }
    let bytes = Zeroizing::new(w.into_inner().context("cannot write the demo import")?);
    Ok(Zeroizing::new(
        String::from_utf8(bytes.to_vec()).context("the demo import is not UTF-8")?,
    ))
}

const NAME_FIRST: [&str; 40] = [
    "Blue Heron",
    "Cedar",
    "Maple Leaf",
    "Harbor",
    "Summit",
    "Golden Gate",
    "Riverbend",
    "Oak Hollow",
    "Silver Birch",
    "Northwind",
    "Copper Kettle",
    "Red Barn",
    "Lakeside",
    "Pine Ridge",
    "Sunrise",
    "Evergreen",
    "Foxglove",
    "Stonebridge",
    "Willow Creek",
    "Bayside",
    "Magnolia",
    "Iron Horse",
    "Prairie",
    "Canyon",
    "Juniper",
    "Lighthouse",
    "Meadowlark",
    "Brightwater",
    "Old Mill",
    "Cobblestone",
    "Hilltop",
    "Seaside",
    "Granite Peak",
    "Thistle",
    "Wildflower",
    "Kestrel",
    "Alder",
    "Bluebonnet",
    "Sequoia",
    "Hawthorn",
];

const NAME_TRADE: [&str; 30] = [
    "Cafe",
    "Dental",
    "Bakery",
    "Plumbing",
    "Law Group",
    "Landscaping",
    "Auto Repair",
    "Books",
    "Yoga Studio",
    "Veterinary Clinic",
    "Brewing Co",
    "Florist",
    "Electric",
    "Roofing",
    "Pet Grooming",
    "Physical Therapy",
    "Hardware",
    "Catering",
    "Accounting",
    "Chiropractic",
    "Fitness",
    "Print Shop",
    "Realty",
    "Cleaning Services",
    "Tailors",
    "Pharmacy",
    "Coffee Roasters",
    "Design Studio",
    "Heating & Air",
    "Marina",
];

const NAME_SUFFIX: [&str; 6] = ["", "", "", " LLC", " Inc", " & Co"];

/// `n` distinct tenants with states by `SHARES`, environments mostly production, and the
/// minute each is imported at.
fn plan(n: usize, rng: &mut StdRng) -> Vec<Planned> {
    let mut names: Vec<String> = Vec::with_capacity(n);
    let mut pairs: Vec<(usize, usize)> = (0..NAME_FIRST.len())
        .flat_map(|a| (0..NAME_TRADE.len()).map(move |b| (a, b)))
        .collect();
    pairs.shuffle(rng);
    for i in 0..n {
        let (a, b) = pairs[i % pairs.len()];
        let base = format!("{} {}", NAME_FIRST[a], NAME_TRADE[b]);
        // Past every combination, a branch number keeps names distinct.
        names.push(match i / pairs.len() {
            0 => base,
            k => format!("{base} {}", k + 1),
        });
    }
    let mut states = Vec::with_capacity(n);
    for (state, share) in SHARES {
        let count = (n * share / 100).max(1);
        for _ in 0..count {
            if states.len() < n {
                states.push(state);
            }
        }
    }
    states.resize(n, DemoState::Healthy);
    states.shuffle(rng);
    let (mut healthy, mut soon) = (0usize, 0usize);
    names
        .into_iter()
        .zip(states)
        .map(|(name, state)| {
            let minute = match state {
                DemoState::Healthy => {
                    healthy += 1;
                    HEALTHY_MINUTES[(healthy - 1) % HEALTHY_MINUTES.len()]
                }
                DemoState::AccessExpiringSoon => {
                    soon += 1;
                    EXPIRING_SOON_MINUTES[(soon - 1) % EXPIRING_SOON_MINUTES.len()]
                }
                _ => 0,
            };
            let suffix = NAME_SUFFIX[rng.gen_range(0..NAME_SUFFIX.len())];
            // Drawn for every tenant, so the names and the others' environments stay put.
            let sandbox = rng.gen_bool(0.2);
            Planned {
                tenant: slug(&name),
                company_name: format!("{name}{suffix}"),
                // Intuit allows a plain-http (localhost) redirect URI for sandbox apps only:
                // the dead connections are sandbox ones, so their reconnect links (`l`) can
                // be completed in a browser against the demo's own public listener.
                environment: if sandbox || state == DemoState::DisconnectedByCustomer {
                    Environment::Sandbox
                } else {
                    Environment::Production
                },
                state,
                minute,
            }
        })
        .collect()
}

/// "Heating & Air" → "heating-air".
fn slug(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("-")
}

/// The world's scheduler: refreshes a couple of minutes before expiry (so tokens minutes
/// from expiry are visible) and rate limits far above what 200 tenants need.
const WORLD_SCHEDULER: &str = "refresh_before_expiry = \"2m\"\njitter = \"1m\"\n\
     max_concurrency = 32\nrate_per_second = 1000\n";

/// A port on loopback nothing listens on now, for the demo's public listener: the
/// emulator must know the redirect URI (which names the port) before the daemon binds it.
pub(crate) fn free_loopback_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot find a free port on 127.0.0.1 for the demo's public listener")?;
    Ok(l.local_addr()
        .context("cannot find a free port on 127.0.0.1 for the demo's public listener")?
        .port())
}

/// The demo's public listener as customers' browsers reach it. `localhost` rather than
/// 127.0.0.1: the sandbox redirect URI must name `localhost` (Intuit's rule), and the
/// link's binding cookie is only sent back to the callback on the same host.
pub(crate) fn public_base(port: u16) -> String {
    format!("http://localhost:{port}")
}

/// The sandbox app's redirect URI in the demos: the public listener's callback.
pub(crate) fn sandbox_redirect_uri(port: u16) -> String {
    format!("{}/callback", public_base(port))
}

/// `opts` with the demo's sandbox redirect URI registered for every app at the emulator.
pub(crate) fn sim_options(mut opts: sim::SimOptions, port: u16) -> sim::SimOptions {
    for c in &mut opts.clients {
        c.redirect_uris.push(sandbox_redirect_uri(port));
    }
    opts
}

/// The keys (token, audit signing), the client secrets the emulator expects, and a config
/// for both demos (this world and the narrated walk-through) that points at the emulator at
/// `base`, with `scheduler` as its `[scheduler]` section and the public listener on
/// `public_port` of loopback.
pub(crate) fn write_config(
    dir: &Path,
    base: &str,
    scheduler: &str,
    public_port: u16,
) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Owner-only, as the config loader insists for the key and the client secrets.
    let secret_file = |name: &str, value: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(f, "{value}").with_context(|| format!("cannot write {}", path.display()))
    };
    secret_file("token.key", qbo_core::vault::generate_key().as_str())?;
    // Signs audit exports (`e` in the console's audit view, `audit export`).
    secret_file(
        "audit-signing.key",
        qbo_core::vault::generate_key().as_str(),
    )?;
    secret_file("sandbox.secret", "sim-sandbox-secret")?;
    secret_file("production.secret", "sim-production-secret")?;
    let d = dir.display();
    // SAFETY: getuid cannot fail and has no preconditions.
    let me = qbo_core::identity::account_name(unsafe { libc::getuid() });
    let mut text = format!(
        "[database]\nurl = \"sqlite://{d}/demo.db\"\n\n[vault]\nkey_file = \"{d}/token.key\"\n\n\
         [daemon]\nsocket = \"{d}/ops.sock\"\nhttp_listen = \"127.0.0.1:0\"\n\n[api]\nlisten = \"127.0.0.1:0\"\n\n[roles]\nadmin = [\"{me}\"]\n\n\
         [audit]\nsigning_key_file = \"{d}/audit-signing.key\"\n\n\
         [public]\nlisten = \"127.0.0.1:{public_port}\"\nbase_url = \"{public}\"\n\n\
         [scheduler]\n{scheduler}",
        public = public_base(public_port),
    );
    let sandbox_redirect = sandbox_redirect_uri(public_port);
    for (name, redirect) in [
        ("sandbox", sandbox_redirect.as_str()),
        // Production needs https (Intuit's rule): its callback is not served here.
        ("production", "https://ops.example.com/qbo/callback"),
    ] {
        let _ = write!(
            text,
            "\n[environments.{name}]\nclient_id = \"sim-{name}-client\"\nclient_secret_file = \"{d}/{name}.secret\"\nredirect_uri = \"{redirect}\"\n\
             authorization_endpoint = \"{base}/connect/oauth2\"\ntoken_endpoint = \"{base}/oauth2/v1/tokens/bearer\"\n\
             revocation_endpoint = \"{base}/v2/oauth2/tokens/revoke\"\napi_base = \"{base}\"\n"
        );
    }
    let path = dir.join("qbo-console.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_has_distinct_tenants_and_every_state() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = plan(200, &mut rng);
        let mut names: Vec<&str> = p.iter().map(|t| t.tenant.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 200);
        for (state, _) in SHARES {
            assert!(
                p.iter().filter(|t| t.state == state).count() >= 4,
                "{state:?}"
            );
        }
        assert!(p.iter().any(|t| t.environment == Environment::Sandbox));
        assert!(p.iter().any(|t| t.environment == Environment::Production));
        // Past every name combination, names stay distinct.
        let big = plan(NAME_FIRST.len() * NAME_TRADE.len() + 5, &mut rng);
        let mut names: Vec<&str> = big.iter().map(|t| t.tenant.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), big.len());
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_hyphens() {
        assert_eq!(slug("Blue Heron Cafe"), "blue-heron-cafe");
        assert_eq!(slug("Heating & Air 2"), "heating-air-2");
    }
}
