//! Refresh, done right.
//!
//! 1. Single flight: the in-process flight guard, then the database lease, so only one
//!    caller anywhere spends a given refresh token.
//! 2. The new tokens, the moved-aside previous refresh token, the new clocks and the audit
//!    event commit in one transaction before the new access token is handed to anyone.
//! 3. A lost answer (timeout, 5xx, garbage) keeps the current token and schedules a retry;
//!    invalid_grant marks the connection dead only after re-reading the row; invalid_client
//!    marks nothing and reports a configuration error.

use super::writer::{Applied, Op};
use super::{next_delay, Engine, Status};
use crate::audit::{Action, AuditEvent, Outcome};
use crate::domain::{ErrorClass, LastRefresh};
use crate::identity::Actor;
use crate::intuit::{IntuitError, TokenGrant};
use crate::store::{Claimed, ConnectionRecord, TokenUpdate};
use crate::vault::{AccessToken, RefreshToken, TokenColumn};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What a refresh failure's audit reason puts before the wait the backoff chose, so that a
/// support bundle can show each attempt's backoff.
pub const NEXT_ATTEMPT_MARK: &str = "; next attempt in ";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RefreshOutcome {
    /// This call refreshed the connection.
    Refreshed {
        access_expires_at: DateTime<Utc>,
        rotated: bool,
        intuit_tid: Option<String>,
    },
    /// Another refresher finished a refresh after this call was made; its result stands.
    AlreadyRefreshed {
        access_expires_at: Option<DateTime<Utc>>,
    },
    /// Intuit could not be reached or answered unusably; tokens kept, retried later.
    Failed {
        error_class: ErrorClass,
        detail: String,
        intuit_tid: Option<String>,
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// Intuit said invalid_grant: the customer must reconnect.
    NeedsReconnect {
        reason: String,
        intuit_tid: Option<String>,
    },
    /// Our own configuration is wrong (invalid_client, missing environment): nothing marked.
    ConfigError {
        detail: String,
        intuit_tid: Option<String>,
    },
    /// Nothing to refresh in this state.
    Skipped { reason: String },
    /// Another process held the connection for longer than a lease; try again.
    Busy { holder: String },
    /// The refresh ended in an error before reaching a verdict (a stored value that will
    /// not open, a lease taken over, the database): nothing was stored for it. Never made
    /// by the engine itself: a bulk report uses it so that one connection's error does not
    /// hide what happened to the others.
    Error { detail: String },
}

impl RefreshOutcome {
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            RefreshOutcome::Refreshed { .. } | RefreshOutcome::AlreadyRefreshed { .. }
        )
    }
}

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
        let _flight = self.flights.enter(id).await;
        let requested_at = self.clock.now();
        if let Some(done) = self.acquire_lease(id, requested_at).await? {
            self.count(&Ok(RefreshResult::from(done.clone())), started);
            return Ok(done.into());
        }
        let result = self.run_leased(id, actor).await;
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
        let result = self
            .refresh_with(claimed.record, claimed.refresh_token, actor)
            .await;
        self.release_on_error(id, &result).await;
        self.count(&result, started);
        result
    }

    async fn run_leased(&self, id: i64, actor: &Actor) -> anyhow::Result<RefreshResult> {
        let result = self.refresh_leased(id, actor).await;
        self.release_on_error(id, &result).await;
        result
    }

    async fn release_on_error(&self, id: i64, result: &anyhow::Result<RefreshResult>) {
        if result.is_err() {
            // Best effort: never leave a lease behind on an unexpected error. If even this
            // fails, the lease expires on its own.
            let _ = self.store.release_lease(id, &self.owner).await;
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

    /// Waits for the lease. Returns `Some(outcome)` when waiting made the refresh
    /// unnecessary (someone else refreshed after we were asked) or impossible (busy).
    async fn acquire_lease(
        &self,
        id: i64,
        requested_at: DateTime<Utc>,
    ) -> anyhow::Result<Option<RefreshOutcome>> {
        let lease = ChronoDuration::from_std(self.refresh_cfg.lease)?;
        let give_up = Instant::now() + self.refresh_cfg.lease + Duration::from_secs(5);
        loop {
            let now = self.clock.now();
            if self
                .store
                .try_lease(id, &self.owner, now, now + lease)
                .await?
            {
                return Ok(None);
            }
            let pause = rand::thread_rng().gen_range(20..120);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let Some(rec) = self.store.get_connection(id).await? else {
                return Ok(Some(RefreshOutcome::Skipped {
                    reason: "connection no longer exists".into(),
                }));
            };
            if rec.lease_owner.is_none() && refreshed_since(&rec, requested_at) {
                return Ok(Some(RefreshOutcome::AlreadyRefreshed {
                    access_expires_at: rec.access_expires_at,
                }));
            }
            if Instant::now() > give_up {
                return Ok(Some(RefreshOutcome::Busy {
                    holder: rec.lease_owner.unwrap_or_default(),
                }));
            }
        }
    }

    async fn refresh_leased(&self, id: i64, actor: &Actor) -> anyhow::Result<RefreshResult> {
        let (Some(rec), Some(sealed)) = (
            self.store.get_connection(id).await?,
            self.store.load_sealed(id).await?,
        ) else {
            return Ok(RefreshOutcome::Skipped {
                reason: "connection no longer exists".into(),
            }
            .into());
        };
        self.refresh_with(rec, sealed.refresh_token, actor).await
    }

    /// The refresh proper, for a connection whose lease this process holds, given the row
    /// as read under that lease.
    async fn refresh_with(
        &self,
        rec: ConnectionRecord,
        sealed_refresh: Option<Vec<u8>>,
        actor: &Actor,
    ) -> anyhow::Result<RefreshResult> {
        let id = rec.id;
        let sealed_refresh = match (rec.status.has_tokens(), sealed_refresh) {
            (true, Some(s)) => s,
            _ => {
                self.store.release_lease(id, &self.owner).await?;
                return Ok(RefreshOutcome::Skipped {
                    reason: format!("connection is {} and holds no refresh token", rec.status),
                }
                .into());
            }
        };
        let client = match self.client(rec.environment) {
            Ok(c) => c.clone(),
            Err(detail) => {
                self.store.release_lease(id, &self.owner).await?;
                return Ok(RefreshOutcome::ConfigError {
                    detail,
                    intuit_tid: None,
                }
                .into());
            }
        };
        let current = match self
            .vault
            .open_refresh(id, TokenColumn::Refresh, &sealed_refresh)
        {
            Ok(t) => t,
            // A value that will not open was damaged or moved from another row: stop here
            // without writing anything (the caller releases the lease) and say so.
            Err(e) => return Err(anyhow::Error::new(e)),
        };
        self.store.audit_appendable().await?; // never spend a token whose answer cannot be recorded
        match client.refresh(&current).await {
            Ok(grant) => self.record_success(&rec, actor, &current, grant).await,
            Err(e) if e.class == ErrorClass::InvalidGrant => {
                self.record_invalid_grant(&rec, actor, &sealed_refresh, &current, e)
                    .await
            }
            Err(e) if e.class == ErrorClass::InvalidClient => {
                self.record_config_error(&rec, actor, &current, e).await
            }
            Err(e) => self.record_failure(&rec, actor, &current, &e).await,
        }
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
        ev.reason = Some(if rotated {
            "refresh token rotated".into()
        } else {
            "refresh token unchanged".into()
        });

        let op = Op::RefreshSuccess {
            id: rec.id,
            owner: self.owner.clone(),
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
        actor: &Actor,
        sealed_used: &[u8],
        used: &RefreshToken,
        e: IntuitError,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        // Re-read under the write lock: if the stored refresh token is no longer the one we
        // sent, someone refreshed successfully meanwhile and the connection is alive.
        let still_current =
            tx.sealed_refresh_for_update(rec.id).await?.as_deref() == Some(sealed_used);
        if !still_current {
            tx.rollback().await?;
            self.store.release_lease(rec.id, &self.owner).await?;
            let latest = self.store.get_connection(rec.id).await?;
            return Ok(RefreshOutcome::AlreadyRefreshed {
                access_expires_at: latest.and_then(|r| r.access_expires_at),
            }
            .into());
        }
        let reason = format!(
            "Intuit refused the refresh token ({}); the customer must reconnect",
            e.detail
        );
        tx.mark_needs_reconnect(rec.id, &self.owner, &reason, e.intuit_tid.as_deref(), now)
            .await?;
        let mut ev = self
            .event(rec, actor, Outcome::Failed, now)
            .fingerprint("refresh_used", self.vault.fingerprint(used.expose()));
        ev.error_class = Some(ErrorClass::InvalidGrant.as_str().into());
        ev.reason = Some(reason.clone());
        ev.intuit_tid = e.intuit_tid.clone();
        self.audit(&mut tx, &ev).await?;
        self.published(tx.commit().await?);
        Ok(RefreshOutcome::NeedsReconnect {
            reason,
            intuit_tid: e.intuit_tid,
        }
        .into())
    }

    async fn record_config_error(
        &self,
        rec: &ConnectionRecord,
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
        let mut tx = self.store.begin().await?;
        self.audit(&mut tx, &ev).await?;
        self.published(tx.commit().await?);
        self.store.release_lease(rec.id, &self.owner).await?;
        Ok(RefreshOutcome::ConfigError {
            detail,
            intuit_tid: e.intuit_tid,
        }
        .into())
    }

    async fn record_failure(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        used: &RefreshToken,
        e: &IntuitError,
    ) -> anyhow::Result<RefreshResult> {
        let now = self.clock.now();
        let failures = u32::try_from(rec.consecutive_failures + 1).unwrap_or(u32::MAX);
        let delay = next_delay(
            failures,
            self.refresh_cfg.backoff_base,
            self.refresh_cfg.backoff_cap,
            e.retry_after,
        );
        let next = now + ChronoDuration::from_std(delay)?;
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
            humantime::format_duration(delay)
        ));
        ev.intuit_tid = e.intuit_tid.clone();
        let op = Op::RefreshFailure {
            id: rec.id,
            owner: self.owner.clone(),
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
        if let Some(done) = self.acquire_lease(id, self.clock.now()).await? {
            self.count(&Ok(RefreshResult::from(done.clone())), started);
            return Ok(done.into());
        }
        // Another process may have refreshed between the read and the lease.
        if let Some(rec) = self.store.get_connection(id).await? {
            if fresh(&rec) {
                self.store.release_lease(id, &self.owner).await?;
                return Ok(RefreshOutcome::AlreadyRefreshed {
                    access_expires_at: rec.access_expires_at,
                }
                .into());
            }
        }
        let result = self.run_leased(id, actor).await;
        self.count(&result, started);
        result
    }
}

fn refreshed_since(rec: &ConnectionRecord, t: DateTime<Utc>) -> bool {
    rec.last_refresh_outcome == Some(LastRefresh::Ok)
        && rec.last_refresh_at.is_some_and(|at| at >= t)
}

pub fn outcome_name(o: &RefreshOutcome) -> &'static str {
    match o {
        RefreshOutcome::Refreshed { .. } => "refreshed",
        RefreshOutcome::AlreadyRefreshed { .. } => "already_refreshed",
        RefreshOutcome::Failed { .. } => "failed",
        RefreshOutcome::NeedsReconnect { .. } => "needs_reconnect",
        RefreshOutcome::ConfigError { .. } => "config_error",
        RefreshOutcome::Skipped { .. } => "skipped",
        RefreshOutcome::Busy { .. } => "busy",
        RefreshOutcome::Error { .. } => "error",
    }
}

/// One log line per refresh. Its detail is Intuit's words (an `error_description`, a
/// company's state), and the plain log format writes fields raw: escaped like anything
/// from outside shown to an operator, so a log viewed in a terminal cannot be rewritten.
fn log_refresh(name: &str, result: &anyhow::Result<RefreshResult>) {
    match result {
        Ok(r) => tracing::info!(outcome = name, detail = %DescribeOutcome(&r.outcome), "refresh"),
        Err(e) => tracing::debug!(
            error = %crate::text::Safe(&e.to_string()),
            "refresh failed before reaching a verdict"
        ),
    }
}

/// Logs an outcome without anything secret (outcomes never hold tokens).
struct DescribeOutcome<'a>(&'a RefreshOutcome);

impl std::fmt::Display for DescribeOutcome<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::text::Safe(&super::describe_refresh(self.0)).fmt(f)
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use crate::test_log::{captured, raw_controls, HOSTILE};

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
