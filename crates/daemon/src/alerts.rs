//! Alerts: when a connection enters `needs_reconnect`, when the forecast puts its end
//! within `[alerts] warn_days`, when Intuit rejects an environment's client credentials,
//! and when rows stored past the audit chain's head block the audit log, a JSON message is POSTed to every `[[alerts.webhook]]`: once per change
//! of state, retried with backoff, with a digest of what is still open every
//! `[alerts] digest_interval`.
//!
//! The conditions alerted and the messages to deliver are in the database, so a restart
//! neither alerts again nor loses a delivery; every delivery attempt is audited, except the
//! alert that the audit log itself is blocked (it cannot be), which is logged instead.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use qbo_core::config::AlertsConfig;
use qbo_core::identity::Actor;
use qbo_service::alerts::{AlertReport, AUDIT_BLOCKED_KEY};
use qbo_service::{Action, AlertDelivery, AuditEvent, Outcome, Service};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Retries never wait longer than this between attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(3600);
/// Conditions are evaluated every this many delivery passes (5 s each): once a minute.
const EVALUATE_EVERY: u64 = 12;
/// Deliveries attempted per pass.
const DELIVERY_BATCH: i64 = 100;

pub struct Alerter {
    service: Service,
    cfg: AlertsConfig,
    /// (name, URL): the URLs read once, at start.
    webhooks: Vec<(String, String)>,
    http: reqwest::Client,
    actor: Actor,
}

impl Alerter {
    /// Reads every webhook's URL now: a missing secret file stops the daemon at start,
    /// not at the first alert.
    pub fn new(service: Service, cfg: &AlertsConfig, actor: Actor) -> anyhow::Result<Alerter> {
        let webhooks = cfg
            .webhooks
            .iter()
            .map(|w| Ok((w.name.clone(), w.resolve()?)))
            .collect::<Result<Vec<_>, qbo_core::config::ConfigError>>()?;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            // A redirect would send the alert somewhere the configuration does not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Alerter {
            service,
            cfg: cfg.clone(),
            webhooks,
            http,
            actor,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.service.now()
    }

    /// Evaluates the conditions, then delivers what is due.
    pub async fn run_once(&self) -> anyhow::Result<AlertReport> {
        let mut report = self.evaluate().await?;
        self.deliver(&mut report).await?;
        Ok(report)
    }

    /// Opens (and queues an alert for) each new condition, closes those gone, and queues
    /// the digest when it is due.
    pub async fn evaluate(&self) -> anyhow::Result<AlertReport> {
        let names: Vec<String> = self.webhooks.iter().map(|(n, _)| n.clone()).collect();
        self.service.evaluate_alerts(&self.cfg, &names).await
    }

    /// POSTs every delivery that is due, recording and auditing each attempt.
    pub async fn deliver(&self, report: &mut AlertReport) -> anyhow::Result<()> {
        let (due, blocked) = self.service.due_alert_deliveries(DELIVERY_BATCH).await?;
        // A blocked audit log cannot record a delivery: only the alert about it goes out
        // meanwhile (unrecorded, logged), the rest wait for the repair.
        for d in due {
            if blocked && d.condition_key != AUDIT_BLOCKED_KEY {
                continue;
            }
            let (result, last) = match self.webhooks.iter().find(|(n, _)| *n == d.webhook) {
                Some((_, url)) => (self.post(url, &d.body).await, false),
                // Retrying cannot help: the message has nowhere to go.
                None => (
                    Err(format!(
                        "webhook {:?} is no longer configured in [[alerts.webhook]]",
                        d.webhook
                    )),
                    true,
                ),
            };
            self.record_attempt(&d, result, last, blocked, report)
                .await?;
        }
        Ok(())
    }

