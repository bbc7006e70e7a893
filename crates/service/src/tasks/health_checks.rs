//! Health checks: the daemon calls CompanyInfo for each live connection once per
//! `[health] interval`, through the same `verify` an operator runs, and records the
//! outcome as the connection's sync status (audited as `verify` by the scheduler).
//!
//! Each connection has its own point in the interval (its id spread by the golden ratio),
//! so checks are spread evenly instead of all landing at once, and a restart does not
//! check everything again: a connection is due when its point has passed since its last
//! check. At most `[health] max_concurrency` (≤ 10, Intuit's concurrency limit) run at
//! once; a check makes at most two calls per realm, far under 500 a minute.
//!
//! Many companies' checks failing the same way at once is an incident of Intuit's
//! accounting API (the scheduler's circuit breaker, shared): while it lasts the
//! environment's checks stop but for a probe every `[scheduler.incidents] probe_every`
//! (at most once a pass), and when it ends the companies it failed on are checked again.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::HealthConfig;
use qbo_core::domain::{ErrorClass, Status, SyncStatus};
use qbo_core::identity::Actor;
use qbo_core::incident::Endpoint;
use qbo_engine::lifecycle::{Engine, VerifyOutcome};
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{HealthDue, HealthMark};

use super::incidents::Breaker;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    pub checked: usize,
    pub ok: usize,
    pub failed: usize,
    /// Not checked: their environment is paused or held back by an incident of Intuit's
    /// accounting API, another daemon took the check, or the check ended without a verdict.
    pub skipped: usize,
    /// Checks made as an incident's probes (counted in `checked` too).
    pub probes: usize,
    /// Connections that entered `needs_reconnect` since their last sync, recorded as a
    /// failed sync without a call to Intuit.
    pub dead: usize,
}

pub struct HealthChecker {
    engine: Arc<Engine>,
    cfg: HealthConfig,
    actor: Actor,
    breaker: Arc<Breaker>,
}

/// Connections read per page by a health pass.
const HEALTH_PAGE: i64 = 2000;

impl HealthChecker {
    pub(crate) fn new(
        engine: Arc<Engine>,
        cfg: HealthConfig,
        actor: Actor,
        breaker: Arc<Breaker>,
    ) -> HealthChecker {
        HealthChecker {
            engine,
            cfg,
            actor,
            breaker,
        }
    }

    /// Of the live connections with ids above `after` (a page of at most `HEALTH_PAGE`),
    /// those whose point in the interval has passed since their last check (or since they
    /// were created); and the last id read, `None` once the table is read to its end.
    async fn due_page(&self, after: i64) -> anyhow::Result<(Vec<i64>, Option<i64>)> {
        let now = self.engine.clock.now();
        let interval = ChronoDuration::from_std(self.cfg.interval)?;
        let rows = self
            .engine
            .store
            .health_candidates(after, HEALTH_PAGE)
            .await?;
        let next = match rows.last() {
            Some(last) if rows.len() as i64 == HEALTH_PAGE => Some(last.id),
            _ => None,
        };
        let due = rows
            .into_iter()
            .filter(|r| is_due(r, now, interval))
            .map(|r| r.id)
            .collect();
        Ok((due, next))
    }

    /// Checks every connection due now, at most `max_concurrency` at once. The table is
    /// read a page at a time, so a pass over 100,000 connections holds one page of ids.
    pub async fn run_once(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<HealthReport> {
        // A check may refresh an expired access token: not while the answer could not be
        // recorded (see `scheduler::audit_gate`).
        super::scheduler::audit_gate(&self.engine).await?;
        let actor = self.actor.for_request();
        let mut report = HealthReport {
            dead: self.record_dead(&actor).await?,
            ..Default::default()
        };
        if let Err(e) = self.probe_incidents(&actor, stop, &mut report).await {
            tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "probing Intuit's accounting API during an incident failed; trying again next pass");
        }
        let mut after = Some(0);
        while let Some(from) = after {
            if *stop.borrow() {
                break;
            }
            let (due, next) = self.due_page(from).await?;
            after = next;
            self.check_all(due, &actor, stop, &mut report).await;
        }
        Ok(report)
    }

