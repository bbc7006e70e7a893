//! Completing a consent: the one code exchange a claimed callback may make, and the write
//! that brings the same connection row back to life.
//!
//! Persist before use, as for a refresh: the new tokens, the realm, the cleared counters,
//! the completed invitation and the audit event commit in one transaction under the
//! connection's lease before the new access token is used (for CompanyInfo) by anyone.

use super::{Engine, Status};
use chrono::Duration as ChronoDuration;
use qbo_core::domain::{ErrorClass, RealmId};
use qbo_core::identity::Actor;
use qbo_core::vault::TokenColumn;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::Purpose;
use qbo_store::{ConnectionRecord, Invitation, Reconnected};
use std::time::{Duration, Instant};

/// How a claimed consent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Stored and active; the company name CompanyInfo gave, when it answered.
    Connected { company_name: Option<String> },
    /// Intuit refused or did not answer the exchange; nothing stored. The class tells a
    /// code Intuit refused (`invalid_grant`: made up, too old, already used), which is the
    /// browser's doing, from Intuit or our credentials failing.
    ExchangeFailed { class: ErrorClass },
}

impl Engine {
    /// Exchanges `code` (the caller has consumed the state, so no other caller can reach
    /// here with it) and stores the grant on `rec`.
    pub async fn complete_consent(
        &self,
        inv: &Invitation,
        rec: &ConnectionRecord,
        realm: &RealmId,
        code: &str,
        actor: &Actor,
    ) -> anyhow::Result<ConsentOutcome> {
        let client = self
            .client(rec.environment)
            .map_err(anyhow::Error::msg)?
            .clone();
        let target = |ev: AuditEvent| {
            ev.target(
                rec.id,
                rec.environment.as_str(),
                realm.as_str(),
                &rec.tenant,
            )
        };
        let grant = match client.exchange_code(code).await {
            Ok(g) => g,
            Err(e) => {
                let mut ev = target(AuditEvent::new(
                    self.clock.now(),
                    actor,
                    Action::ExchangeFailed,
                    Outcome::Failed,
                ));
                ev.error_class = Some(e.class.as_str().into());
                ev.reason = Some(format!(
                    "Intuit did not exchange the authorization code ({}); nothing was stored and link {} stays open",
                    e.detail, inv.id
                ));
                ev.intuit_tid = e.intuit_tid.clone();
                let tx = self.store.begin().await?;
                self.commit_audited(tx, &[ev]).await?;
                return Ok(ConsentOutcome::ExchangeFailed { class: e.class });
            }
        };
        if let Err(e) = self.lease_for_consent(rec.id).await {
            self.record_unstored(inv, rec, realm, actor, &grant, &e)
                .await;
            return Err(e);
        }
        let now = self.clock.now();
        let hard_expires_at = grant
            .hard_expires_in
            .map(|s| now + ChronoDuration::seconds(s));
        let warn =
            ChronoDuration::days(i64::from(self.scheduler_config().hard_expiry_warning_days));
        let status = match hard_expires_at {
            Some(h) if h - now <= warn => Status::Expiring,
            _ => Status::Active,
        };
        let access_expires_at = now + ChronoDuration::seconds(grant.expires_in);
        let update = Reconnected {
            realm_id: realm.clone(),
            access_token: self
                .vault
                .seal(rec.id, TokenColumn::Access, grant.access_token.expose()),
            refresh_token: self.vault.seal(
                rec.id,
                TokenColumn::Refresh,
                grant.refresh_token.expose(),
            ),
            access_expires_at,
            refresh_expires_at: now + ChronoDuration::seconds(grant.refresh_expires_in),
            hard_expires_at,
            intuit_tid: grant.intuit_tid.clone(),
            next_attempt_at: self.next_scheduled(now, access_expires_at),
            status,
            at: now,
        };
        let mut ev = target(AuditEvent::new(
            now,
            actor,
            Action::CodeExchanged,
            Outcome::Ok,
        ))
        .fingerprint(
            "access_new",
            self.vault.fingerprint(grant.access_token.expose()),
        )
        .fingerprint(
            "refresh_new",
            self.vault.fingerprint(grant.refresh_token.expose()),
        );
        ev.intuit_tid = grant.intuit_tid.clone();
        ev.reason = Some(format!(
            "consent completed through link {}: connection {} is {} again (was {}), its row and history kept",
            inv.id, rec.id, status, rec.status
        ));
        let mut tx = self.store.begin().await?;
        let written = tx
            .apply_reconnect(rec.id, self.lease_owner(), &update)
            .await?
            && tx.close_invitation(inv.id, "completed", now).await?;
        if !written {
            tx.rollback().await?;
            let _ = self.store.release_owned(rec.id, self.lease_owner()).await;
            let e = anyhow::anyhow!(
                "the consent for connection {} could not be stored: its lease was taken over or its realm changed meanwhile (intuit_tid {})",
                rec.id,
                grant.intuit_tid.as_deref().unwrap_or("none")
            );
            self.record_unstored(inv, rec, realm, actor, &grant, &e)
                .await;
            return Err(e);
        }
        self.commit_audited(tx, &[ev]).await?;
        // Stored: now the new access token may be used, to prove the company answers.
        let company_name = match self.verify(rec.id, actor).await {
            Ok(super::VerifyOutcome::Ok { company_name, .. }) => Some(company_name),
            _ => None,
        };
        Ok(ConsentOutcome::Connected { company_name })
    }

    /// Best effort: puts on record that Intuit exchanged the code but the grant could not
    /// be stored (the link stays open, so the customer can consent again).
    async fn record_unstored(
        &self,
        inv: &Invitation,
        rec: &ConnectionRecord,
        realm: &RealmId,
        actor: &Actor,
        grant: &crate::intuit::TokenGrant,
        e: &anyhow::Error,
    ) {
        let mut ev = AuditEvent::new(
            self.clock.now(),
            actor,
            Action::ExchangeFailed,
            Outcome::Failed,
        )
        .target(
            rec.id,
            rec.environment.as_str(),
            realm.as_str(),
            &rec.tenant,
        );
        ev.error_class = Some(ErrorClass::Transient.as_str().into());
        ev.reason = Some(format!(
            "Intuit exchanged the code of link {} but the grant was not stored ({e:#}); the link stays open",
            inv.id
        ));
        ev.intuit_tid = grant.intuit_tid.clone();
        let recorded = async {
            let tx = self.store.begin().await?;
            self.commit_audited(tx, &[ev]).await?;
            anyhow::Ok(())
        };
        if let Err(err) = recorded.await {
            tracing::warn!(error = %format!("{err:#}"), "cannot record an unstored consent");
        }
    }

    /// Takes the connection's lease, waiting out a refresh of it in hand (a manual refresh
    /// of a dead connection, say) for at most a lease's length.
    async fn lease_for_consent(&self, id: i64) -> anyhow::Result<()> {
        let lease = ChronoDuration::from_std(self.refresh_config().lease)?;
        let give_up = Instant::now() + self.refresh_config().lease;
        loop {
            let now = self.clock.now();
            if self
                .store
                .try_lease(id, self.lease_owner(), now, now + lease, Purpose::Other)
                .await?
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() > give_up {
                anyhow::bail!(
                    "connection {id} stayed leased by another refresher for longer than [refresh] lease; the consent was not stored"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
