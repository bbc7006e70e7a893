//! Refresh, done right.
//!
//! 1. Single flight: the in-process flight guard, then the database lease, so only one
//!    caller anywhere spends a given refresh token.
//! 2. The new tokens, the moved-aside previous refresh token, the new clocks and the audit
//!    event commit in one transaction before the new access token is handed to anyone.
//! 3. A lost answer (timeout, 5xx, garbage) keeps the current token and schedules a retry;
//!    invalid_grant marks the connection dead only after re-reading the row; invalid_client
//!    marks nothing and reports a configuration error.
//!
//! # Why no interleaving spends a superseded token
//!
//! Rotation means a refresh token T is good until some request spends it and Intuit
//! answers with T'. Under the strict reading T is then refused at once. A token is
//! *superseded* once T' exists; sending T after that is what must never happen, except
//! when the only holder of T' died before it could store it (below).
//!
//! The rules (SQL in `store/leases.rs`):
//!
//! - **L1, taking.** A lease is taken by one conditional `UPDATE` that bumps
//!   `lease_fence` and sets `inflight_until = db_now + hold`, where `db_now` is the
//!   *database's* clock (the one clock all daemons share; a daemon's own clock may be
//!   skewed or, in tests, moved by hours). A lease that another process holds can be taken
//!   only once its `inflight_until` has passed by that clock (and its own-clock
//!   `lease_until`). A lease taken to spend the token marks it possibly unanswered
//!   (`unanswered_*`) unless an earlier mark stands.
//! - **L2, sending.** The holder measures its hold from an `Instant` taken *before* the
//!   `UPDATE` was sent, so the database's `inflight_until` is at least that instant plus
//!   the hold. It sends only while `request_budget` leaves the whole request timeout plus a
//!   commit allowance inside the hold, and it cuts its own request at that timeout
//!   (`tokio::time::timeout` over the client's own). Just before sending, under the
//!   in-process flight guard, it re-reads the row: the lease must still carry its owner and
//!   fence and the row must still store the very token it is about to send (a claim read
//!   long before its turn came cannot send a token another task has replaced since).
//!   A holder that finds the connection marked for reconnection sends nothing and takes
//!   that verdict, whoever reached it and whenever: the stored token is one Intuit has
//!   refused (`invalid_grant` is final for a token), and asking again would only overwrite
//!   the reason recorded with it (which may name an answer lost in a kill) with a plain
//!   "the customer must reconnect".
//! - **L3, writing.** Every write of an outcome names the owner *and the fence*. A holder
//!   whose lease was taken over writes nothing, even if the new holder is another task of
//!   its own process.
//!
//! **Argument.** Suppose process B sends T while process A's request with T could still
//! be in flight. B holds a lease taken after A's (one row, one fence at a time), and B
//! took it either (a) while A's lease was current, impossible by L1 unless B is A's own
//! process, whose tasks the flight guard serializes around the whole send-and-record; or
//! (b) after A's `inflight_until` passed by the database's clock, which is after A's
//! taking instant plus the hold, by which time A's request had been cut off (L2: it
//! started inside the hold minus timeout minus allowance, and lasted at most the timeout).
//! So two requests with one token never overlap. Suppose next B sends T after A has
//! *committed* T'. A's commit replaced T in the row; B re-reads the row under its lease
//! just before sending (L2) and finds T' there, so it sends nothing; and a commit that
//! lands between B's re-read and B's send is impossible, because that commit would be A
//! writing under a lease B has since taken, which L3 refuses. A slow commit (A's answer
//! in hand, its commit delayed past its hold) is refused by L3 once B has taken the lease,
//! and then nothing about T' is stored: that is the case below.
//!
//! **What can still be lost.** An answer Intuit gave to a process that died (or whose
//! commit was refused or never made) before its commit. Intuit has rotated; we hold only T.
//! Under Intuit's 24-hour grace, the next holder's refresh with T is answered with a good
//! token and nothing is lost. Under the strict reading, Intuit refuses T and the customer
//! must reconnect: nothing any software can do. What we owe then is the truth: the
//! `unanswered_*` mark, made when the earlier lease was taken and cleared only by a
//! recorded answer *to the request that made it* (a 429 or a refused claim of a later
//! holder says nothing about whether the earlier request rotated, so it leaves an earlier
//! holder's mark standing; clearing it was the second cause of the runs in issue 22 that
//! blamed the customer), tells the next holder that T may have been spent without an answer,
//! and its `invalid_grant` is recorded as "the answer to the refresh at T was lost when
//! the daemon stopped", never as the customer's doing; the connection's reason and its
//! support bundle say so, and the alerts name it once.
//!
//! The guarantee rests on two clocks only: each holder's monotonic clock and the
//! database's wall clock, which must not be stepped by more than the commit allowance
//! while a lease is held.

