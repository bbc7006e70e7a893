//! The daemon's view of Intuit as a whole: it notices correlated failures (many
//! connections of one environment failing at one of Intuit's endpoints the same way within
//! a window, against the calls tried there), opens one incident for them, and then stops
//! that environment's calls to that endpoint but for a probe every `probe_every` (a circuit
//! breaker) instead of letting each connection back off on its own. When `recovery_probes`
//! probes in a row succeed it closes the incident and makes its connections due at once.
//!
//! Two endpoints are watched: the token endpoint through the scheduler's refreshes (after
//! an incident the scheduler's claim order, refresh tokens closest to their lapse first,
//! and its rate limit do the catch-up) and the accounting API through the health checks
//! (refreshes go on meanwhile; the companies checked during it are checked again at once).
//! The revoke endpoint is watched through the daemon's revoke retries (an operator's own
//! revoke is answered at once, to the operator): while an incident lasts one retry goes as
//! its probe, and when it ends its tenants' retries are due at once.
//!
//! The incidents are rows in the database, so every daemon sharing it breaks the same
//! circuit, only one probes at a time, and the opening and the end are recorded once. Each
//! daemon makes only a part of the calls, so each also writes what its window holds to
//! `incident_evidence` at each failure (and its count of calls now and then) and judges on
//! its own counts plus the others': three daemons each seeing four of twelve failing
//! companies see one outage of twelve. Only its own failures are members when it opens an
//! incident; the others add theirs when they next read the open incidents.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::IncidentsConfig;
use qbo_core::domain::{Environment, ErrorClass};
use qbo_core::identity::Actor;
use qbo_core::incident::{Endpoint, Incident, IncidentClass};
use qbo_engine::lifecycle::{Engine, RefreshOutcome, RevokeOutcome, VerifyOutcome};
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::IncidentMember;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// An environment and one of Intuit's endpoints in it: what an incident is about.
type Scope = (Environment, Endpoint);

/// One call the daemon made (a refresh, a health check), as the detector keeps it.
#[derive(Debug, Clone)]
struct Observation {
    at: DateTime<Utc>,
    connection_id: i64,
    /// `None`: Intuit answered as it should (a success, or a refusal that is the
    /// connection's own, such as a dead grant).
    failure: Option<Failure>,
}

#[derive(Debug, Clone)]
struct Failure {
    class: IncidentClass,
    error_class: ErrorClass,
    intuit_tid: Option<String>,
    detail: String,
}

impl Failure {
    /// A failed call as the engine recorded it, if its class is one an incident is made of
    /// (Intuit's, or our credentials'); `None`: the connection's own.
    fn of(error_class: ErrorClass, detail: &str, intuit_tid: &Option<String>) -> Option<Failure> {
        IncidentClass::of_failure(error_class, detail).map(|class| Failure {
            class,
            error_class,
            intuit_tid: intuit_tid.clone(),
            detail: detail.to_string(),
        })
    }

    /// `of`, for the endpoints where only Intuit's failures count: a 401 at the accounting
    /// API or the revoke endpoint is the company's own, not our client's.
    fn of_intuit(
        error_class: ErrorClass,
        detail: &str,
        intuit_tid: &Option<String>,
    ) -> Option<Failure> {
        Failure::of(error_class, detail, intuit_tid).filter(|f| !f.class.is_ours())
    }
}

/// Correlated failures enough to open an incident.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Suspicion {
    pub class: IncidentClass,
    pub error_class: ErrorClass,
    pub started_at: DateTime<Utc>,
    pub members: Vec<IncidentMember>,
    pub attempts: usize,
    pub failures: usize,
    /// Connections failing with the class, this daemon's and the others'.
    pub connections: usize,
    pub detail: String,
}

/// What the other daemons sharing the database saw of a scope within the window, summed:
/// their calls, and per class their failures and the connections those were of.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Others {
    attempts: usize,
    by_class: BTreeMap<IncidentClass, (usize, usize)>,
}

impl Others {
    /// Sums other daemons' rows: each daemon's calls from its newest row (every row it
    /// writes carries its whole window's count), its failures per class from each. A row
    /// is as of its daemon's last failure, so what has left that window since still counts
    /// until the row itself is older than the window: the shared view errs toward seeing
    /// an outage a little longer, never toward missing one.
    fn of(rows: &[qbo_store::Evidence]) -> Others {
        let mut newest: HashMap<&str, (DateTime<Utc>, i64)> = HashMap::new();
        let mut by_class: BTreeMap<IncidentClass, (usize, usize)> = BTreeMap::new();
        for r in rows {
            let e = newest.entry(r.owner.as_str()).or_insert((r.at, r.attempts));
            if r.at > e.0 {
                *e = (r.at, r.attempts);
            }
            if let Some(c) = r.class.filter(|c| !c.is_ours()) {
                let (f, n) = by_class.entry(c).or_default();
                *f += usize::try_from(r.failures).unwrap_or(0);
                *n += usize::try_from(r.connections).unwrap_or(0);
            }
        }
        Others {
            attempts: newest
                .values()
                .map(|(_, a)| usize::try_from(*a).unwrap_or(0))
                .sum(),
            by_class,
        }
    }
}

