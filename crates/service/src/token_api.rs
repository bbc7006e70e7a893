//! What the token API (the host application's door) asks of the service: the connections
//! of a realm with their access tokens opened, a refresh unless the token is fresh enough,
//! the sync the host reports, and the records of what it was handed. The API's listener
//! decides who may ask (service keys) and keeps its caches; the service does the reading,
//! the refreshing and the recording.

use crate::{ConnectionView, Service};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, Status, SyncStatus};
use qbo_core::identity::Actor;
use qbo_core::vault::AccessToken;
use qbo_engine::lifecycle::RefreshOutcome;
use qbo_store::audit::AuditEvent;

/// A connection as the token API serves it: what it needs to decide, and the opened token.
pub struct TokenHolder {
    pub id: i64,
    pub environment: Environment,
    pub realm_id: String,
    pub tenant: String,
    pub status: Status,
    pub status_reason: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The access token and its fingerprint, when the connection holds one.
    pub token: Option<(AccessToken, String)>,
}

impl Service {
    /// The connections to `realm` (exactly; a search would also match tenants), each live
    /// one's access token opened.
    pub async fn token_holders(&self, realm: &str) -> anyhow::Result<Vec<TokenHolder>> {
        let engine = &self.engine;
        let mut out = Vec::new();
        for rec in engine.store.find_connections(realm).await? {
            if rec.realm_id.as_str() != realm {
                continue;
            }
            let token = match (
                rec.status.is_live(),
                engine.store.load_sealed(rec.id).await?,
            ) {
                (true, Some(sealed)) => match sealed.access_token {
                    Some(s) => {
                        let t = engine.vault.open_access(rec.id, &s)?;
                        let fp = engine.vault.fingerprint(t.expose());
                        Some((t, fp))
                    }
                    None => None,
                },
                _ => None,
            };
            out.push(TokenHolder {
                id: rec.id,
                environment: rec.environment,
                realm_id: rec.realm_id.as_str().to_string(),
                tenant: rec.tenant,
                status: rec.status,
                status_reason: rec.status_reason,
                access_expires_at: rec.access_expires_at,
                token,
            });
        }
        Ok(out)
    }

    /// Refreshes connection `id` through the engine's single flight unless its access
    /// token is valid until `fresh_until`; the outcome says what happened.
    pub async fn refresh_unless_fresh(
        &self,
        id: i64,
        actor: &Actor,
        fresh_until: DateTime<Utc>,
    ) -> anyhow::Result<RefreshOutcome> {
        Ok(self
            .engine
            .refresh_unless_fresh(id, actor, fresh_until)
            .await?
            .outcome)
    }

    /// Every connection, unrecorded: the token API's listing, filtered by the caller's
    /// key before it leaves.
    pub async fn connections_for_keys(&self) -> anyhow::Result<Vec<ConnectionView>> {
        let now = self.now();
        Ok(self
            .store()
            .list_connections(&Default::default())
            .await?
            .into_iter()
            .map(|r| ConnectionView::from_record(r, now))
            .collect())
    }

    /// Records the sync the host application reports for connection `id`, with its audit
    /// event, in one transaction.
    pub async fn record_host_sync(
        &self,
        id: i64,
        finished: DateTime<Utc>,
        status: SyncStatus,
        summary: &str,
        event: AuditEvent,
    ) -> anyhow::Result<()> {
        let mut tx = self.store().begin().await?;
        tx.record_sync(id, finished, status, summary, None, None, None)
            .await?;
        self.engine.commit_audited(tx, &[event]).await?;
        Ok(())
    }

    /// Appends what callers were shown or handed, without telling live views (see
    /// `Engine::record_reads`).
    pub async fn record_reads(&self, events: &[AuditEvent]) -> anyhow::Result<()> {
        self.engine.record_reads(events).await
    }
}