use super::writer::{Applied, Op};
use super::{Engine, Status};
use crate::intuit::{IntuitError, TokenGrant};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::ConfigError;
use qbo_core::domain::{ErrorClass, LastRefresh};
use qbo_core::identity::Actor;
pub use qbo_core::reports::{outcome_name, RefreshOutcome};
use qbo_core::vault::{AccessToken, RefreshToken, TokenColumn};
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{Claimed, ConnectionRecord, Lease, Purpose, TokenUpdate, Unanswered};
use rand::Rng;
use std::time::{Duration, Instant};

/// What a refresh failure's audit reason puts before the wait the backoff chose, so that a
/// support bundle can show each attempt's backoff.
pub const NEXT_ATTEMPT_MARK: &str = "; next attempt in ";

/// The outcome, plus the fresh access token when this call obtained one (for the token
/// API: handed out only after the commit).
#[derive(Debug)]
pub struct RefreshResult {
    pub outcome: RefreshOutcome,
    pub access_token: Option<AccessToken>,
}

impl From<RefreshOutcome> for RefreshResult {
    fn from(outcome: RefreshOutcome) -> Self {
        RefreshResult {
            outcome,
            access_token: None,
        }
    }
}

impl Engine {
    /// Refreshes one connection, coalescing with any refresh of it already under way here or
    /// in another process sharing the database.
    pub async fn refresh(&self, id: i64, actor: &Actor) -> anyhow::Result<RefreshResult> {
        let started = Instant::now();
        // Before the flight: a refresh of this connection by another task of this process,
        // waited for here, happened after this one was asked for (see `acquire_lease`).
        let requested_at = self.clock.now();
        let _flight = self.flights.enter(id).await;
        let lease = match self.acquire_lease(id, requested_at).await? {
            Ok(taken) => taken,
            Err(done) => {
                self.count(&Ok(RefreshResult::from(done.clone())), started);
                return Ok(done.into());
            }
        };
        let result = self.run_leased(&lease, actor).await;
        self.count(&result, started);
        result
    }

    /// Refreshes a connection whose lease this process already holds (the scheduler claims
    /// leases in batches).
    pub async fn refresh_claimed(
        &self,
        claimed: Claimed,
        actor: &Actor,
    ) -> anyhow::Result<RefreshResult> {
        let started = Instant::now();
        let id = claimed.record.id;
        let _flight = self.flights.enter(id).await;
        let lease = claimed.lease;
        // The claim was read before this task's turn came: while it waited, another task
        // of this process may have taken the lease (the token API does, to serve a host
        // application at once) and replaced the token. Then the claim is spent.
        let current = match &claimed.refresh_token {
            Some(sealed) => self.store.lease_still_current(&lease, sealed).await?,
            None => true,
        };
        if !current {
            let result = Ok(RefreshResult::from(RefreshOutcome::Busy {
                holder: "another refresh of this connection, which took the lease after this claim"
                    .into(),
            }));
            self.count(&result, started);
            return result;
        }
        let result = self
            .refresh_with(claimed.record, claimed.refresh_token, &lease, actor)
            .await;
        self.release_on_error(&lease, &result).await;
        self.count(&result, started);
        result
    }

    async fn run_leased(&self, lease: &Lease, actor: &Actor) -> anyhow::Result<RefreshResult> {
        let result = self.refresh_leased(lease, actor).await;
        self.release_on_error(lease, &result).await;
        result
    }

    async fn release_on_error(&self, lease: &Lease, result: &anyhow::Result<RefreshResult>) {
        if result.is_err() {
            // Best effort: never leave a lease behind on an unexpected error. If even this
            // fails, the lease expires on its own. Whatever was sent stays marked
            // unanswered: an error here may have come after Intuit answered.
            let _ = self.store.release_lease(lease).await;
        }
    }

