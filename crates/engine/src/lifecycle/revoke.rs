//! Revocation, under the same single flight as refresh (the in-process guard, then the
//! database lease), so a refresh and a revoke never spend the refresh token at once.
//!
//! Only Intuit's 200 destroys the local ciphertexts: a revoke Intuit did not confirm keeps
//! the tokens (the grant may still be live there) and leaves the connection `revoking`,
//! which the scheduler retries on the refresh backoff. `--local-only` forgets the tokens
//! without Intuit, explicitly and on record. Each verdict and its audit event commit in one
//! transaction.

use super::{Engine, Status};
use crate::intuit::IntuitError;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::ConfigError;
use qbo_core::domain::ErrorClass;
use qbo_core::identity::Actor;
pub use qbo_core::reports::RevokeOutcome;
use qbo_core::vault::TokenColumn;
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::Purpose;
use qbo_store::{Claimed, ConnectionRecord};
use rand::Rng;
use std::time::{Duration, Instant};

/// How a revoke is to be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeMode {
    /// At Intuit with the refresh token; local tokens destroyed only on its 200.
    AtIntuit,
    /// Forget the tokens locally without asking Intuit, for the reason given.
    LocalOnly { reason: String },
}

impl Engine {
    /// Revokes one connection, waiting for any refresh of it (here or in another process
    /// sharing the database) to finish first.
    pub async fn revoke(
        &self,
        id: i64,
        actor: &Actor,
        mode: &RevokeMode,
    ) -> anyhow::Result<RevokeOutcome> {
        let _flight = self.flights.enter(id).await;
        if let Some(holder) = self.wait_for_lease(id).await? {
            return Ok(RevokeOutcome::Busy { holder });
        }
        let result = match (
            self.store.get_connection(id).await,
            self.store.load_sealed(id).await,
        ) {
            (Ok(Some(rec)), Ok(Some(sealed))) => {
                self.revoke_with(rec, sealed.refresh_token, actor, mode)
                    .await
            }
            (Ok(_), Ok(_)) => Ok(RevokeOutcome::Skipped {
                reason: "connection no longer exists".into(),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if result.is_err() {
            // Best effort, as for refresh: a lease left behind expires on its own.
            let _ = self.store.release_owned(id, &self.owner).await;
        }
        result
    }

    /// Retries the revoke of a `revoking` connection the scheduler claimed.
    pub async fn revoke_claimed(
        &self,
        claimed: Claimed,
        actor: &Actor,
    ) -> anyhow::Result<RevokeOutcome> {
        let id = claimed.record.id;
        let _flight = self.flights.enter(id).await;
        let result = self
            .revoke_with(
                claimed.record,
                claimed.refresh_token,
                actor,
                &RevokeMode::AtIntuit,
            )
            .await;
        if result.is_err() {
            let _ = self.store.release_owned(id, &self.owner).await;
        }
        result
    }

    /// Takes the lease, waiting at most a lease (plus a margin) for its holder. Returns the
    /// holder's name when it never came free.
    async fn wait_for_lease(&self, id: i64) -> anyhow::Result<Option<String>> {
        let lease = ChronoDuration::from_std(self.refresh_cfg.lease)?;
        let give_up = Instant::now() + self.refresh_cfg.lease + Duration::from_secs(5);
        loop {
            let now = self.clock.now();
            if self
                .store
                .try_lease(id, &self.owner, now, now + lease, Purpose::Other)
                .await?
                .is_some()
            {
                return Ok(None);
            }
            if Instant::now() > give_up {
                let holder = self
                    .store
                    .get_connection(id)
                    .await?
                    .and_then(|r| r.lease_owner)
                    .unwrap_or_default();
                return Ok(Some(holder));
            }
            let pause = rand::thread_rng().gen_range(20..120);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// The revoke proper, for a connection whose lease this process holds.
    async fn revoke_with(
        &self,
        rec: ConnectionRecord,
        sealed_refresh: Option<Vec<u8>>,
        actor: &Actor,
        mode: &RevokeMode,
    ) -> anyhow::Result<RevokeOutcome> {
        let skip = match rec.status {
            Status::Revoked => Some("already revoked".to_string()),
            Status::Pending => Some("pending: no grant was ever made, nothing to revoke".into()),
            _ => None,
        };
        if let Some(reason) = skip {
            self.store.release_owned(rec.id, &self.owner).await?;
            return Ok(RevokeOutcome::Skipped { reason });
        }
        if let RevokeMode::LocalOnly { reason } = mode {
            return self.forget_locally(&rec, actor, reason).await;
        }
        let Some(sealed) = sealed_refresh else {
            self.store.release_owned(rec.id, &self.owner).await?;
            return Ok(RevokeOutcome::Skipped {
                reason: "holds no refresh token to revoke at Intuit; `revoke --local-only --reason TEXT` forgets the rest".into(),
            });
        };
        let client = match self.client(rec.environment) {
            Ok(c) => c.clone(),
            Err(ConfigError(detail)) => {
                self.store.release_owned(rec.id, &self.owner).await?;
                return Ok(RevokeOutcome::ConfigError {
                    detail,
                    intuit_tid: None,
                });
            }
        };
        let token = self
            .vault
            .open_refresh(rec.id, TokenColumn::Refresh, &sealed)?;
        let action = if rec.status == Status::Revoking {
            Action::RevokeRetried
        } else {
            Action::Revoke
        };
        let fingerprint = self.vault.fingerprint(token.expose());
        match client.revoke(token.expose()).await {
            Ok(tid) => {
                let now = self.clock.now();
                let reason = "revoked at Intuit; local tokens destroyed".to_string();
                let mut ev = self
                    .revoke_event(&rec, actor, action, Outcome::Ok, now)
                    .fingerprint("refresh_revoked", fingerprint);
                ev.reason = Some(reason.clone());
                ev.intuit_tid = tid.clone();
                let mut tx = self.store.begin().await?;
                if !tx
                    .mark_revoked(rec.id, &self.owner, &reason, tid.as_deref(), now)
                    .await?
                {
                    tx.rollback().await?;
                    anyhow::bail!(
                        "revoke of connection {} was confirmed by Intuit after its lease was taken over; run the revoke again to record it (intuit_tid {})",
                        rec.id,
                        tid.as_deref().unwrap_or("none")
                    );
                }
                self.commit_audited(tx, &[ev]).await?;
                Ok(RevokeOutcome::Revoked { intuit_tid: tid })
            }
            Err(e) if e.class == ErrorClass::InvalidClient => {
                self.revoke_config_error(&rec, actor, action, e).await
            }
            Err(e) => {
                self.record_revoke_failure(&rec, actor, action, fingerprint, e)
                    .await
            }
        }
    }

    fn revoke_event(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        action: Action,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> AuditEvent {
        AuditEvent::new(now, actor, action, outcome).about(rec)
    }

    async fn forget_locally(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        why: &str,
    ) -> anyhow::Result<RevokeOutcome> {
        let now = self.clock.now();
        let reason = format!("tokens forgotten locally without Intuit's confirmation: {why}");
        let mut ev = self.revoke_event(rec, actor, Action::RevokeLocalOnly, Outcome::Ok, now);
        ev.reason = Some(reason.clone());
        let mut tx = self.store.begin().await?;
        if !tx
            .mark_revoked(rec.id, &self.owner, &reason, None, now)
            .await?
        {
            tx.rollback().await?;
            anyhow::bail!(
                "connection {} was taken over by another process during the local-only revoke; nothing was changed, run it again",
                rec.id
            );
        }
        self.commit_audited(tx, &[ev]).await?;
        Ok(RevokeOutcome::RevokedLocally {
            reason: why.to_string(),
        })
    }

    async fn revoke_config_error(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        action: Action,
        e: IntuitError,
    ) -> anyhow::Result<RevokeOutcome> {
        let now = self.clock.now();
        let detail = format!(
            "Intuit rejected our {} client credentials ({}): check client_id and client_secret in the config; nothing was revoked",
            rec.environment, e.detail
        );
        let mut ev = self.revoke_event(rec, actor, action, Outcome::Failed, now);
        ev.error_class = Some(ErrorClass::InvalidClient.as_str().into());
        ev.reason = Some(detail.clone());
        ev.intuit_tid = e.intuit_tid.clone();
        let tx = self.store.begin().await?;
        self.commit_audited(tx, &[ev]).await?;
        self.store.release_owned(rec.id, &self.owner).await?;
        Ok(RevokeOutcome::ConfigError {
            detail,
            intuit_tid: e.intuit_tid,
        })
    }

    async fn record_revoke_failure(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        action: Action,
        fingerprint: String,
        e: IntuitError,
    ) -> anyhow::Result<RevokeOutcome> {
        let now = self.clock.now();
        let next = self.retry(rec.consecutive_failures, e.retry_after, now)?.at;
        let reason = format!(
            "revoke not confirmed by Intuit ({}); tokens kept, retried by the daemon",
            e.detail
        );
        let mut ev = self
            .revoke_event(rec, actor, action, Outcome::Failed, now)
            .fingerprint("refresh_kept", fingerprint);
        ev.error_class = Some(e.class.as_str().into());
        ev.reason = Some(reason.clone());
        ev.intuit_tid = e.intuit_tid.clone();
        let mut tx = self.store.begin().await?;
        if !tx
            .mark_revoking(
                rec.id,
                &self.owner,
                &reason,
                e.class,
                e.intuit_tid.as_deref(),
                next,
                now,
            )
            .await?
        {
            tx.rollback().await?;
            anyhow::bail!(
                "revoke of connection {} failed after its lease was taken over; nothing was stored, run it again",
                rec.id
            );
        }
        self.commit_audited(tx, &[ev]).await?;
        Ok(RevokeOutcome::Revoking {
            error_class: e.class,
            detail: e.detail,
            intuit_tid: e.intuit_tid,
            next_attempt_at: next,
        })
    }
}
