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
use std::collections::{BTreeMap, HashMap};

pub use conditions::AUDIT_BLOCKED_KEY;

/// The condition key digests are filed under in the outbox.
const DIGEST_KEY: &str = "digest";
/// The mark holding when the last digest went out.
const DIGEST_MARK: &str = "digest";
/// The condition key the message about many openings is filed under in the outbox.
const OPENED_MANY_KEY: &str = "opened_many";
/// Openings per pass alerted one message each; the rest of the pass's are told in one.
/// Connections read (and their changes committed) per page of the alerts' pass.
const ALERT_PAGE: i64 = 500;

pub const ALERT_BURST: usize = 20;
/// Conditions a digest names one by one (the soonest); the rest it counts by risk.
pub const DIGEST_LISTED: usize = 50;

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
    /// digest_interval` has passed.
    ///
    /// A page of connections at a time, each page's changes in one transaction with their
    /// messages: memory stays that of a page whatever the table's size, and no write waits
    /// on a pass over a million connections. The first `ALERT_BURST` openings of a pass get
    /// a message each; the rest are counted (in the same transactions, so a crash loses no
    /// count) and told in one message at the end of the pass.
    pub async fn evaluate_alerts(
        &self,
        cfg: &AlertsConfig,
        webhooks: &[String],
    ) -> anyhow::Result<AlertReport> {
        let store = &self.engine.store;
        let now = self.now();
        let mut report = AlertReport::default();
        let mut still = conditions::Still::new(DIGEST_LISTED);

        // The environments' and the daemon's own conditions first: never counted among
        // the many, always alerted by name.
        let paused = self.engine.scheduler_state().borrow().paused.clone();
        let open = store.open_daemon_conditions().await?;
        let good: HashMap<_, _> = store
            .last_good_refresh()
            .await?
            .into_iter()
            .filter_map(|(e, at)| Some((e, at?)))
            .collect();
        let mut current = conditions::of_environments(&paused, now, &open, &good);
        let blocked = store.audit_blocked().await?;
        if let Some(c) = conditions::audit_blocked(blocked.as_ref(), now, &open) {
            current.insert(c.key.clone(), c);
        }
        current.extend(conditions::of_incidents(&store.open_incidents().await?));
        let (opened, closed) = conditions::diff(&current, &open);
        if !opened.is_empty() || !closed.is_empty() {
            let mut tx = store.begin().await?;
            let mut unlimited = usize::MAX;
            write_changes(&mut tx, &opened, &closed, webhooks, now, &mut unlimited).await?;
            // An incident's end is told, once, as its opening was.
            for key in &closed {
                let Some(id) = conditions::incident_of_key(key) else {
                    continue;
                };
                if let Some(incident) = store.incident(id).await? {
                    let (text, body) = message::resolved(key, &incident, now);
                    enqueue(&mut tx, webhooks, key, "resolved", &text, &body, now).await?;
                }
            }
            self.engine.commit_audited(tx, &[]).await?;
        }
        report.opened += opened.len();
        report.closed += closed.len();
        still.extend(current.into_values());

        let mut budget = ALERT_BURST;
        // Pages of 500: each page's changes are one transaction, and a console's opening
        // (an audit write) waits for SQLite's write lock behind it; 2,000 conditions held
        // it long enough to double a first frame at a million connections.
        let mut walk = self.forecast_walk_by(cfg.warn_days, ALERT_PAGE);
        loop {
            let started = std::time::Instant::now();
            let Some(page) = self.forecast_next(&mut walk).await? else {
                break;
            };
            let current = conditions::of_connections(&page.items);
            let open = store
                .open_connection_conditions(page.after, page.through)
                .await?;
            let (opened, closed) = conditions::diff(&current, &open);
            if !opened.is_empty() || !closed.is_empty() {
                let mut tx = store.begin().await?;
                write_changes(&mut tx, &opened, &closed, webhooks, now, &mut budget).await?;
                self.engine.commit_audited(tx, &[]).await?;
            }
            report.opened += opened.len();
            report.closed += closed.len();
            still.extend(current.into_values());
            // A background pass: a quarter of the time at most, so that consoles and
            // refreshes beside it do not wait on it (a million connections' first pass
            // writes as many conditions). A quarter, not a half: on PostgreSQL the server
            // works on each page as well, on the same cores (at a half, a sort change at a
            // million took 414 ms beside it, keystrokes 133 ms at p99).
            tokio::time::sleep(started.elapsed() * 3).await;
        }

        // The count of what was opened unnamed (this pass's, or a crashed pass's), and
        // the digest when it is due; no write at all when neither is (the pass runs every
        // few seconds, beside the refreshes).
        let digest = match store.alert_mark(DIGEST_MARK).await? {
            None => Some(false),
            Some(last) => {
                (now - last >= ChronoDuration::from_std(cfg.digest_interval)?).then_some(true)
            }
        };
        if digest.is_none() && !store.alert_overflow_waiting().await? {
            return Ok(report);
        }
        let mut tx = store.begin().await?;
        let overflow: BTreeMap<String, u64> = tx
            .take_alert_overflow()
            .await?
            .into_iter()
            .map(|(risk, n)| (risk, u64::try_from(n).unwrap_or(0)))
            .collect();
        if !overflow.is_empty() {
            let (text, body) = message::opened_many(&overflow, now);
            enqueue(
                &mut tx,
                webhooks,
                OPENED_MANY_KEY,
                "opened_many",
                &text,
                &body,
                now,
            )
            .await?;
        }
        match digest {
            // The first digest comes one interval after alerts first ran.
            Some(false) => tx.set_alert_mark(DIGEST_MARK, now).await?,
            Some(true) => {
                let (listed, by_risk, total) = still.listed();
                if total > 0 {
                    let (text, body) = message::digest(&listed, &by_risk, total, now);
                    enqueue(&mut tx, webhooks, DIGEST_KEY, "digest", &text, &body, now).await?;
                    report.digests += 1;
                }
                tx.set_alert_mark(DIGEST_MARK, now).await?;
            }
            None => {}
        }
        self.engine.commit_audited(tx, &[]).await?;
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

/// Opens `opened` (a message each while `budget` lasts, then counted per risk for the
/// pass's one message about the rest) and closes `closed`, in `tx`.
async fn write_changes(
    tx: &mut Tx,
    opened: &[&Condition],
    closed: &[String],
    webhooks: &[String],
    now: DateTime<Utc>,
    budget: &mut usize,
) -> anyhow::Result<()> {
    let mut unnamed: BTreeMap<&str, i64> = BTreeMap::new();
    for c in opened {
        tx.open_alert_condition(&AlertCondition {
            key: c.key.clone(),
            risk: c.risk.clone(),
            connection_id: c.connection.as_ref().map(|x| x.id),
            environment: c.environment.map(|e| e.to_string()),
            opened_at: now,
            summary: c.reason.clone(),
        })
        .await?;
        if *budget > 0 {
            *budget -= 1;
            let (text, body) = message::opened(c, now);
            enqueue(tx, webhooks, &c.key, "opened", &text, &body, now).await?;
        } else {
            *unnamed.entry(&c.risk).or_default() += 1;
        }
    }
    for (risk, n) in unnamed {
        tx.add_alert_overflow(risk, n).await?;
    }
    for key in closed {
        tx.close_alert_condition(key).await?;
    }
    Ok(())
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