    fn count(&self, result: &anyhow::Result<RefreshResult>, started: Instant) {
        let name = match result {
            Ok(r) => outcome_name(&r.outcome),
            Err(_) => "error",
        };
        self.metrics
            .count_refresh(name, started.elapsed().as_secs_f64());
        log_refresh(name, result);
    }

    /// When the scheduler should next refresh a connection that was just refreshed: before
    /// its access token expires (if access tokens are kept fresh) and before its refresh
    /// token has been idle for `keep_alive_after`, minus a random spread.
    pub(super) fn next_scheduled(
        &self,
        now: DateTime<Utc>,
        access_expires_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let cfg = &self.scheduler_cfg;
        let keep_alive = now
            + ChronoDuration::from_std(cfg.keep_alive_after).unwrap_or(ChronoDuration::days(30));
        let target = if cfg.refresh_access_tokens {
            let before = ChronoDuration::from_std(cfg.refresh_before_expiry)
                .unwrap_or(ChronoDuration::minutes(10));
            (access_expires_at - before).min(keep_alive)
        } else {
            keep_alive
        };
        // Between half the jitter and all of it: spread out, and always some margin.
        let jitter_ms = cfg.jitter.as_millis().min(i64::MAX as u128) as i64;
        let spread = if jitter_ms > 0 {
            rand::thread_rng().gen_range(jitter_ms / 2..=jitter_ms)
        } else {
            0
        };
        (target - ChronoDuration::milliseconds(spread)).max(now + ChronoDuration::seconds(1))
    }

    /// Waits for the lease. Returns
    /// the outcome instead when waiting made the refresh unnecessary (someone else
    /// refreshed after we were asked) or impossible (busy).
    async fn acquire_lease(
        &self,
        id: i64,
        requested_at: DateTime<Utc>,
    ) -> anyhow::Result<Result<Lease, RefreshOutcome>> {
        let lease = ChronoDuration::from_std(self.refresh_cfg.lease)?;
        let give_up = Instant::now() + self.refresh_cfg.lease + Duration::from_secs(5);
        loop {
            let now = self.clock.now();
            if let Some(held) = self
                .store
                .try_lease(
                    id,
                    &self.owner,
                    now,
                    now + lease,
                    Purpose::SpendRefreshToken,
                )
                .await?
            {
                return Ok(Ok(held));
            }
            let pause = rand::thread_rng().gen_range(20..120);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let Some(rec) = self.store.get_connection(id).await? else {
                return Ok(Err(RefreshOutcome::Skipped {
                    reason: "connection no longer exists".into(),
                }));
            };
            if rec.lease_owner.is_none() && refreshed_since(&rec, requested_at) {
                return Ok(Err(RefreshOutcome::AlreadyRefreshed {
                    access_expires_at: rec.access_expires_at,
                }));
            }
            if Instant::now() > give_up {
                return Ok(Err(RefreshOutcome::Busy {
                    holder: rec.lease_owner.unwrap_or_default(),
                }));
            }
        }
    }

    async fn refresh_leased(&self, lease: &Lease, actor: &Actor) -> anyhow::Result<RefreshResult> {
        let (Some(rec), Some(sealed)) = (
            self.store.get_connection(lease.id).await?,
            self.store.load_sealed(lease.id).await?,
        ) else {
            return Ok(RefreshOutcome::Skipped {
                reason: "connection no longer exists".into(),
            }
            .into());
        };
        // The stored token is one Intuit refused (L2): whoever reached that verdict, sending
        // it again would only ask the same question, and its answer would overwrite the
        // reason recorded with it (which may name an answer lost in a kill) with a plain
        // "the customer must reconnect". Issue 22's runs showed it for a holder that waited
        // on the lease (two invalid_grants 23 ms apart for one token) and for another task
        // of this process waited for in the single flight; a run with the suite at four
        // threads showed it for an operator's `refresh --all` that listed the connection
        // while it was live and reached it 170 ms after the scheduler's verdict, without
        // waiting on anyone. The verdict is taken whoever reached it and whenever.
        if rec.status == Status::NeedsReconnect {
            self.store.release_unsent(lease).await?;
            return Ok(RefreshOutcome::NeedsReconnect {
                reason: rec.status_reason.unwrap_or_default(),
                intuit_tid: rec.last_intuit_tid,
            }
            .into());
        }
        self.refresh_with(rec, sealed.refresh_token, lease, actor)
            .await
    }

