//! The scheduler: refreshes each live connection before its access token expires (when
//! configured) and before its refresh token has been idle too long, most urgent first,
//! within a concurrency limit and a per-environment rate. Transient failures come back on
//! their backoff (`next_attempt_at`); a connection that needs reconnecting is never picked;
//! an `invalid_client` pauses its whole environment instead of blaming tenants; and many
//! connections failing at Intuit at once open an incident (`incidents`), which stops the
//! environment's refreshes but for probes until Intuit recovers.

use super::incidents::Breaker;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::SchedulerConfig;
use qbo_core::domain::Environment;
use qbo_core::identity::{Actor, ActorKind, DaemonTask};
use qbo_core::incident::Endpoint;
use qbo_engine::lifecycle::{Engine, RefreshOutcome, RevokeOutcome};
use qbo_store::Claimed;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long an environment stays paused after Intuit rejected our client credentials
/// before the scheduler probes it again.
pub const PAUSE_AFTER_INVALID_CLIENT: Duration = Duration::from_secs(300);

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct TickReport {
    pub claimed: usize,
    pub refreshed: usize,
    pub failed: usize,
    pub needs_reconnect: usize,
    pub config_errors: usize,
    pub other: usize,
    /// Unconfirmed revokes (`revoking`) retried in this pass, and how many Intuit confirmed.
    pub revoke_retries: usize,
    pub revoked: usize,
}

/// Spaces calls evenly: at most `per_second` starts per second.
struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl RateLimiter {
    fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let now = Instant::now();
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        // The timer's granularity is a millisecond: a start due within one is let go now
        // rather than parked for a whole tick (which capped high rates far below the limit).
        if at > now + Duration::from_millis(1) {
            tokio::time::sleep_until(at).await;
        }
    }
}

pub struct Scheduler {
    shared: Shared,
    cfg: SchedulerConfig,
    actor: Actor,
}

/// Paused environments: until when, and why.
type Pauses = HashMap<Environment, (DateTime<Utc>, String)>;