/// One scope's calls within the window, with the counts the rule reads kept as calls
/// enter and leave: a call costs the same whatever the window holds. Calls that went well
/// are only counted, per second: a catch-up at 4,000 refreshes a second over a 5-minute
/// window keeps 300 numbers, not 1.2 million calls (about 100 MB). Failures are kept one
/// by one (the incident's members are read from them); an outage's many open an incident,
/// which empties the window.
#[derive(Default)]
struct Window {
    /// Calls that did not fail at Intuit: (unix second, how many), oldest first.
    ok: VecDeque<(i64, usize)>,
    ok_total: usize,
    /// Calls that failed at Intuit, oldest first.
    failed: VecDeque<Observation>,
    /// Per class: failures, and failures per connection (its keys are the distinct ones).
    classes: BTreeMap<IncidentClass, (usize, HashMap<i64, usize>)>,
}

impl Window {
    fn push(&mut self, o: Observation) {
        let Some(f) = o.failure.as_ref() else {
            let second = o.at.timestamp();
            match self.ok.back_mut() {
                // A call finishing a little out of order joins the newest second.
                Some((s, n)) if *s >= second => *n += 1,
                _ => self.ok.push_back((second, 1)),
            }
            self.ok_total += 1;
            return;
        };
        if !f.class.is_ours() {
            let (n, by) = self.classes.entry(f.class).or_default();
            *n += 1;
            *by.entry(o.connection_id).or_default() += 1;
        }
        self.failed.push_back(o);
    }

    /// Every call in the window, failed or not.
    fn attempts(&self) -> usize {
        self.ok_total + self.failed.len()
    }

    fn expire(&mut self, before: DateTime<Utc>) {
        // A second's count leaves once the whole second is before the window.
        while self
            .ok
            .front()
            .is_some_and(|(s, _)| *s < before.timestamp())
        {
            if let Some((_, n)) = self.ok.pop_front() {
                self.ok_total -= n;
            }
        }
        while self.failed.front().is_some_and(|o| o.at < before) {
            let Some(o) = self.failed.pop_front() else {
                break;
            };
            let Some(f) = o.failure.as_ref().filter(|f| !f.class.is_ours()) else {
                continue;
            };
            if let Some((n, by)) = self.classes.get_mut(&f.class) {
                *n -= 1;
                if let Some(k) = by.get_mut(&o.connection_id) {
                    *k -= 1;
                    if *k == 0 {
                        by.remove(&o.connection_id);
                    }
                }
            }
        }
    }
}

/// The calls of the last `window`, per environment and endpoint, and the rule that reads
/// them. Pure: the clock is passed in.
pub(crate) struct Detector {
    cfg: IncidentsConfig,
    seen: HashMap<Scope, Window>,
}

impl Detector {
    pub fn new(cfg: IncidentsConfig) -> Detector {
        Detector {
            cfg,
            seen: HashMap::new(),
        }
    }

    fn observe(&mut self, scope: Scope, o: Observation) {
        self.seen.entry(scope).or_default().push(o);
    }

    /// Forgets a scope's calls (an incident opened or closed over them).
    fn forget(&mut self, scope: Scope) {
        self.seen.remove(&scope);
    }

    /// The scope's calls within the window, and per class of failure the failures and the
    /// connections they were of, after forgetting what left the window.
    fn counts(
        &mut self,
        scope: Scope,
        now: DateTime<Utc>,
    ) -> (usize, Vec<(IncidentClass, usize, usize)>) {
        let Some(w) = self.seen.get_mut(&scope) else {
            return (0, Vec::new());
        };
        if let Ok(window) = ChronoDuration::from_std(self.cfg.window) {
            w.expire(now - window);
        }
        let classes = w
            .classes
            .iter()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(c, (n, by))| (*c, *n, by.len()))
            .collect();
        (w.attempts(), classes)
    }

    /// The connections failing at Intuit in the scope's window (any class: an incident of
    /// Intuit's takes every kind of its failures, as joining it does), each with its first
    /// failure there, and the scope forgotten: another daemon opened an incident over them.
    /// What left the window first is not theirs: a quiet scope's calls are not expired
    /// until the next one comes.
    fn take_members(&mut self, scope: Scope, now: DateTime<Utc>) -> Vec<IncidentMember> {
        let Some(mut w) = self.seen.remove(&scope) else {
            return Vec::new();
        };
        if let Ok(window) = ChronoDuration::from_std(self.cfg.window) {
            w.expire(now - window);
        }
        let mut members: BTreeMap<i64, IncidentMember> = BTreeMap::new();
        for c in IncidentClass::ALL.into_iter().filter(|c| !c.is_ours()) {
            for (id, m) in members_of(&w, c) {
                members.entry(id).or_insert(m);
            }
        }
        members.into_values().collect()
    }

    /// Whether the scope's calls within the window make an incident of Intuit's: for one
    /// error class, at least `min_connections` connections failing with it, and those
    /// failures at least `min_share` of the calls tried. One class, as an outage looks:
    /// companies each failing their own way (a 503 here, a timeout there) are not one.
    ///
    /// `others`: what the other daemons sharing the database saw, added to this one's
    /// counts. A class is judged only where this daemon saw it fail too.
    fn suspect(&mut self, scope: Scope, now: DateTime<Utc>, others: &Others) -> Option<Suspicion> {
        let window = ChronoDuration::from_std(self.cfg.window).ok()?;
        let w = self.seen.get_mut(&scope)?;
        w.expire(now - window);
        let attempts = w.attempts() + others.attempts;
        // The class with the most connections failing, by the counts alone.
        let (class, failures, distinct) = w
            .classes
            .iter()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(c, (n, by))| {
                let (f, k) = others.by_class.get(c).copied().unwrap_or_default();
                (*c, *n + f, by.len() + k)
            })
            .max_by_key(|(c, _, d)| (*d, std::cmp::Reverse(*c)))?;
        let share = failures as f64 / attempts.max(1) as f64;
        if distinct < self.cfg.min_connections as usize || share < self.cfg.min_share {
            return None;
        }
        // Rare from here on: the incident is opening, its members are read out.
        let sample = w.failed.iter().find_map(|o| {
            o.failure
                .as_ref()
                .filter(|f| f.class == class)
                .map(|f| (o.at, f))
        })?;
        Some(Suspicion {
            class,
            error_class: sample.1.error_class,
            started_at: sample.0,
            members: members_of(w, class).into_values().collect(),
            attempts,
            failures,
            connections: distinct,
            detail: sample.1.detail.clone(),
        })
    }
}