    /// The refresh proper, for a connection whose lease this process holds, given the row
    /// as read under that lease.
    async fn refresh_with(
        &self,
        rec: ConnectionRecord,
        sealed_refresh: Option<Vec<u8>>,
        lease: &Lease,
        actor: &Actor,
    ) -> anyhow::Result<RefreshResult> {
        let sealed_refresh = match (rec.status.has_tokens(), sealed_refresh) {
            (true, Some(s)) => s,
            _ => {
                self.store.release_unsent(lease).await?;
                return Ok(RefreshOutcome::Skipped {
                    reason: format!("connection is {} and holds no refresh token", rec.status),
                }
                .into());
            }
        };
        let client = match self.client(rec.environment) {
            Ok(c) => c.clone(),
            Err(ConfigError(detail)) => {
                self.store.release_unsent(lease).await?;
                return Ok(RefreshOutcome::ConfigError {
                    detail,
                    intuit_tid: None,
                }
                .into());
            }
        };
        let current = match self
            .vault
            .open_refresh(rec.id, TokenColumn::Refresh, &sealed_refresh)
        {
            Ok(t) => t,
            // A value that will not open was damaged or moved from another row: stop here
            // without writing anything but the lease's release, and say so.
            Err(e) => {
                let _ = self.store.release_unsent(lease).await;
                return Err(anyhow::Error::new(e));
            }
        };
        // L2 (module doc): send only if the whole request and its commit fit in the hold.
        let Some(budget) = lease.request_budget(self.request_timeout, self.commit_allowance())
        else {
            self.store.release_unsent(lease).await?;
            return Ok(RefreshOutcome::Skipped {
                reason: "its lease ran short before the refresh token could be sent; \
                         nothing was sent, and it is tried again"
                    .into(),
            }
            .into());
        };
        let answer = match tokio::time::timeout(budget, client.refresh(&current)).await {
            Ok(answer) => answer,
            Err(_) => Err(IntuitError::timed_out()),
        };
        self.commit_gates.pass().await;
        match answer {
            Ok(grant) => {
                self.record_success(&rec, lease, actor, &current, grant)
                    .await
            }
            Err(e) if e.class == ErrorClass::InvalidGrant => {
                self.record_invalid_grant(&rec, lease, actor, &sealed_refresh, &current, e)
                    .await
            }
            Err(e) if e.class == ErrorClass::InvalidClient => {
                self.record_config_error(&rec, lease, actor, &current, e)
                    .await
            }
            Err(e) => self.record_failure(&rec, lease, actor, &current, &e).await,
        }
    }

    /// What a holder keeps of its hold for committing the answer after its request's
    /// timeout: half of what the hold leaves beyond the timeout (the other half is how
    /// long a claimed connection may wait for its turn to be sent). Config validation
    /// makes the hold at least twice the timeout, so this is at least half a timeout.
    fn commit_allowance(&self) -> Duration {
        self.refresh_cfg.lease.saturating_sub(self.request_timeout) / 2
    }

    /// Hands the outcome of a call made under our lease to the group-commit writer and
    /// tells subscribers once it is committed. If the lease was taken over meanwhile (config
    /// validation makes that impossible unless a call outlived twice the HTTP timeout),
    /// nothing is written: the row stays as its new holder left it, and the caller hears so.
    async fn write_leased(&self, id: i64, intuit_tid: Option<&str>, op: Op) -> anyhow::Result<()> {
        let (applied, changes) = self.writer.write(op).await?;
        if applied == Applied::LeaseLost {
            anyhow::bail!(
                "refresh of connection {id} finished after its lease was taken over; its outcome was not stored (intuit_tid {})",
                intuit_tid.unwrap_or("none")
            );
        }
        self.published(changes);
        Ok(())
    }

