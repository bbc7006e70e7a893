//! Verify: prove a connection works by calling CompanyInfo, and record the result as the
//! connection's last sync.

use super::{Engine, RefreshOutcome};
use crate::intuit::IntuitError;
use chrono::Duration as ChronoDuration;
use qbo_core::config::ConfigError;
use qbo_core::domain::SyncStatus;
use qbo_core::identity::Actor;
pub use qbo_core::reports::{describe_refresh, VerifyOutcome};
use qbo_core::vault::AccessToken;
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::{ConnectionRecord, HealthMark};

/// Access tokens this close to expiry are refreshed before use.
const ACCESS_MARGIN_SECS: i64 = 120;

impl Engine {
    pub async fn verify(&self, id: i64, actor: &Actor) -> anyhow::Result<VerifyOutcome> {
        let Some(rec) = self.store.get_connection(id).await? else {
            return Ok(VerifyOutcome::Skipped {
                reason: "connection no longer exists".into(),
            });
        };
        if !rec.status.has_tokens() {
            return Ok(VerifyOutcome::Skipped {
                reason: format!("connection is {} and holds no tokens", rec.status),
            });
        }
        let client = match self.client(rec.environment) {
            Ok(c) => c.clone(),
            Err(ConfigError(detail)) => {
                return Ok(VerifyOutcome::RefreshFailed {
                    refresh: RefreshOutcome::ConfigError {
                        detail,
                        intuit_tid: None,
                    },
                })
            }
        };
        let (mut token, mut fresh) = match self.usable_access_token(&rec, actor).await? {
            Ok(t) => t,
            Err(refresh) => return self.record_verify(&rec, actor, Err(refresh)).await,
        };
        let mut answer = client.company_info(&rec.realm_id, &token).await;
        // A 401 may only mean the access token died early; one refresh settles it.
        if !fresh && matches!(&answer, Err(e) if e.status == Some(401)) {
            let r = self.refresh(rec.id, actor).await?;
            match r.access_token {
                Some(t) => {
                    token = t;
                    fresh = true;
                    answer = client.company_info(&rec.realm_id, &token).await;
                }
                None if !r.outcome.is_success() => {
                    return self.record_verify(&rec, actor, Err(r.outcome)).await
                }
                None => {}
            }
        }
        // A 401 (fault 3200/3201) to a token the OAuth service has just issued cannot be
        // an expired token: the customer disconnected the app inside QuickBooks
        // (INTUIT.md, "Revocation"), and Intuit's OAuth service has not caught up.
        let answer = answer.map_err(|e| {
            let disconnected = fresh && is_disconnect_fault(&e);
            (e, disconnected)
        });
        self.record_verify(&rec, actor, Ok(answer)).await
    }

    /// A check that spends nothing: CompanyInfo with the stored access token while it has
    /// life left, recorded like `verify` (a 401 is a failed sync, not proof of a
    /// disconnect: only a token just issued proves that). `None`, with nothing called and
    /// nothing recorded, when there is no such token or no client: the next scheduled
    /// refresh tells. For callers that must not refresh on an anonymous request's say-so
    /// (Intuit's Disconnect URL, which anyone can open).
    pub async fn verify_without_refresh(
        &self,
        id: i64,
        actor: &Actor,
    ) -> anyhow::Result<Option<VerifyOutcome>> {
        let Some(rec) = self.store.get_connection(id).await? else {
            return Ok(None);
        };
        if !rec.status.has_tokens() {
            return Ok(None);
        }
        let Ok(client) = self.client(rec.environment).cloned() else {
            return Ok(None);
        };
        let Some(token) = self.stored_access_token(&rec).await? else {
            return Ok(None);
        };
        let answer = client.company_info(&rec.realm_id, &token).await;
        self.record_verify(&rec, actor, Ok(answer.map_err(|e| (e, false))))
            .await
            .map(Some)
    }

    /// The stored access token, if it has more than `ACCESS_MARGIN_SECS` of life left.
    async fn stored_access_token(
        &self,
        rec: &ConnectionRecord,
    ) -> anyhow::Result<Option<AccessToken>> {
        let fresh_enough = rec
            .access_expires_at
            .is_some_and(|t| t - self.clock.now() > ChronoDuration::seconds(ACCESS_MARGIN_SECS));
        if !fresh_enough {
            return Ok(None);
        }
        Ok(self
            .store
            .load_sealed(rec.id)
            .await?
            .and_then(|s| s.access_token)
            .and_then(|sealed| self.vault.open_access(rec.id, &sealed).ok()))
    }