    async fn post(&self, url: &str, body: &str) -> Result<(), String> {
        let r = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            // Without the URL: a Slack webhook URL is a credential.
            .map_err(|e| format!("could not deliver: {}", e.without_url()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the receiver answered HTTP {}",
                r.status().as_u16()
            ))
        }
    }

    async fn record_attempt(
        &self,
        d: &AlertDelivery,
        result: Result<(), String>,
        last: bool,
        unaudited: bool,
        report: &mut AlertReport,
    ) -> anyhow::Result<()> {
        let now = self.now();
        let attempt = d.attempts + 1;
        let what = format!(
            "{} alert for {} to webhook {:?}, attempt {attempt}",
            d.event, d.condition_key, d.webhook
        );
        let (state, next, error, ev) = match &result {
            Ok(()) => {
                report.delivered += 1;
                let mut ev = AuditEvent::new(now, &self.actor, Action::AlertDelivered, Outcome::Ok);
                ev.reason = Some(format!("delivered {what}"));
                ("delivered", None, None, ev)
            }
            Err(e) => {
                let mut ev = AuditEvent::new(
                    now,
                    &self.actor,
                    Action::AlertDeliveryFailed,
                    Outcome::Failed,
                );
                if last || attempt >= i64::from(self.cfg.max_attempts) {
                    report.given_up += 1;
                    ev.reason = Some(if last {
                        format!("{what} failed: {e}; given up")
                    } else {
                        format!(
                            "{what} failed: {e}; given up after [alerts] max_attempts ({})",
                            self.cfg.max_attempts
                        )
                    });
                    ("failed", None, Some(e.as_str()), ev)
                } else {
                    report.retrying += 1;
                    let wait = retry_wait(self.cfg.retry_base, attempt);
                    let next = now + ChronoDuration::from_std(wait)?;
                    ev.reason = Some(format!(
                        "{what} failed: {e}; retrying in {}",
                        qbo_core::present::duration(wait)
                    ));
                    ("pending", Some(next), Some(e.as_str()), ev)
                }
            }
        };
        if unaudited {
            tracing::warn!(
                delivery = %qbo_core::text::Safe(ev.reason.as_deref().unwrap_or("")),
                "alert delivery not recorded in the audit log: the log is blocked (this alert is about that)"
            );
        }
        self.service
            .record_alert_attempt(d, state, next, error, (!unaudited).then_some(ev), now)
            .await
    }

    /// Runs until `stop` is raised: deliveries every few seconds, the conditions (a read
    /// of every live connection) every `EVALUATE_EVERY` of those.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut ticker = qbo_service::tasks::Ticks::new(Duration::from_secs(5), stop);
        let mut ticks: u64 = 0;
        let mut stopping = ticker.stop().clone();
        while ticker.next().await {
            let work = async {
                if ticks.is_multiple_of(EVALUATE_EVERY) {
                    self.run_once().await
                } else {
                    let mut r = AlertReport::default();
                    self.deliver(&mut r).await.map(|()| r)
                }
            };
            // A pass over a million connections takes a minute: a stop ends it between
            // statements rather than holding the shutdown for its grace. Each page's changes
            // commit whole or not at all, so the next start takes up where this one stopped.
            let pass = tokio::select! {
                r = work => r,
                _ = stopping.wait_for(|s| *s) => return,
            };
            ticks += 1;
            match pass {
                Ok(r) if r != AlertReport::default() => tracing::info!(?r, "alerts"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %qbo_core::text::Safe(&format!("{e:#}")), "alerts pass failed; retrying")
                }
            }
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): the base, doubled each time, at
/// most an hour.
fn retry_wait(base: Duration, attempt: i64) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(20);
    base.saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RETRY_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_an_hour() {
        let base = Duration::from_secs(30);
        assert_eq!(retry_wait(base, 1), Duration::from_secs(30));
        assert_eq!(retry_wait(base, 2), Duration::from_secs(60));
        assert_eq!(retry_wait(base, 4), Duration::from_secs(240));
        assert_eq!(retry_wait(base, 50), MAX_RETRY_WAIT);
    }
}
