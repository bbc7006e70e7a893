//! The alerts' state, kept in the database so a restart neither alerts again nor loses a
//! delivery: which conditions hold (from the forecast, the scheduler's pauses and the audit
//! chain), the outbox of messages to deliver, and each delivery attempt with its audit
//! record. The daemon's alerter does the HTTP; everything it learns is recorded here.

pub mod conditions;
pub mod message;

use crate::Service;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use conditions::Condition;
use qbo_core::config::AlertsConfig;
use qbo_store::audit::AboutConnection;
use qbo_store::audit::AuditEvent;
use qbo_store::{AlertCondition, AlertDelivery, NewAlert, Tx};
use serde::Serialize;
use std::collections::HashMap;

pub use conditions::AUDIT_BLOCKED_KEY;

/// The condition key digests are filed under in the outbox.
const DIGEST_KEY: &str = "digest";
/// The mark holding when the last digest went out.
const DIGEST_MARK: &str = "digest";

/// What one pass of the alerts did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct AlertReport {
    pub opened: usize,
    pub closed: usize,
    pub digests: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub given_up: usize,
}

impl Service {
    /// Opens (and queues a message to each of `webhooks` for) every new condition, closes
    /// those gone, and queues the digest of what is still open when `[alerts]
    /// digest_interval` has passed; all in one transaction.
    pub async fn evaluate_alerts(
        &self,
        cfg: &AlertsConfig,
        webhooks: &[String],
    ) -> anyhow::Result<AlertReport> {
        let engine = &self.engine;
        let store = &engine.store;
        let now = self.now();
        let forecast = self.compute_forecast(cfg.warn_days).await?;
        let paused = engine.scheduler_state().borrow().paused.clone();
        let open = store.open_alert_conditions().await?;
        let good: HashMap<_, _> = store
            .last_good_refresh()
            .await?
            .into_iter()
            .filter_map(|(e, at)| Some((e, at?)))
            .collect();
        let mut current = conditions::current(&forecast.items, &paused, now, &open, &good);
        let blocked = store.audit_blocked().await?;
        if let Some(c) = conditions::audit_blocked(blocked.as_ref(), now, &open) {
            current.insert(c.key.clone(), c);
        }
        let (opened, closed) = conditions::diff(&current, &open);
        let mut report = AlertReport {
            opened: opened.len(),
            closed: closed.len(),
            ..Default::default()
        };
        let mut tx = store.begin().await?;
        for c in &opened {
            tx.open_alert_condition(&AlertCondition {
                key: c.key.clone(),
                risk: c.risk.clone(),
                connection_id: c.connection.as_ref().map(|x| x.id),
                environment: c.environment.map(|e| e.to_string()),
                opened_at: now,
                summary: c.reason.clone(),
            })
            .await?;
            let (text, body) = message::opened(c, now);
            enqueue(&mut tx, webhooks, &c.key, "opened", &text, &body, now).await?;
        }
        for key in &closed {
            tx.close_alert_condition(key).await?;
        }
        match store.alert_mark(DIGEST_MARK).await? {
            // The first digest comes one interval after alerts first ran.
            None => tx.set_alert_mark(DIGEST_MARK, now).await?,
            Some(last) if now - last >= ChronoDuration::from_std(cfg.digest_interval)? => {
                let still: Vec<Condition> = current.into_values().collect();
                if !still.is_empty() {
                    let (text, body) = message::digest(&still, now);
                    enqueue(&mut tx, webhooks, DIGEST_KEY, "digest", &text, &body, now).await?;
                    report.digests += 1;
                }
                tx.set_alert_mark(DIGEST_MARK, now).await?;
            }
            Some(_) => {}
        }
        engine.commit_audited(tx, &[]).await?;
        Ok(report)
    }

    /// Up to `batch` deliveries due now, and whether the audit log is blocked (then only
    /// the alert about that may go out, unrecorded).
    pub async fn due_alert_deliveries(
        &self,
        batch: i64,
    ) -> anyhow::Result<(Vec<AlertDelivery>, bool)> {
        let store = self.store();
        let due = store.due_alert_deliveries(self.now(), batch).await?;
        let blocked = store.audit_blocked().await?.is_some();
        Ok((due, blocked))
    }

    /// Records one delivery attempt made `at` (`state` delivered, pending until `next`, or failed)
    /// with its audit event, which names the connection the condition is about; `None`
    /// when the audit log is blocked and the attempt cannot be audited.
    pub async fn record_alert_attempt(
        &self,
        d: &AlertDelivery,
        state: &str,
        next: Option<DateTime<Utc>>,
        error: Option<&str>,
        event: Option<AuditEvent>,
        at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let store = self.store();
        let mut events = Vec::new();
        if let Some(mut ev) = event {
            if let Some(id) = connection_of(&d.condition_key) {
                if let Some(r) = store.get_connection(id).await? {
                    ev = ev.about(&r);
                }
            }
            events.push(ev);
        }
        let mut tx = store.begin().await?;
        tx.record_alert_attempt(d.id, state, next, error, at)
            .await?;
        self.engine.commit_audited(tx, &events).await?;
        Ok(())
    }
}

async fn enqueue(
    tx: &mut Tx,
    webhooks: &[String],
    key: &str,
    event: &str,
    text: &str,
    body: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    for name in webhooks {
        let a = NewAlert {
            condition_key: key.into(),
            event: event.into(),
            webhook: name.clone(),
            text: text.into(),
            body: body.into(),
        };
        tx.enqueue_alert(&a, now).await?;
    }
    Ok(())
}

/// The connection a condition key names (`connection:ID:RISK`).
fn connection_of(key: &str) -> Option<i64> {
    key.strip_prefix("connection:")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_key_names_its_connection() {
        assert_eq!(connection_of("connection:42:needs_reconnect"), Some(42));
        assert_eq!(
            connection_of("environment:sandbox:credentials_rejected"),
            None
        );
        assert_eq!(connection_of("digest"), None);
    }
}