/// The connections failing with `class` in a window, each with its first failure there.
fn members_of(w: &Window, class: IncidentClass) -> BTreeMap<i64, IncidentMember> {
    let mut members: BTreeMap<i64, IncidentMember> = BTreeMap::new();
    for o in &w.failed {
        let Some(f) = o.failure.as_ref().filter(|f| f.class == class) else {
            continue;
        };
        members
            .entry(o.connection_id)
            .or_insert_with(|| IncidentMember {
                connection_id: o.connection_id,
                failed_at: o.at,
                intuit_tid: f.intuit_tid.clone(),
            });
    }
    members
}

/// What a refresh's outcome says about Intuit: `Some(None)` answered well, `Some(failure)`
/// failed at Intuit, `None` says nothing (skipped, busy, an error of ours).
fn reading(outcome: &RefreshOutcome) -> Option<Option<Failure>> {
    match outcome {
        RefreshOutcome::Refreshed { .. }
        | RefreshOutcome::AlreadyRefreshed { .. }
        | RefreshOutcome::NeedsReconnect { .. } => Some(None),
        RefreshOutcome::Failed {
            error_class,
            detail,
            intuit_tid,
            ..
        } => Some(Failure::of(*error_class, detail, intuit_tid)),
        // Only Intuit's own refusal of our client is an incident about us; a missing
        // environment section is a configuration error with no call made.
        RefreshOutcome::ConfigError { detail, intuit_tid } if detail.contains("invalid_client") => {
            Some(Some(Failure {
                class: IncidentClass::InvalidClient,
                error_class: ErrorClass::InvalidClient,
                intuit_tid: intuit_tid.clone(),
                detail: detail.clone(),
            }))
        }
        _ => None,
    }
}

/// What a health check's outcome says about Intuit's accounting API, as `reading` does for
/// a refresh. A check that could not get an access token says nothing of the accounting
/// API (the token endpoint's failures are the scheduler's to judge), and a 401 or 403 is
/// the company's own (a disconnect, a lapsed subscription).
fn reading_of_check(outcome: &VerifyOutcome) -> Option<Option<Failure>> {
    match outcome {
        VerifyOutcome::Ok { .. } => Some(None),
        VerifyOutcome::Failed {
            error_class,
            detail,
            intuit_tid,
        } => Some(Failure::of_intuit(*error_class, detail, intuit_tid)),
        VerifyOutcome::RefreshFailed { .. }
        | VerifyOutcome::Skipped { .. }
        | VerifyOutcome::Error { .. } => None,
    }
}

/// What a revoke retry's outcome says about Intuit's revoke endpoint. Our own credentials
/// refused pause the environment as before (the scheduler's business), and outcomes with no
/// call to Intuit say nothing.
fn reading_of_revoke(outcome: &RevokeOutcome) -> Option<Option<Failure>> {
    match outcome {
        RevokeOutcome::Revoked { .. } => Some(None),
        RevokeOutcome::Revoking {
            error_class,
            detail,
            intuit_tid,
            ..
        } => Some(Failure::of_intuit(*error_class, detail, intuit_tid)),
        _ => None,
    }
}

/// The circuit breaker: the open incidents as the scheduler acts on them, and the
/// detector that opens them.
pub(crate) struct Breaker {
    engine: Arc<Engine>,
    cfg: IncidentsConfig,
    detector: Mutex<Detector>,
    /// The open incidents, as last read from the database.
    open: Mutex<Vec<Incident>>,
    /// When this daemon last wrote its count of calls to a scope without a failure.
    shared_at: Mutex<HashMap<Scope, DateTime<Utc>>>,
    /// Held while the open incidents are read and swapped in.
    reloading: tokio::sync::Mutex<()>,
}

