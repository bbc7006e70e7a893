//! Intuit's data-change notifications, once the public listener has checked their size,
//! signature and format: each new event id is recorded with its effect (the realm's last
//! data change) and its audit record in one transaction, so an acknowledged event survives
//! any crash, and an id is never kept without its effect. A redelivered id changes nothing.

use crate::Service;
use chrono::{DateTime, Utc};
use qbo_core::domain::RealmId;
use qbo_core::identity::Actor;
use qbo_engine::metrics::{OutcomeLabel, ReasonLabel};
use qbo_store::audit::AboutConnection;
use qbo_store::audit::{Action, AuditEvent, Outcome};
use qbo_store::ConnectionRecord;
use std::collections::HashMap;

/// One data change at one realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// CloudEvents' `id`; for a legacy notification (which has none), a hash of the
    /// canonical payload entry, so a redelivery has the same id.
    pub id: String,
    pub realm_id: String,
    /// When the change happened, as Intuit says (or when it was received).
    pub at: DateTime<Utc>,
    /// "Customer 1 Create", "qbo.customer.created.v1 1".
    pub what: String,
}

impl Service {
    /// Records every event of one notification in one transaction: each new event id with
    /// its effect and its audit record (Intuit's, through the public listener), a replayed
    /// id with nothing. Returns, per event, whether it was new. Nothing is committed unless
    /// all of it is; only then may the caller answer 200.
    pub async fn record_webhook_events(
        &self,
        events: &[WebhookEvent],
        received: DateTime<Utc>,
    ) -> anyhow::Result<Vec<bool>> {
        let store = self.store();
        // The connections each realm names, read before the transaction (a connection
        // imported meanwhile still gets the effect, from the UPDATE; only its audit record
        // names none).
        let mut targets: HashMap<&str, Vec<ConnectionRecord>> = HashMap::new();
        for ev in events {
            if targets.contains_key(ev.realm_id.as_str()) {
                continue;
            }
            let found = match RealmId::parse(&ev.realm_id) {
                Ok(realm) => {
                    let mut found = store.find_connections(realm.as_str()).await?;
                    found.retain(|r| r.realm_id == realm);
                    found
                }
                Err(_) => Vec::new(),
            };
            targets.insert(ev.realm_id.as_str(), found);
        }
        let actor = Actor::intuit().for_request();
        let mut tx = store.begin().await?;
        let mut new = Vec::with_capacity(events.len());
        let mut audits = Vec::new();
        for ev in events {
            let first = tx.first_webhook_event(&ev.id, received).await?;
            if first {
                tx.record_data_change(&ev.realm_id, ev.at, &ev.what).await?;
                let reason = format!(
                    "Intuit reported {:?} at {} (event {})",
                    qbo_core::text::terminal_safe(&ev.what),
                    ev.at.to_rfc3339(),
                    qbo_core::text::terminal_safe(&ev.id)
                );
                let base =
                    AuditEvent::new(received, &actor, Action::DataChangeReported, Outcome::Ok);
                let conns = &targets[ev.realm_id.as_str()];
                if conns.is_empty() {
                    let mut audit = base.clone();
                    audit.reason = Some(format!(
                        "{reason}; realm {:?} is not connected here",
                        qbo_core::text::terminal_safe(&ev.realm_id)
                    ));
                    audits.push(audit);
                }
                for rec in conns {
                    let mut audit = base.clone().about(rec);
                    audit.reason = Some(reason.clone());
                    audits.push(audit);
                }
            }
            new.push(first);
        }
        self.engine.commit_audited(tx, &audits).await?;
        Ok(new)
    }

    /// Counts a refused notification for `/metrics` (`qbo_webhook_refusals_total{reason}`).
    pub fn count_webhook_refusal(&self, reason: &str) {
        self.engine
            .metrics
            .webhook_refusals
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts an event by what became of it (`processed`, `replayed`, `failed`).
    pub fn count_webhook_event(&self, outcome: &str) {
        self.engine
            .metrics
            .webhook_events
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }
}