/// What every refresh task of the scheduler needs; cheap to clone into each task.
#[derive(Clone)]
struct Shared {
    engine: Arc<Engine>,
    limiters: Arc<HashMap<Environment, RateLimiter>>,
    paused: Arc<Mutex<Pauses>>,
    breaker: Arc<Breaker>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, cfg: SchedulerConfig, actor: Actor) -> Scheduler {
        let limiters = Environment::ALL
            .into_iter()
            .map(|e| (e, RateLimiter::new(cfg.rate_per_second)))
            .collect();
        Scheduler {
            shared: Shared {
                breaker: Arc::new(Breaker::new(engine.clone(), cfg.incidents.clone())),
                engine,
                limiters: Arc::new(limiters),
                paused: Arc::new(Mutex::new(HashMap::new())),
            },
            cfg,
            actor,
        }
    }

    /// The circuit breaker this scheduler opens incidents with: the health checks share it,
    /// for the accounting API's.
    pub(crate) fn breaker(&self) -> Arc<Breaker> {
        self.shared.breaker.clone()
    }

    /// Environments currently paused, with until when and why.
    pub fn paused(&self) -> Vec<(Environment, DateTime<Utc>, String)> {
        let now = self.shared.engine.clock.now();
        let map = self.shared.paused.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, (until, _))| *until > now)
            .map(|(e, (u, r))| (*e, *u, r.clone()))
            .collect()
    }

    fn active_environments(&self) -> Vec<Environment> {
        let engine = &self.shared.engine;
        Environment::ALL
            .into_iter()
            .filter(|e| engine.client(*e).is_ok())
            .filter(|e| {
                let paused = self.shared.is_paused(*e);
                let label = qbo_engine::metrics::EnvLabel {
                    environment: e.to_string(),
                };
                engine
                    .metrics
                    .environment_paused
                    .get_or_create(&label)
                    .set(i64::from(paused));
                !paused
            })
            .collect()
    }

    /// Refreshes everything that is due now until nothing due is left or `stop` is raised.
    /// Connections that fail transiently are scheduled later by their backoff, and each
    /// connection is attempted at most once a pass, so this always finishes. Each refresh
    /// runs as a task of its own, so they use every core.
    pub async fn run_once(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<TickReport> {
        let engine = &self.shared.engine;
        // One request id per pass ties its audit events together.
        let actor = self.actor.for_request();
        let lease = ChronoDuration::from_std(engine.refresh_config().lease)?;
        let batch_size = claim_batch(
            self.cfg.max_concurrency,
            self.cfg.rate_per_second,
            engine.refresh_config().lease,
        );
        // No more in flight than the rate limit starts within a claim's allowance: a task
        // queued behind the limiter longer than that would find its lease run short.
        let slots = self.cfg.max_concurrency.min(batch_size as usize).max(1);
        let mut report = TickReport::default();
        audit_gate(engine).await?;
        // Retried revokes are the daemon's revoke retry, in the same pass.
        let retrier = Actor {
            kind: ActorKind::Daemon(DaemonTask::RevokeRetry),
            request_id: actor.request_id.clone(),
        };
        if let Err(e) = self.retry_revokes(&retrier, stop, &mut report).await {
            log_failure(
                &e,
                "retrying unconfirmed revokes failed; trying again next tick",
            );
        }
        if let Err(e) = self.probe_incidents(&actor, stop, &mut report).await {
            log_failure(
                &e,
                "probing Intuit during an incident failed; trying again next tick",
            );
        }
        let mut queue: VecDeque<Claimed> = VecDeque::new();
        let mut in_flight = JoinSet::new();
        let mut attempted: HashSet<i64> = HashSet::new();
        let mut exhausted = false;
        let mut claim_error = None;
        loop {
            // Claims are made in batches, but work flows without a pause: the next batch is
            // claimed as soon as a slot frees up and the previous batch has all started.
            while in_flight.len() < slots {
                if queue.is_empty() && !exhausted {
                    if *stop.borrow() {
                        exhausted = true;
                    } else {
                        let envs = self.active_environments();
                        let now = engine.clock.now();
                        match engine
                            .store
                            .claim_due(engine.lease_owner(), now + lease, now, batch_size, &envs)
                            .await
                        {
                            Ok(batch) => {
                                exhausted = batch.is_empty();
                                for c in batch {
                                    if attempted.insert(c.record.id) {
                                        queue.push_back(c);
                                    } else {
                                        // Already attempted in this pass (given back, or due
                                        // again already): the next pass takes it. Ending
                                        // here is what keeps a pass from going round forever.
                                        self.shared.give_back(&c, "already attempted").await;
                                        exhausted = true;
                                    }
                                }
                            }
                            // Stop claiming, but let the refreshes in flight finish: dropping
                            // them could throw away tokens Intuit has already rotated.
                            Err(e) => {
                                exhausted = true;
                                claim_error = Some(e);
                            }
                        }
                    }
                }
                match queue.pop_front() {
                    Some(c) => {
                        report.claimed += 1;
                        in_flight.spawn(self.shared.clone().refresh_one(
                            c,
                            actor.clone(),
                            stop.clone(),
                        ));
                    }
                    None => break,
                }
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(RefreshOutcome::Refreshed { .. })
                | Ok(RefreshOutcome::AlreadyRefreshed { .. }) => report.refreshed += 1,
                Ok(RefreshOutcome::Failed { .. }) => report.failed += 1,
                Ok(RefreshOutcome::NeedsReconnect { .. }) => report.needs_reconnect += 1,
                Ok(RefreshOutcome::ConfigError { .. }) => report.config_errors += 1,
                Ok(_) => report.other += 1,
                Err(e) => {
                    report.other += 1;
                    log_failure(&e, "scheduled refresh failed");
                }
            }
        }
        match claim_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Reads the open incidents and probes each one whose probe is due (one daemon probes
    /// at a time): one refresh of the environment's most urgent connection, whose verdict
    /// counts toward the incident's end. A probe that ends it lets this pass catch up.
    async fn probe_incidents(
        &self,
        actor: &Actor,
        stop: &watch::Receiver<bool>,
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        let engine = &self.shared.engine;
        let breaker = &self.shared.breaker;
        let open = breaker.reload().await?;
        let lease = ChronoDuration::from_std(engine.refresh_config().lease)?;
        // A revoke endpoint's incident whose tenants are no longer waiting on a retry
        // (revoked, forgotten locally, purged) has nothing left to hold back.
        for incident in open.iter().filter(|i| i.holds_back(Endpoint::Revoke)) {
            if engine.store.revokes_waiting(incident.id).await? == 0 {
                breaker
                    .close(
                        incident.id,
                        actor,
                        "none of its tenants is waiting on a revoke any more",
                    )
                    .await?;
            }
        }
        // The accounting API's incidents are probed by the health checks, the revoke
        // endpoint's by the revoke retries.
        for incident in open.iter().filter(|i| i.holds_back(Endpoint::Token)) {
            let env = incident.environment;
            if *stop.borrow() || engine.client(env).is_err() {
                continue;
            }
            if !breaker.claim_probe(incident.id).await? {
                continue;
            }
            let now = engine.clock.now();
            let Some(c) = engine
                .store
                .claim_for_probe(engine.lease_owner(), now + lease, now, env)
                .await?
            else {
                continue;
            };
            self.shared.limiters[&env].wait().await;
            let id = c.record.id;
            report.claimed += 1;
            let outcome = engine.refresh_claimed(c, actor).await?.outcome;
            match &outcome {
                RefreshOutcome::Refreshed { .. } | RefreshOutcome::AlreadyRefreshed { .. } => {
                    report.refreshed += 1
                }
                RefreshOutcome::Failed { .. } => report.failed += 1,
                _ => report.other += 1,
            }
            breaker
                .probed_refresh(incident.id, id, &outcome, actor)
                .await?;
        }
        Ok(())
    }

    /// Retries the revokes Intuit has not confirmed yet whose backoff has passed. They are
    /// claimed with the same lease as refreshes (never as refreshes: a `revoking` row is
    /// not due for one), and go one at a time: revokes are rare.
    async fn retry_revokes(
        &self,
        actor: &Actor,
        stop: &watch::Receiver<bool>,
        report: &mut TickReport,
    ) -> anyhow::Result<()> {
        let engine = &self.shared.engine;
        let lease = ChronoDuration::from_std(engine.refresh_config().lease)?;
        let envs = self.active_environments();
        let now = engine.clock.now();
        let limit = claim_batch(
            self.cfg.max_concurrency,
            self.cfg.rate_per_second,
            engine.refresh_config().lease,
        );
        let claimed = engine
            .store
            .claim_revoking(engine.lease_owner(), now + lease, now, limit, &envs)
            .await?;
        let breaker = &self.shared.breaker;
        // Incidents of the revoke endpoint probed in this pass: one retry each.
        let mut probed: HashSet<i64> = HashSet::new();
        for c in claimed {
            let env = c.record.environment;
            if *stop.borrow() || self.shared.is_paused(env) {
                self.shared
                    .give_back(&c, "scheduler stopped or environment paused")
                    .await;
                continue;
            }
            // Intuit's revoke endpoint is failing for this environment: one retry goes as
            // the incident's probe every probe_every, the others wait for its end.
            let probe = breaker.tripped(env, Endpoint::Revoke);
            if let Some(incident) = probe {
                if probed.contains(&incident) || !breaker.claim_probe(incident).await? {
                    self.shared
                        .give_back(
                            &c,
                            "Intuit's revoke endpoint is failing: an incident holds revokes back",
                        )
                        .await;
                    continue;
                }
                probed.insert(incident);
            }
            self.shared.limiters[&env].wait().await;
            let id = c.record.id;
            report.revoke_retries += 1;
            let outcome = engine.revoke_claimed(c, actor).await;
            if let Ok(o) = &outcome {
                let judged = match probe {
                    Some(incident) => breaker.probed_revoke(incident, id, o, actor).await,
                    None => breaker.observe_revoke(env, id, o, actor).await,
                };
                if let Err(e) = judged {
                    log_failure(&e, "recording a revoke toward an incident failed");
                }
            }
            match outcome {
                Ok(RevokeOutcome::Revoked { .. }) => report.revoked += 1,
                Ok(RevokeOutcome::ConfigError { detail, .. }) => {
                    if !self.shared.is_paused(env) {
                        self.shared.pause(env, &detail);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    log_failure(&e, "scheduled revoke retry failed");
                    let later = engine.clock.now()
                        + ChronoDuration::from_std(engine.refresh_config().backoff_base)
                            .unwrap_or(ChronoDuration::seconds(30));
                    let _ = engine.store.defer(id, engine.lease_owner(), later).await;
                }
            }
        }
        Ok(())
    }

    /// Runs until `stop` is raised: a pass every tick (or at once when nudged).
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        self.shared
            .engine
            .update_scheduler_state(|s| s.running = true);
        let mut ticks = super::Ticks::new(self.cfg.tick, stop);
        while ticks.next().await {
            match self.run_once(ticks.stop()).await {
                Ok(r) if r.claimed > 0 || r.revoke_retries > 0 => {
                    tracing::info!(?r, "scheduler pass")
                }
                Ok(_) => {}
                Err(e) => log_failure(&e, "scheduler pass failed; retrying next tick"),
            }
        }
        self.shared
            .engine
            .update_scheduler_state(|s| s.running = false);
    }
}

/// Nothing is sent to Intuit that the daemon could not record: while rows stored past the
/// audit chain's head block every write to the log, a refresh would spend a refresh token
/// and then fail to commit what Intuit answered (the new token thrown away). The pass is
/// skipped, with an error naming the damage and the verb that repairs it, and the state
/// is published for the console's header (and `/healthz`, which asks the store itself).
pub async fn audit_gate(engine: &Engine) -> anyhow::Result<()> {
    let blocked = engine.store.audit_blocked().await?;
    if engine.scheduler_state().borrow().audit_blocked != blocked {
        engine.update_scheduler_state(|s| s.audit_blocked = blocked.clone());
    }
    match blocked {
        None => Ok(()),
        Some(b) => Err(anyhow::Error::from(b)
            .context("pass skipped: no refresh token is sent to Intuit while the audit log cannot record the answer")),
    }
}

/// How many due connections one claim takes: enough that claims (each a write that scans
/// the due rows) are rare under load, but never more than the rate limit lets start
/// within an eighth of the lease. The tasks in flight are bounded by the same figure, so
/// the last row of a claim waits at most a quarter of the lease before its call to Intuit.
fn claim_batch(max_concurrency: usize, rate_per_second: u32, lease: Duration) -> i64 {
    let by_concurrency = max_concurrency.saturating_mul(8).max(16);
    let by_rate = (f64::from(rate_per_second) * lease.as_secs_f64() / 8.0) as usize;
    by_concurrency.min(by_rate).max(1) as i64
}

impl Shared {
    /// Paused for our credentials, or held back by an incident of Intuit's.
    fn is_paused(&self, env: Environment) -> bool {
        let now = self.engine.clock.now();
        let map = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&env).is_some_and(|(until, _)| *until > now)
            || self.breaker.tripped(env, Endpoint::Token).is_some()
    }

    fn pause(&self, env: Environment, reason: &str) {
        let until = self.engine.clock.now()
            + ChronoDuration::from_std(PAUSE_AFTER_INVALID_CLIENT)
                .unwrap_or(ChronoDuration::minutes(5));
        tracing::error!(
            environment = %env,
            until = %until,
            "INTUIT REJECTED OUR CLIENT CREDENTIALS: all {env} refreshes are paused; no tenant is marked dead. \
             Fix client_id/client_secret for [environments.{env}]. {reason}"
        );
        self.paused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(env, (until, reason.to_string()));
        self.engine.update_scheduler_state(|s| {
            s.paused.retain(|p| p.environment != env);
            s.paused.push(qbo_core::domain::PausedEnvironment {
                environment: env,
                until,
                reason: reason.to_string(),
            });
        });
        let label = qbo_engine::metrics::EnvLabel {
            environment: env.to_string(),
        };
        self.engine
            .metrics
            .environment_paused
            .get_or_create(&label)
            .set(1);
    }

    /// Releases a claimed connection untouched (best effort: a lease left behind expires).
    async fn give_back(&self, c: &Claimed, why: &str) -> RefreshOutcome {
        let _ = self.engine.store.release_unsent(&c.lease).await;
        RefreshOutcome::Skipped { reason: why.into() }
    }

    async fn refresh_one(
        self,
        c: Claimed,
        actor: Actor,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<RefreshOutcome> {
        let env = c.record.environment;
        if *stop.borrow() || self.is_paused(env) {
            return Ok(self
                .give_back(&c, "scheduler stopped or environment paused")
                .await);
        }
        self.limiters[&env].wait().await;
        if *stop.borrow() {
            return Ok(self.give_back(&c, "scheduler stopped").await);
        }
        // Whether the claim's lease still covers the call to Intuit and its commit is the
        // engine's to judge (by this process's monotonic clock, under the flight guard):
        // a claim that waited too long is given back there, unsent.
        let id = c.record.id;
        let was_failing = c.record.consecutive_failures > 0;
        let r = self
            .engine
            .refresh_claimed(c, &actor)
            .await
            .map(|r| r.outcome);
        if r.is_err() {
            // No verdict (a stored value that will not open, the database failing): try
            // again after the backoff base rather than at once, every pass.
            let later = self.engine.clock.now()
                + ChronoDuration::from_std(self.engine.refresh_config().backoff_base)
                    .unwrap_or(ChronoDuration::seconds(30));
            let owner = self.engine.lease_owner();
            let _ = self.engine.store.defer(id, owner, later).await;
        }
        // Pause at once, so the rest of the work in flight does not repeat the mistake.
        if let Ok(RefreshOutcome::ConfigError { detail, .. }) = &r {
            if !self.is_paused(env) {
                self.pause(env, detail);
            }
        }
        if let Ok(outcome) = &r {
            if let Err(e) = self
                .breaker
                .observe_refresh(env, id, outcome, &actor, was_failing)
                .await
            {
                log_failure(&e, "recording a refresh toward an incident failed");
            }
        }
        r
    }
}

/// An error line whose chain may carry Intuit's words or a tenant's name: escaped, as the
/// plain log format writes fields raw.
fn log_failure(e: &anyhow::Error, what: &'static str) {
    tracing::error!(error = %qbo_core::text::Safe(&format!("{e:#}")), "{what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_carrying_outside_text_is_logged_escaped() {
        let e = anyhow::anyhow!("{}", qbo_core::test_log::HOSTILE).context("refreshing tenant x");
        let log = qbo_core::test_log::captured(|| log_failure(&e, "scheduled refresh failed"));
        let text = String::from_utf8_lossy(&log);
        assert_eq!(
            qbo_core::test_log::raw_controls(&log),
            Vec::<char>::new(),
            "{text:?}"
        );
        assert!(
            text.contains("refreshing tenant x: bad\\r\\x1b[2J"),
            "{text}"
        );
    }

    #[test]
    fn a_claim_never_outruns_its_lease() {
        // Fast limits: eight rows per slot.
        assert_eq!(claim_batch(64, 1_000_000, Duration::from_secs(60)), 512);
        assert_eq!(claim_batch(1, 1_000_000, Duration::from_secs(60)), 16);
        // A slow limit: 1 a second with a 60 s lease claims 7, started within 7 s.
        assert_eq!(claim_batch(64, 1, Duration::from_secs(60)), 7);
        // The defaults (10 at once, 50 a second, 60 s lease).
        assert_eq!(claim_batch(10, 50, Duration::from_secs(60)), 80);
        // Never zero, however slow.
        assert_eq!(claim_batch(10, 1, Duration::from_secs(2)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limiter_spaces_calls_evenly() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        for _ in 0..21 {
            limiter.wait().await;
        }
        // 21 calls at 10 per second: the first at once, the last two seconds later.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