    /// Probes each open incident of the accounting API whose probe is due (one daemon at a
    /// time): a health check of one of its companies, drawn at random, whose verdict counts
    /// toward its end. An incident none of whose companies is live any more (revoked, dead)
    /// has nothing left to hold back: it ends.
    async fn probe_incidents(
        &self,
        actor: &Actor,
        stop: &watch::Receiver<bool>,
        report: &mut HealthReport,
    ) -> anyhow::Result<()> {
        let store = &self.engine.store;
        let open = self.breaker.reload().await?;
        for incident in open.iter().filter(|i| i.holds_back(Endpoint::Accounting)) {
            let now = self.engine.clock.now();
            let paused = self.engine.scheduler_state().borrow().paused_at(now);
            if *stop.borrow()
                || self.engine.client(incident.environment).is_err()
                || paused.contains(&incident.environment)
            {
                continue;
            }
            if !self.breaker.claim_probe(incident.id).await? {
                continue;
            }
            let Some(id) = store.probe_member(incident.id).await? else {
                self.breaker
                    .close(incident.id, actor, "none of its companies is live any more")
                    .await?;
                continue;
            };
            // A probe that ends in an error of ours says nothing of Intuit; the other
            // environment's incident is still probed.
            let outcome = match self.engine.verify(id, actor).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), incident = incident.id, "a probe of Intuit's accounting API ended in an error; the next one is due after probe_every");
                    report.skipped += 1;
                    continue;
                }
            };
            report.probes += 1;
            match &outcome {
                VerifyOutcome::Ok { .. } => {
                    report.checked += 1;
                    report.ok += 1
                }
                VerifyOutcome::Failed { .. } | VerifyOutcome::RefreshFailed { .. } => {
                    report.checked += 1;
                    report.failed += 1
                }
                _ => report.skipped += 1,
            }
            self.breaker
                .probed_check(incident.id, id, &outcome, actor)
                .await?;
        }
        Ok(())
    }

    async fn check_all(
        &self,
        due: Vec<i64>,
        actor: &Actor,
        stop: &watch::Receiver<bool>,
        report: &mut HealthReport,
    ) {
        let mut queue = due.into_iter();
        let mut in_flight = JoinSet::new();
        let interval = ChronoDuration::from_std(self.cfg.interval).unwrap_or(ChronoDuration::MAX);
        loop {
            while in_flight.len() < self.cfg.max_concurrency.max(1) && !*stop.borrow() {
                let Some(id) = queue.next() else { break };
                let engine = self.engine.clone();
                let breaker = self.breaker.clone();
                let actor = actor.clone();
                in_flight
                    .spawn(async move { check_one(&engine, &breaker, id, &actor, interval).await });
            }
            let Some(joined) = in_flight.join_next().await else {
                break;
            };
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(Some(true)) => {
                    report.checked += 1;
                    report.ok += 1
                }
                Ok(Some(false)) => {
                    report.checked += 1;
                    report.failed += 1
                }
                Ok(None) => report.skipped += 1,
                Err(e) => {
                    report.skipped += 1;
                    tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "health check failed");
                }
            }
        }
    }

    /// A connection that needs reconnecting cannot sync, whichever found it out (the
    /// scheduler's refresh usually does, before its check comes round): its sync status
    /// says so at once, with the reason, so `list` and the console never show a dead
    /// connection's last good sync as current. No call to Intuit: the grant is known dead.
    async fn record_dead(&self, actor: &Actor) -> anyhow::Result<usize> {
        let engine = &self.engine;
        let dead = engine
            .store
            .list_connections(&qbo_store::ConnectionFilter {
                status: Some(Status::NeedsReconnect),
                environment: None,
            })
            .await?;
        let mut n = 0;
        for rec in dead {
            let stale = rec.last_sync_status != Some(SyncStatus::Failed)
                || rec.last_sync_at < rec.last_refresh_at;
            if !stale {
                continue;
            }
            let now = engine.clock.now();
            let detail = format!(
                "needs reconnect: {}",
                rec.status_reason
                    .as_deref()
                    .unwrap_or("Intuit refused the refresh token")
            );
            let mut ev = AuditEvent::new(now, actor, Action::Verify, Outcome::Failed).about(&rec);
            ev.error_class = Some(ErrorClass::InvalidGrant.as_str().into());
            ev.reason = Some(format!("{detail} (recorded without calling Intuit)"));
            let mut tx = engine.store.begin().await?;
            tx.record_sync(rec.id, now, SyncStatus::Failed, &detail, None, None, None)
                .await?;
            tx.record_health_check(rec.id, now, HealthMark::Inconclusive)
                .await?;
            engine.commit_audited(tx, &[ev]).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Runs until `stop` is raised, looking for due checks every so often (a thousandth
    /// of the interval, between 1 s and 1 min).
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let every =
            (self.cfg.interval / 1000).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut ticks = super::Ticks::new(every, stop);
        while ticks.next().await {
            match self.run_once(ticks.stop()).await {
                Ok(r) if r.checked > 0 || r.dead > 0 => tracing::info!(?r, "health checks"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "health checks failed; retrying")
                }
            }
        }
    }
}