/// How often a daemon whose calls all succeed writes its count of them for the others: the
/// share of failures the others judge on counts its calls too.
const SHARE_CALLS_EVERY: ChronoDuration = ChronoDuration::seconds(30);

impl Breaker {
    pub fn new(engine: Arc<Engine>, cfg: IncidentsConfig) -> Breaker {
        Breaker {
            engine,
            detector: Mutex::new(Detector::new(cfg.clone())),
            cfg,
            open: Mutex::new(Vec::new()),
            shared_at: Mutex::new(HashMap::new()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn probe_every(&self) -> ChronoDuration {
        ChronoDuration::from_std(self.cfg.probe_every).unwrap_or(ChronoDuration::seconds(30))
    }

    /// Reads the open incidents (another daemon may have opened or closed one) and
    /// publishes them for the console's banner. An incident another daemon opened takes in
    /// this one's failures of its kind; one that ended elsewhere is forgotten here too.
    pub async fn reload(&self) -> anyhow::Result<Vec<Incident>> {
        // One at a time (the scheduler's pass, the health checks and the revoke retries
        // share this breaker): an older read landing after a newer one would bring a closed
        // incident back, or drop an open one, until the next.
        let _one = self.reloading.lock().await;
        let open = self.engine.store.open_incidents().await?;
        let before = std::mem::replace(
            &mut *self.open.lock().unwrap_or_else(|p| p.into_inner()),
            open.clone(),
        );
        let now = self.engine.clock.now();
        for i in open
            .iter()
            .filter(|i| !i.class.is_ours() && !before.iter().any(|b| b.id == i.id))
        {
            let members = self
                .detector
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take_members((i.environment, i.endpoint), now);
            if !members.is_empty() {
                let mut tx = self.engine.store.begin().await?;
                tx.add_incident_members(i.id, &members).await?;
                tx.commit().await?;
            }
        }
        for b in before.iter().filter(|b| !open.iter().any(|i| i.id == b.id)) {
            self.detector
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .forget((b.environment, b.endpoint));
        }
        if self.engine.scheduler_state().borrow().incidents != open {
            let published = open.clone();
            self.engine
                .update_scheduler_state(|s| s.incidents = published);
        }
        Ok(open)
    }

    /// The open incident of Intuit's that holds `env`'s calls to `endpoint` back, if any.
    pub fn tripped(&self, env: Environment, endpoint: Endpoint) -> Option<i64> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|i| i.environment == env && i.holds_back(endpoint))
            .map(|i| i.id)
    }

    /// Starts a probe of an open incident unless another daemon (or this one) started one
    /// less than `probe_every` ago: whether this caller probes now.
    pub async fn claim_probe(&self, id: i64) -> anyhow::Result<bool> {
        let now = self.engine.clock.now();
        self.engine
            .store
            .claim_probe(id, now, self.probe_every())
            .await
    }

    fn open_ours(&self, env: Environment) -> Option<i64> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|i| i.environment == env && i.class.is_ours())
            .map(|i| i.id)
    }

    /// Takes in one scheduled refresh's outcome: a failure joins an open incident of its
    /// kind, or may open one; a success ends an incident about our credentials.
    ///
    /// `was_failing`: the connection's refreshes were failing before this one. Its failing
    /// again says nothing of Intuit as a whole (a company Intuit fails on its own, retried on
    /// its backoff, and first in a catch-up, which goes by urgency): only connections that
    /// were well and now fail are evidence, and members.
    pub async fn observe_refresh(
        &self,
        env: Environment,
        connection_id: i64,
        outcome: &RefreshOutcome,
        actor: &Actor,
        was_failing: bool,
    ) -> anyhow::Result<()> {
        let Some(failure) = reading(outcome) else {
            return Ok(());
        };
        self.observe(
            (env, Endpoint::Token),
            connection_id,
            failure,
            actor,
            was_failing,
        )
        .await
    }

    /// Takes in one health check's outcome, as `observe_refresh` does a refresh's;
    /// `was_failing`: the connection's last sync had failed.
    pub async fn observe_check(
        &self,
        env: Environment,
        connection_id: i64,
        outcome: &VerifyOutcome,
        actor: &Actor,
        was_failing: bool,
    ) -> anyhow::Result<()> {
        let Some(failure) = reading_of_check(outcome) else {
            return Ok(());
        };
        self.observe(
            (env, Endpoint::Accounting),
            connection_id,
            failure,
            actor,
            was_failing,
        )
        .await
    }

    /// Takes in one revoke retry's outcome. Every retry is of a revoke that failed before
    /// (the operator's), so each failure counts: a tenant whose revoke Intuit refuses on its
    /// own is one among the retries, not an outage.
    pub async fn observe_revoke(
        &self,
        env: Environment,
        connection_id: i64,
        outcome: &RevokeOutcome,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        let Some(failure) = reading_of_revoke(outcome) else {
            return Ok(());
        };
        self.observe(
            (env, Endpoint::Revoke),
            connection_id,
            failure,
            actor,
            false,
        )
        .await
    }

    async fn observe(
        &self,
        scope: Scope,
        connection_id: i64,
        failure: Option<Failure>,
        actor: &Actor,
        was_failing: bool,
    ) -> anyhow::Result<()> {
        let (env, endpoint) = scope;
        if was_failing && failure.as_ref().is_some_and(|f| !f.class.is_ours()) {
            return Ok(());
        }
        let now = self.engine.clock.now();
        match &failure {
            None if endpoint == Endpoint::Token => {
                if let Some(id) = self.open_ours(env) {
                    self.close(id, actor, "a refresh with the client credentials succeeded")
                        .await?;
                }
            }
            Some(f) if f.class.is_ours() => {
                let member = IncidentMember {
                    connection_id,
                    failed_at: now,
                    intuit_tid: f.intuit_tid.clone(),
                };
                let s = Suspicion {
                    class: f.class,
                    error_class: f.error_class,
                    started_at: now,
                    members: vec![member],
                    attempts: 1,
                    failures: 1,
                    connections: 1,
                    detail: f.detail.clone(),
                };
                self.open(scope, &s, actor).await?;
                return Ok(());
            }
            None => {}
            Some(f) => {
                if let Some(id) = self.tripped(env, endpoint) {
                    // A call already under way when the circuit broke: its failure is
                    // the incident's.
                    let member = IncidentMember {
                        connection_id,
                        failed_at: now,
                        intuit_tid: f.intuit_tid.clone(),
                    };
                    let mut tx = self.engine.store.begin().await?;
                    tx.add_incident_members(id, &[member]).await?;
                    tx.commit().await?;
                    return Ok(());
                }
            }
        }
        let failed = failure.as_ref().map(|f| f.class);
        let (attempts, classes) = {
            let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
            d.observe(
                scope,
                Observation {
                    at: now,
                    connection_id,
                    failure,
                },
            );
            d.counts(scope, now)
        };
        // Revoke retries are judged by each daemon alone: a bulk revoke's retries are
        // claimed a batch at a time, and one tenant retried by two daemons within the window
        // would count twice in a shared view.
        let shared = endpoint != Endpoint::Revoke;
        if shared {
            self.share(scope, failed, attempts, &classes, now).await?;
        }
        // Only a failure can tip the balance toward an incident.
        if failed.is_none() {
            return Ok(());
        }
        let others = if shared {
            self.others(scope, now).await?
        } else {
            Others::default()
        };
        let suspicion = self
            .detector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .suspect(scope, now, &others);
        if let Some(s) = suspicion {
            self.open(scope, &s, actor).await?;
        }
        Ok(())
    }

    /// Writes what this daemon's window holds for the other daemons: at each failure its
    /// counts of that class, and while all is well its count of calls now and then.
    async fn share(
        &self,
        scope: Scope,
        failed: Option<IncidentClass>,
        attempts: usize,
        classes: &[(IncidentClass, usize, usize)],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let (env, endpoint) = scope;
        let mut prune = None;
        let (failures, connections) = match failed {
            Some(c) => classes
                .iter()
                .find(|(k, _, _)| *k == c)
                .map_or((0, 0), |(_, f, n)| (*f, *n)),
            None => {
                {
                    let mut at = self.shared_at.lock().unwrap_or_else(|p| p.into_inner());
                    if at.get(&scope).is_some_and(|t| now - *t < SHARE_CALLS_EVERY) {
                        return Ok(());
                    }
                    at.insert(scope, now);
                }
                // Now and then, the rows of daemons long stopped go too.
                prune = Some(now - ChronoDuration::from_std(self.cfg.window)? * 2);
                (0, 0)
            }
        };
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let mut tx = self.engine.store.begin().await?;
        if let Some(before) = prune {
            tx.prune_evidence(before).await?;
        }
        tx.record_evidence(
            self.engine.lease_owner(),
            env,
            endpoint,
            failed,
            n(failures),
            n(connections),
            n(attempts),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What the other daemons recorded of the scope within the window.
    async fn others(&self, scope: Scope, now: DateTime<Utc>) -> anyhow::Result<Others> {
        let window = ChronoDuration::from_std(self.cfg.window)?;
        let rows = self
            .engine
            .store
            .evidence_of_others(self.engine.lease_owner(), scope.0, scope.1, now - window)
            .await?;
        Ok(Others::of(&rows))
    }

    /// Opens the incident (or joins the one another daemon opened) with its connections.
    async fn open(&self, scope: Scope, s: &Suspicion, actor: &Actor) -> anyhow::Result<()> {
        let (env, endpoint) = scope;
        let now = self.engine.clock.now();
        let mut tx = self.engine.store.begin().await?;
        // Join the open one first: an insert that meets it would spend a number of the
        // sequence, and incidents would be numbered 1, 5, 6.
        let (id, created) = match tx.open_incident_of(env, endpoint, s.class).await? {
            Some(id) => (id, None),
            None => {
                let created = tx
                    .open_incident(env, endpoint, s.class, s.started_at, now, &s.detail)
                    .await?;
                match created {
                    Some(id) => (id, created),
                    // Another daemon opened it between the two statements: join it.
                    None => match tx.open_incident_of(env, endpoint, s.class).await? {
                        Some(id) => (id, None),
                        None => {
                            tx.rollback().await?;
                            return Ok(());
                        }
                    },
                }
            }
        };
        tx.add_incident_members(id, &s.members).await?;
        let mut events = Vec::new();
        if created.is_some() {
            let tids: Vec<&str> = s
                .members
                .iter()
                .filter_map(|m| m.intuit_tid.as_deref())
                .take(qbo_store::SAMPLE_TIDS)
                .collect();
            let mut ev = AuditEvent::new(now, actor, Action::IncidentOpened, Outcome::Ok);
            ev.error_class = Some(s.error_class.as_str().into());
            ev.reason = Some(format!(
                "incident {id} opened: {} on the {env} {endpoint} endpoint since {}; {} connections, \
                 {} of the {} {} tried failing; sample intuit_tids: {}; {}",
                s.class.words(),
                s.started_at.to_rfc3339(),
                s.connections,
                s.failures,
                s.attempts,
                match endpoint {
                    Endpoint::Accounting => "health checks",
                    Endpoint::Revoke => "revoke retries",
                    Endpoint::Token => "refreshes",
                },
                if tids.is_empty() {
                    "none".to_string()
                } else {
                    tids.join(" ")
                },
                if s.class.is_ours() {
                    "about our own client credentials, not Intuit: no customer is marked dead"
                } else if endpoint == Endpoint::Accounting {
                    "the environment's health checks stop but for probes until Intuit recovers; refreshes go on"
                } else if endpoint == Endpoint::Revoke {
                    "the environment's revoke retries stop but for probes until Intuit recovers; the tenants stay revoking"
                } else {
                    "the environment's refreshes stop but for probes until Intuit recovers"
                }
            ));
            events.push(ev);
        }
        // What every daemon saw is this incident's now.
        tx.clear_evidence(env, endpoint).await?;
        self.engine.commit_audited(tx, &events).await?;
        if created.is_some() {
            tracing::warn!(
                incident = id,
                environment = %env,
                endpoint = %endpoint,
                class = s.class.as_str(),
                connections = s.connections,
                "incident opened: {}",
                s.class.words()
            );
        }
        self.detector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(scope);
        self.reload().await?;
        Ok(())
    }

    /// Ends the incident (once, whichever daemon gets there), making its connections due
    /// at once so the catch-up starts with this pass.
    pub async fn close(&self, id: i64, actor: &Actor, why: &str) -> anyhow::Result<()> {
        let now = self.engine.clock.now();
        let mut tx = self.engine.store.begin().await?;
        if !tx.close_incident(id, now).await? {
            tx.rollback().await?;
            self.reload().await?;
            return Ok(());
        }
        let incident = self.engine.store.incident(id).await?;
        let due = match incident.as_ref().map(|i| i.endpoint) {
            Some(Endpoint::Accounting) => tx.recheck_members(id).await?,
            Some(Endpoint::Revoke) => tx.reschedule_revokes(id, now).await?,
            _ => tx.reschedule_members(id, now).await?,
        };
        let mut ev = AuditEvent::new(now, actor, Action::IncidentClosed, Outcome::Ok);
        ev.reason = Some(match &incident {
            Some(i) => format!(
                "incident {id} ended ({why}) after {}: {} ({} {} endpoint), {} connections; \
                 {due} of them made due now{}",
                qbo_core::present::duration((now - i.started_at).to_std().unwrap_or_default()),
                i.class.words(),
                i.environment,
                i.endpoint,
                i.connections,
                match i.endpoint {
                    Endpoint::Accounting => " for a health check",
                    Endpoint::Revoke => " for a retry of its revoke",
                    Endpoint::Token => ", caught up most urgent first",
                }
            ),
            None => format!("incident {id} ended ({why}); {due} connections made due now"),
        });
        if let Some(i) = &incident {
            tx.clear_evidence(i.environment, i.endpoint).await?;
        }
        self.engine.commit_audited(tx, &[ev]).await?;
        if let Some(i) = &incident {
            tracing::info!(incident = id, environment = %i.environment, rescheduled = due, "incident ended");
            self.detector
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .forget((i.environment, i.endpoint));
        }
        self.reload().await?;
        Ok(())
    }

    /// Records a probe's outcome (a refresh); ends the incident after enough successes in
    /// a row.
    pub async fn probed_refresh(
        &self,
        id: i64,
        connection_id: i64,
        outcome: &RefreshOutcome,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        self.probed(id, connection_id, reading(outcome), actor)
            .await
    }

    /// Records a probe's outcome (a health check), as `probed_refresh` does.
    pub async fn probed_check(
        &self,
        id: i64,
        connection_id: i64,
        outcome: &VerifyOutcome,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        self.probed(id, connection_id, reading_of_check(outcome), actor)
            .await
    }

    /// Records a probe's outcome (a revoke retry), as `probed_refresh` does.
    pub async fn probed_revoke(
        &self,
        id: i64,
        connection_id: i64,
        outcome: &RevokeOutcome,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        self.probed(id, connection_id, reading_of_revoke(outcome), actor)
            .await
    }

    async fn probed(
        &self,
        id: i64,
        connection_id: i64,
        reading: Option<Option<Failure>>,
        actor: &Actor,
    ) -> anyhow::Result<()> {
        let store = &self.engine.store;
        match reading {
            // A probe that reached no verdict (busy, an error of ours) says nothing.
            None => Ok(()),
            Some(Some(f)) if !f.class.is_ours() => {
                store.probe_result(id, false).await?;
                let member = IncidentMember {
                    connection_id,
                    failed_at: self.engine.clock.now(),
                    intuit_tid: f.intuit_tid,
                };
                let mut tx = store.begin().await?;
                tx.add_incident_members(id, &[member]).await?;
                tx.commit().await?;
                Ok(())
            }
            Some(_) => {
                let successes = store.probe_result(id, true).await?;
                if successes >= i64::from(self.cfg.recovery_probes) {
                    let why = format!("{successes} probes in a row answered");
                    self.close(id, actor, &why).await?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SANDBOX: Scope = (Environment::Sandbox, Endpoint::Token);

    fn cfg() -> IncidentsConfig {
        IncidentsConfig {
            min_connections: 3,
            ..Default::default()
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn fail(class: IncidentClass) -> Option<Failure> {
        Some(Failure {
            class,
            error_class: ErrorClass::Transient,
            intuit_tid: Some("tid".into()),
            detail: "HTTP 503".into(),
        })
    }

    fn see(d: &mut Detector, s: i64, id: i64, f: Option<Failure>) {
        d.observe(
            (Environment::Sandbox, Endpoint::Token),
            Observation {
                at: at(s),
                connection_id: id,
                failure: f,
            },
        );
    }

    #[test]
    fn many_connections_failing_the_same_way_make_one_suspicion() {
        let mut d = Detector::new(cfg());
        see(&mut d, 0, 1, fail(IncidentClass::ServerError));
        see(&mut d, 1, 2, fail(IncidentClass::ServerError));
        assert_eq!(
            d.suspect(SANDBOX, at(2), &Others::default()),
            None,
            "two are not many"
        );
        see(&mut d, 2, 3, fail(IncidentClass::RateLimited));
        see(&mut d, 3, 3, fail(IncidentClass::ServerError));
        let s = d
            .suspect(SANDBOX, at(3), &Others::default())
            .expect("three connections");
        assert_eq!(s.class, IncidentClass::ServerError, "the commonest class");
        assert_eq!(s.members.len(), 3);
        assert_eq!(s.started_at, at(0));
        assert_eq!(
            d.suspect(
                (Environment::Production, Endpoint::Token),
                at(3),
                &Others::default()
            ),
            None
        );
    }

    #[test]
    fn failures_among_many_successes_are_not_an_incident() {
        let mut d = Detector::new(cfg());
        for i in 0..3 {
            see(&mut d, i, i, fail(IncidentClass::ServerError));
        }
        for i in 10..20 {
            see(&mut d, 5, i, None);
        }
        assert_eq!(
            d.suspect(SANDBOX, at(6), &Others::default()),
            None,
            "3 of 13 fail"
        );
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut d = Detector::new(cfg());
        for i in 0..3 {
            see(&mut d, i, i, fail(IncidentClass::Unreachable));
        }
        let late =
            at(2) + ChronoDuration::from_std(cfg().window).unwrap() + ChronoDuration::seconds(1);
        assert_eq!(d.suspect(SANDBOX, late, &Others::default()), None);
    }

    #[test]
    fn calls_that_went_well_are_counted_per_second_not_kept() {
        let mut d = Detector::new(cfg());
        // A catch-up: 4,000 good refreshes a second for ten seconds.
        for i in 0..40_000 {
            see(&mut d, i / 4_000, i, None);
        }
        let w = &d.seen[&SANDBOX];
        assert_eq!((w.ok.len(), w.attempts(), w.failed.len()), (10, 40_000, 0));
        for i in 0..3 {
            see(&mut d, 10, 100_000 + i, fail(IncidentClass::ServerError));
        }
        assert_eq!(d.counts(SANDBOX, at(10)).0, 40_003);
        assert_eq!(
            d.suspect(SANDBOX, at(10), &Others::default()),
            None,
            "3 failures in 40,003 calls"
        );
        // Five minutes on, the good seconds have left; the failures (at 10 s) with them.
        let later = at(9) + ChronoDuration::from_std(cfg().window).unwrap();
        let (attempts, classes) = d.counts(SANDBOX, later);
        assert_eq!(
            attempts,
            4_000 + 3,
            "the tenth second and the failures remain"
        );
        assert_eq!(classes, vec![(IncidentClass::ServerError, 3, 3)]);
    }

    #[test]
    fn the_counts_follow_what_leaves_the_window() {
        let mut d = Detector::new(cfg());
        for i in 0..3 {
            see(&mut d, i, i, fail(IncidentClass::ServerError));
        }
        let later = 1_000;
        for i in 0..2 {
            see(&mut d, later + i, i, fail(IncidentClass::ServerError));
        }
        // The first three left the window: two connections now, not three.
        assert_eq!(d.suspect(SANDBOX, at(later + 2), &Others::default()), None);
        see(&mut d, later + 3, 7, fail(IncidentClass::ServerError));
        let s = d
            .suspect(SANDBOX, at(later + 3), &Others::default())
            .expect("three again");
        assert_eq!((s.members.len(), s.failures, s.attempts), (3, 3, 3));
        assert_eq!(s.started_at, at(later));
    }

    #[test]
    fn what_other_daemons_saw_adds_to_this_ones_counts() {
        let row = |owner: &str, class: Option<IncidentClass>, f, n, a, t| qbo_store::Evidence {
            owner: owner.into(),
            class,
            failures: f,
            connections: n,
            attempts: a,
            at: at(t),
        };
        let others = Others::of(&[
            row("b", Some(IncidentClass::ServerError), 2, 2, 3, 1),
            // b's newest row: its window's calls are 4 now.
            row("b", Some(IncidentClass::RateLimited), 1, 1, 4, 2),
            row("c", None, 0, 0, 10, 2),
        ]);
        assert_eq!(others.attempts, 14);
        assert_eq!(others.by_class[&IncidentClass::ServerError], (2, 2));
        let mut d = Detector::new(cfg());
        see(&mut d, 0, 1, fail(IncidentClass::ServerError));
        see(&mut d, 1, 2, None);
        assert_eq!(
            d.suspect(SANDBOX, at(2), &Others::default()),
            None,
            "one connection here"
        );
        // With theirs: three connections, 3 failures of 16 calls: not half of them.
        assert_eq!(
            d.suspect(SANDBOX, at(2), &others),
            None,
            "too small a share"
        );
        let busy_elsewhere = Others::of(&[row("b", Some(IncidentClass::ServerError), 4, 4, 4, 1)]);
        let s = d
            .suspect(SANDBOX, at(2), &busy_elsewhere)
            .expect("five connections, five of six calls");
        assert_eq!((s.connections, s.failures, s.attempts), (5, 5, 6));
        assert_eq!(s.members.len(), 1, "only this daemon's own are members");
    }

    #[test]
    fn joining_an_incident_opened_elsewhere_takes_only_recent_failures_of_any_intuit_kind() {
        let mut d = Detector::new(cfg());
        see(&mut d, 0, 1, fail(IncidentClass::ServerError));
        let later = 1_000;
        see(&mut d, later, 2, fail(IncidentClass::Unreachable));
        see(&mut d, later + 1, 3, fail(IncidentClass::ServerError));
        see(&mut d, later + 2, 4, None);
        let ids: Vec<i64> = d
            .take_members(SANDBOX, at(later + 3))
            .iter()
            .map(|m| m.connection_id)
            .collect();
        assert_eq!(
            ids,
            vec![2, 3],
            "1 failed before the window; 4 did not fail"
        );
        assert!(
            d.take_members(SANDBOX, at(later + 3)).is_empty(),
            "forgotten"
        );
    }

    #[test]
    fn a_health_checks_verdict_on_the_accounting_api() {
        let down = VerifyOutcome::Failed {
            error_class: ErrorClass::Transient,
            detail: "HTTP 503".into(),
            intuit_tid: Some("tid".into()),
        };
        assert!(matches!(
            reading_of_check(&down),
            Some(Some(Failure {
                class: IncidentClass::ServerError,
                ..
            }))
        ));
        // A company's own refusal (a disconnect, a lapsed subscription) is its own.
        let refused = VerifyOutcome::Failed {
            error_class: ErrorClass::InvalidGrant,
            detail: "HTTP 401 fault 3200".into(),
            intuit_tid: None,
        };
        assert!(matches!(reading_of_check(&refused), Some(None)));
        // No access token to check with: the token endpoint's business, not judged here.
        let no_token = VerifyOutcome::RefreshFailed {
            refresh: RefreshOutcome::Failed {
                error_class: ErrorClass::Transient,
                detail: "HTTP 503".into(),
                intuit_tid: None,
                next_attempt_at: None,
            },
        };
        assert!(reading_of_check(&no_token).is_none());
        // The two endpoints are judged apart.
        let mut d = Detector::new(cfg());
        for i in 0..3 {
            d.observe(
                (Environment::Sandbox, Endpoint::Accounting),
                Observation {
                    at: at(i),
                    connection_id: i,
                    failure: fail(IncidentClass::ServerError),
                },
            );
        }
        assert_eq!(
            d.suspect(SANDBOX, at(3), &Others::default()),
            None,
            "not the token endpoint's"
        );
        assert!(d
            .suspect(
                (Environment::Sandbox, Endpoint::Accounting),
                at(3),
                &Others::default()
            )
            .is_some());
    }

    #[test]
    fn a_customers_own_refusal_is_never_an_incidents() {
        let dead = RefreshOutcome::NeedsReconnect {
            reason: "invalid_grant".into(),
            intuit_tid: None,
        };
        assert!(matches!(reading(&dead), Some(None)));
        let other = RefreshOutcome::Failed {
            error_class: ErrorClass::Other,
            detail: "HTTP 400".into(),
            intuit_tid: None,
            next_attempt_at: None,
        };
        assert!(matches!(reading(&other), Some(None)));
        let missing = RefreshOutcome::ConfigError {
            detail: "no [environments.production] section".into(),
            intuit_tid: None,
        };
        assert!(reading(&missing).is_none());
    }
}