    /// The stored access token if it has life left, else a freshly refreshed one, and
    /// whether this call's own refresh issued it (only such a token proves a disconnect).
    async fn usable_access_token(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
    ) -> anyhow::Result<Result<(AccessToken, bool), RefreshOutcome>> {
        if let Some(t) = self.stored_access_token(rec).await? {
            return Ok(Ok((t, false)));
        }
        // `rec` was read before this call's turn: another task or daemon may have refreshed
        // since (two daemons' health checks of one connection, a token API caller), and the
        // check under the lease keeps them from refreshing it twice. A token fresh by its
        // time that would not open is refreshed whatever the record says (the refresh
        // reports what is damaged).
        let fresh_until = self.clock.now() + ChronoDuration::seconds(ACCESS_MARGIN_SECS);
        let expired = rec.access_expires_at.is_none_or(|t| t <= fresh_until);
        let r = if expired {
            self.refresh_unless_fresh(rec.id, actor, fresh_until)
                .await?
        } else {
            self.refresh(rec.id, actor).await?
        };
        if let Some(t) = r.access_token {
            return Ok(Ok((t, true)));
        }
        if !r.outcome.is_success() {
            return Ok(Err(r.outcome));
        }
        // Someone else refreshed it: the stored token is the new one, though not issued
        // to this call (a 401 to it is settled by one refresh of our own, in `verify`).
        let sealed = self
            .store
            .load_sealed(rec.id)
            .await?
            .and_then(|s| s.access_token);
        match sealed.map(|s| self.vault.open_access(rec.id, &s)) {
            Some(Ok(t)) => Ok(Ok((t, false))),
            Some(Err(e)) => Ok(Err(RefreshOutcome::Skipped {
                reason: e.to_string(),
            })),
            None => Ok(Err(RefreshOutcome::Skipped {
                reason: "no access token stored".into(),
            })),
        }
    }

    async fn record_verify(
        &self,
        rec: &ConnectionRecord,
        actor: &Actor,
        result: Result<Result<crate::intuit::CompanyInfo, (IntuitError, bool)>, RefreshOutcome>,
    ) -> anyhow::Result<VerifyOutcome> {
        let now = self.clock.now();
        let mut ev = AuditEvent::new(now, actor, Action::Verify, Outcome::Ok).about(rec);
        let mut tx = self.store.begin().await?;
        let outcome = match result {
            Ok(Ok(info)) => {
                let company_name = storable_company_name(&info.company_name);
                tx.record_sync(
                    rec.id,
                    now,
                    SyncStatus::Ok,
                    "CompanyInfo answered",
                    Some(&company_name),
                    info.intuit_tid.as_deref(),
                    None,
                )
                .await?;
                tx.record_health_check(rec.id, now, HealthMark::Ok).await?;
                ev.intuit_tid = info.intuit_tid.clone();
                VerifyOutcome::Ok {
                    company_name,
                    intuit_tid: info.intuit_tid,
                }
            }
            Ok(Err((e, disconnected))) => {
                let (detail, mark) = if disconnected {
                    (
                        format!(
                            "customer disconnected: QuickBooks refused a token Intuit had just issued ({}); \
                             ask the customer to reconnect",
                            e.detail
                        ),
                        HealthMark::Disconnected,
                    )
                } else {
                    (e.detail.clone(), HealthMark::Inconclusive)
                };
                tx.record_sync(
                    rec.id,
                    now,
                    SyncStatus::Failed,
                    &detail,
                    None,
                    e.intuit_tid.as_deref(),
                    None,
                )
                .await?;
                tx.record_health_check(rec.id, now, mark).await?;
                ev.outcome = Outcome::Failed;
                ev.error_class = Some(e.class.as_str().into());
                ev.reason = Some(detail.clone());
                ev.intuit_tid = e.intuit_tid.clone();
                VerifyOutcome::Failed {
                    error_class: e.class,
                    detail,
                    intuit_tid: e.intuit_tid,
                }
            }
            Err(refresh) => {
                let detail = format!(
                    "could not get an access token: {}",
                    describe_refresh(&refresh)
                );
                tx.record_sync(rec.id, now, SyncStatus::Failed, &detail, None, None, None)
                    .await?;
                tx.record_health_check(rec.id, now, HealthMark::Inconclusive)
                    .await?;
                ev.outcome = Outcome::Failed;
                ev.reason = Some(detail);
                VerifyOutcome::RefreshFailed { refresh }
            }
        };
        self.commit_audited(tx, &[ev]).await?;
        Ok(outcome)
    }
}

/// QBO's authentication faults: 3200 (the token is not accepted) and 3201 (revoked).
fn is_disconnect_fault(e: &IntuitError) -> bool {
    e.status == Some(401)
        && ["fault 3200", "fault 3201"]
            .iter()
            .any(|f| e.detail.contains(f))
}

/// The company name as kept: the customer sets it in QuickBooks, so it may be of any
/// length and hold anything. It is cut to the length a tenant may have, and NUL (which
/// PostgreSQL cannot store) becomes U+FFFD; other controls are kept as given and escaped
/// wherever a name is shown.
fn storable_company_name(name: &str) -> String {
    qbo_core::text::truncate_chars(name, qbo_core::domain::MAX_NAME_CHARS).replace('\0', "\u{fffd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_name_is_stored_capped_and_without_nul() {
        let huge = "n".repeat(1_000_000);
        let kept = storable_company_name(&huge);
        assert_eq!(kept.chars().count(), qbo_core::domain::MAX_NAME_CHARS);
        assert_eq!(
            storable_company_name("a\0b\u{1b}[2J"),
            "a\u{fffd}b\u{1b}[2J"
        );
        assert_eq!(storable_company_name("Acme"), "Acme");
    }
}