/// One check: `Some(true)` CompanyInfo answered, `Some(false)` the check failed (and is
/// recorded as the sync status), `None` nothing was recorded (environment paused or held
/// back by an incident, connection gone or no longer live).
async fn check_one(
    engine: &Engine,
    breaker: &Breaker,
    id: i64,
    actor: &Actor,
    interval: ChronoDuration,
) -> anyhow::Result<Option<bool>> {
    let Some(rec) = engine.store.get_connection(id).await? else {
        return Ok(None);
    };
    // A paused environment's credentials are known bad: a check would only spend a
    // refresh attempt on them. The forecast reports those connections instead.
    let now = engine.clock.now();
    let paused = engine.scheduler_state().borrow().paused_at(now);
    if !rec.status.is_live() || paused.contains(&rec.environment) {
        return Ok(None);
    }
    // Intuit's accounting API is down for this environment: the check stays due (it is
    // not taken) and runs when the incident ends.
    if breaker
        .tripped(rec.environment, Endpoint::Accounting)
        .is_some()
    {
        return Ok(None);
    }
    // Another daemon on the same database may have read the same page: one takes it.
    let mut tx = engine.store.begin().await?;
    let taken = tx
        .take_health_check(id, last_point(id, now, interval), now)
        .await?;
    tx.commit().await?;
    if !taken {
        return Ok(None);
    }
    let outcome = engine.verify(id, actor).await?;
    let was_failing = rec.last_sync_status == Some(SyncStatus::Failed);
    if let Err(e) = breaker
        .observe_check(rec.environment, id, &outcome, actor, was_failing)
        .await
    {
        tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "recording a health check toward an incident failed");
    }
    Ok(match outcome {
        VerifyOutcome::Ok { .. } => Some(true),
        VerifyOutcome::Failed { .. } | VerifyOutcome::RefreshFailed { .. } => Some(false),
        VerifyOutcome::Skipped { .. } | VerifyOutcome::Error { .. } => None,
    })
}

/// Where in each interval a connection's check falls: its id times the golden ratio,
/// modulo 1, of the interval. Consecutive ids land far apart, and any number of them
/// fill the interval evenly.
fn offset(id: i64, interval: ChronoDuration) -> ChronoDuration {
    const PHI_FRACTION: f64 = 0.618_033_988_749_894_9;
    let frac = (id as f64 * PHI_FRACTION).fract();
    ChronoDuration::milliseconds((interval.num_milliseconds() as f64 * frac) as i64)
}

/// The latest point at or before `now` at which `id`'s check falls.
fn last_point(id: i64, now: DateTime<Utc>, interval: ChronoDuration) -> DateTime<Utc> {
    let off = offset(id, interval).num_milliseconds();
    let step = interval.num_milliseconds().max(1);
    let since = now.timestamp_millis() - off;
    let k = since.div_euclid(step);
    DateTime::<Utc>::from_timestamp_millis(k * step + off).unwrap_or(now)
}

fn is_due(r: &HealthDue, now: DateTime<Utc>, interval: ChronoDuration) -> bool {
    r.checked_at.unwrap_or(r.created_at) < last_point(r.id, now, interval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn checks_are_spread_evenly_over_the_interval() {
        let day = ChronoDuration::days(1);
        let mut hours = [0usize; 24];
        for id in 1..=2400 {
            hours[(offset(id, day).num_minutes() / 60) as usize] += 1;
        }
        // 2,400 connections over 24 hours: about 100 an hour, none crowded.
        assert!(hours.iter().all(|n| (80..=120).contains(n)), "{hours:?}");
    }

    #[test]
    fn a_connection_is_due_once_per_interval_at_its_own_point() {
        let day = ChronoDuration::days(1);
        let now = Utc.with_ymd_and_hms(2030, 1, 10, 12, 0, 0).unwrap();
        let point = last_point(7, now, day);
        assert!(point <= now && now - point < day);
        let checked_after = HealthDue {
            id: 7,
            created_at: now - ChronoDuration::days(30),
            checked_at: Some(point + ChronoDuration::seconds(1)),
        };
        assert!(!is_due(&checked_after, now, day));
        let checked_before = HealthDue {
            checked_at: Some(point - ChronoDuration::seconds(1)),
            ..checked_after.clone()
        };
        assert!(is_due(&checked_before, now, day));
        // Never checked: due at its first point after creation, not at once.
        let new = HealthDue {
            id: 7,
            created_at: now - ChronoDuration::seconds(1),
            checked_at: None,
        };
        assert!(!is_due(&new, now, day));
        assert!(is_due(&new, now + day, day));
    }
}