    fn event(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> AuditEvent {
        AuditEvent::new(now, actor, Action::Refresh, outcome).about(rec)
    }

    async fn record_success(
        &self,
        rec: &ConnectionRecord,
        lease: &Lease,
        actor: &Actor,
        used: &RefreshToken,
        grant: TokenGrant,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let rotated = grant.refresh_token != *used;
        let hard_expires_at = grant
            .hard_expires_in
            .map(|s| now + ChronoDuration::seconds(s));
        let warn = ChronoDuration::days(i64::from(self.scheduler_cfg.hard_expiry_warning_days));
        let status = match hard_expires_at.or(rec.hard_expires_at) {
            Some(h) if h - now <= warn => Status::Expiring,
            _ => Status::Active,
        };
        let access_expires_at = now + ChronoDuration::seconds(grant.expires_in);
        let update = TokenUpdate {
            access_token: self
                .vault
                .seal(rec.id, TokenColumn::Access, grant.access_token.expose()),
            refresh_token: self.vault.seal(
                rec.id,
                TokenColumn::Refresh,
                grant.refresh_token.expose(),
            ),
            previous_refresh_token: rotated.then(|| {
                self.vault
                    .seal(rec.id, TokenColumn::PreviousRefresh, used.expose())
            }),
            access_expires_at,
            refresh_issued_at: rotated.then_some(now),
            refresh_expires_at: now + ChronoDuration::seconds(grant.refresh_expires_in),
            hard_expires_at,
            status,
            intuit_tid: grant.intuit_tid.clone(),
            next_attempt_at: self.next_scheduled(now, access_expires_at),
            at: now,
        };
        let mut ev = self
            .event(rec, actor, Outcome::Ok, now)
            .fingerprint("refresh_used", self.vault.fingerprint(used.expose()))
            .fingerprint(
                "access_new",
                self.vault.fingerprint(grant.access_token.expose()),
            );
        if rotated {
            ev = ev.fingerprint(
                "refresh_new",
                self.vault.fingerprint(grant.refresh_token.expose()),
            );
        }
        ev.intuit_tid = grant.intuit_tid.clone();
        let mut reason = if rotated {
            "refresh token rotated".to_string()
        } else {
            "refresh token unchanged".to_string()
        };
        if let Some(u) = &lease.earlier {
            // Intuit's grace answered for a refresh whose own answer died with its process.
            reason.push_str(&format!(
                "; {RECOVERED_MARK}{} ({}) may have been sent without its answer being recorded, and this one succeeded",
                u.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                u.by
            ));
        }
        ev.reason = Some(reason);

        let op = Op::RefreshSuccess {
            lease: lease.clone(),
            update,
            event: ev,
        };
        self.write_leased(rec.id, grant.intuit_tid.as_deref(), op)
            .await?;
        Ok(RefreshResult {
            outcome: RefreshOutcome::Refreshed {
                access_expires_at,
                rotated,
                intuit_tid: grant.intuit_tid,
            },
            access_token: Some(grant.access_token),
        })
    }

    async fn record_invalid_grant(
        &self,
        rec: &ConnectionRecord,
        lease: &Lease,
        actor: &Actor,
        sealed_used: &[u8],
        used: &RefreshToken,
        e: IntuitError,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // Re-read under the write lock: if the stored refresh token is no longer the one we
        // sent, someone refreshed successfully meanwhile and the connection is alive.
        let (stored, unanswered) = tx.sealed_refresh_for_update(rec.id).await?;
        if stored.as_deref() != Some(sealed_used) {
            tx.rollback().await?;
            self.store.release_lease(lease).await?;
            let latest = self.store.get_connection(rec.id).await?;
            return Ok(RefreshOutcome::AlreadyRefreshed {
                access_expires_at: latest.and_then(|r| r.access_expires_at),
            }
            .into());
        }
        // An earlier refresh with this very token got no recorded answer: Intuit most
        // likely rotated it then, and its answer died with the process that asked.
        let lost = unanswered.filter(|u| u.before(lease));
        let reason = match &lost {
            Some(u) => lost_answer_reason(u, &e.detail),
            None => format!(
                "Intuit refused the refresh token ({}); the customer must reconnect",
                e.detail
            ),
        };
        if !tx
            .mark_needs_reconnect(lease, &reason, e.intuit_tid.as_deref(), now)
            .await?
        {
            // Our lease was taken over while Intuit answered: its new holder decides.
            tx.rollback().await?;
            anyhow::bail!(
                "refresh of connection {} was refused by Intuit after its lease was taken over; nothing was stored",
                rec.id
            );
        }
        let mut ev = self
            .event(rec, actor, Outcome::Failed, now)
            .fingerprint("refresh_used", self.vault.fingerprint(used.expose()));
        ev.error_class = Some(ErrorClass::InvalidGrant.as_str().into());
        ev.reason = Some(reason.clone());
        ev.intuit_tid = e.intuit_tid.clone();
        self.commit_audited(tx, &[ev]).await?;
        if lost.is_some() {
            tracing::error!(
                connection = rec.id,
                tenant = %qbo_core::text::Safe(&rec.tenant),
                "A REFRESH ANSWER WAS LOST: {}",
                qbo_core::text::Safe(&reason)
            );
        }
        Ok(RefreshOutcome::NeedsReconnect {
            reason,
            intuit_tid: e.intuit_tid,
        }
        .into())
    }

    async fn record_config_error(
        &self,
        rec: &ConnectionRecord,
        lease: &Lease,
        actor: &Actor,
        used: &RefreshToken,
        e: IntuitError,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let detail = format!(
            "Intuit rejected our {} client credentials ({}): check client_id and client_secret in the config; the tenant is not at fault",
            rec.environment, e.detail
        );
        // Which token was sent, like every refresh event: a ticket can follow one token.
        let mut ev = self
            .event(rec, actor, Outcome::Failed, now)
            .fingerprint("refresh_used", self.vault.fingerprint(used.expose()));
        ev.error_class = Some(ErrorClass::InvalidClient.as_str().into());
        ev.reason = Some(detail.clone());
        ev.intuit_tid = e.intuit_tid.clone();
        let tx = self.store.begin().await?;
        self.commit_audited(tx, &[ev]).await?;
        // Intuit refused our client before looking at the token: it was not spent.
        self.store.release_unsent(lease).await?;
        Ok(RefreshOutcome::ConfigError {
            detail,
            intuit_tid: e.intuit_tid,
        }
        .into())
    }

    async fn record_failure(
        &self,
        rec: &ConnectionRecord,
        lease: &Lease,
        actor: &Actor,
        used: &RefreshToken,
        e: &IntuitError,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let super::backoff::Retry {
            failures,
            delay,
            at: next,
        } = self.retry(rec.consecutive_failures, e.retry_after, now)?;
        // The token sent, kept: the next attempt spends the same one (the same fingerprint).
        let mut ev = self
            .event(rec, actor, Outcome::Failed, now)
            .fingerprint("refresh_used", self.vault.fingerprint(used.expose()));
        ev.error_class = Some(e.class.as_str().into());
        // The wait the backoff chose, on record: a support bundle shows each attempt's.
        ev.reason = Some(format!(
            "{}{}{} (failure {failures} in a row)",
            e.detail,
            NEXT_ATTEMPT_MARK,
            qbo_core::present::duration(delay)
        ));
        ev.intuit_tid = e.intuit_tid.clone();
        let op = Op::RefreshFailure {
            lease: lease.clone(),
            // Only a transient failure (no answer, a 5xx, garbage) may hide a rotation.
            answered: e.class != ErrorClass::Transient,
            class: e.class,
            detail: e.detail.clone(),
            intuit_tid: e.intuit_tid.clone(),
            next_attempt: Some(next),
            at: now,
            event: ev,
        };
        self.write_leased(rec.id, e.intuit_tid.as_deref(), op)
            .await?;
        Ok(RefreshOutcome::Failed {
            error_class: e.class,
            detail: e.detail.clone(),
            intuit_tid: e.intuit_tid.clone(),
            next_attempt_at: Some(next),
        }
        .into())
    }
}

impl Engine {
    /// The token API's refresh: the same single flight and lease as `refresh`, but a
    /// caller that finds, once its turn comes, an access token valid until `fresh_until`
    /// spends nothing. However many callers find the token stale at once, the first one
    /// refreshes and the rest read its result.
    pub async fn refresh_unless_fresh(
        &self,
        id: i64,
        actor: &Actor,
        fresh_until: DateTime<Utc>,
    ) -> anyhow::Result<RefreshResult> {
        let fresh = |rec: &ConnectionRecord| {
            rec.access_expires_at.is_some_and(|t| t >= fresh_until) || !rec.status.has_tokens()
        };
        let requested_at = self.clock.now();
        let _flight = self.flights.enter(id).await;
        // Waiting in the flight above is the usual way to find it done.
        match self.store.get_connection(id).await? {
            Some(rec) if fresh(&rec) => {
                return Ok(RefreshOutcome::AlreadyRefreshed {
                    access_expires_at: rec.access_expires_at,
                }
                .into())
            }
            None => {
                return Ok(RefreshOutcome::Skipped {
                    reason: "connection no longer exists".into(),
                }
                .into())
            }
            Some(_) => {}
        }
        let started = Instant::now();
        let lease = match self.acquire_lease(id, requested_at).await? {
            Ok(taken) => taken,
            Err(done) => {
                self.count(&Ok(RefreshResult::from(done.clone())), started);
                return Ok(done.into());
            }
        };
        // Another process may have refreshed between the read and the lease.
        if let Some(rec) = self.store.get_connection(id).await? {
            if fresh(&rec) {
                self.store.release_unsent(&lease).await?;
                return Ok(RefreshOutcome::AlreadyRefreshed {
                    access_expires_at: rec.access_expires_at,
                }
                .into());
            }
        }
        let result = self.run_leased(&lease, actor).await;
        self.count(&result, started);
        result
    }
}

/// What a successful refresh's reason says when an earlier holder's refresh may have been
/// sent without its answer being recorded (a kill, a lost response): under Intuit's grace
/// this refresh recovered whatever that one lost.
pub const RECOVERED_MARK: &str = "the earlier refresh at ";

/// The reason a connection dies of a lost answer. Its first words are what the forecast,
/// the alert and the support bundle quote.
pub fn lost_answer_reason(u: &Unanswered, intuit_said: &str) -> String {
    format!(
        "the answer to the refresh at {} was lost when the daemon stopped ({} sent the refresh \
         token and never recorded Intuit's answer); Intuit has since refused the token it \
         replaced ({intuit_said}), so the customer must reconnect. The customer did not \
         disconnect.",
        u.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        u.by
    )
}

fn refreshed_since(rec: &ConnectionRecord, t: DateTime<Utc>) -> bool {
    rec.last_refresh_outcome == Some(LastRefresh::Ok)
        && rec.last_refresh_at.is_some_and(|at| at >= t)
}

/// One log line per refresh. Its detail is Intuit's words (an `error_description`, a
/// company's state), and the plain log format writes fields raw: escaped like anything
/// from outside shown to an operator, so a log viewed in a terminal cannot be rewritten.
fn log_refresh(name: &str, result: &anyhow::Result<RefreshResult>) {
    match result {
        Ok(r) => tracing::info!(outcome = name, detail = %DescribeOutcome(&r.outcome), "refresh"),
        Err(e) => tracing::debug!(
            error = %qbo_core::text::Safe(&e.to_string()),
            "refresh failed before reaching a verdict"
        ),
    }
}

/// Logs an outcome without anything secret (outcomes never hold tokens).
struct DescribeOutcome<'a>(&'a RefreshOutcome);

impl std::fmt::Display for DescribeOutcome<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        qbo_core::text::Safe(&super::describe_refresh(self.0)).fmt(f)
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use qbo_core::test_log::{captured, raw_controls, HOSTILE};

    #[test]
    fn intuits_detail_reaches_the_log_escaped() {
        let failed: anyhow::Result<RefreshResult> = Ok(RefreshOutcome::Failed {
            error_class: ErrorClass::Transient,
            detail: HOSTILE.into(),
            intuit_tid: None,
            next_attempt_at: None,
        }
        .into());
        let errored: anyhow::Result<RefreshResult> = Err(anyhow::anyhow!("{HOSTILE}"));
        let log = captured(|| {
            log_refresh("failed", &failed);
            log_refresh("error", &errored);
        });
        let text = String::from_utf8_lossy(&log);
        assert_eq!(raw_controls(&log), Vec::<char>::new(), "{text:?}");
        assert_eq!(text.matches("\\x1b[2J").count(), 2, "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
