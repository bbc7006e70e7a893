//! What the daemon's `/healthz` and `/metrics` report: read from the database each time,
//! so an answer always matches it; the connection counts from the roster, which has read
//! every change committed before the scrape (see `roster`).

use crate::Service;
use qbo_core::domain::{Condition, Environment};
use qbo_engine::metrics::StatusLabels;

/// Whether the daemon can do its work: each part `Ok`, or why not (naming the repair).
pub struct HealthReport {
    pub database: Result<(), Unhealthy>,
    pub audit_log: Result<(), Unhealthy>,
}

/// Why one part of the daemon cannot do its work, phrased for `/healthz`'s reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unhealthy(pub String);

impl Service {
    /// Unhealthy when the database cannot be read, when a write was refused (a full disk
    /// still answers reads, so a read alone would say ok) and no write has committed since,
    /// or when rows stored past the audit chain's head block the audit log. A failure older
    /// than the write health's hold is put to a probe write, so an idle daemon turns healthy
    /// again once there is room.
    pub async fn health(&self) -> HealthReport {
        let store = self.store();
        let health = store.write_health();
        let database = match store.count_by_status().await {
            Err(e) => Err(Unhealthy(format!("{e:#}"))),
            Ok(_) => {
                if health.due_for_probe() {
                    // A failed probe records itself; its error is then the one reported.
                    let _ = store.probe_write().await;
                }
                health.failing().map_or(Ok(()), |why| Err(Unhealthy(why)))
            }
        };
        // Rows past the audit chain's head block every audited action and stop the
        // scheduler: not healthy, whatever the database says.
        let audit_log = match store.audit_blocked().await {
            Ok(None) => Ok(()),
            Ok(Some(b)) => Err(Unhealthy(b.to_string())),
            Err(e) => Err(Unhealthy(format!(
                "cannot read the audit chain's head: {e:#}"
            ))),
        };
        HealthReport {
            database,
            audit_log,
        }
    }

    /// The OpenMetrics text, its gauges describing the database set from fresh queries.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let engine = &self.engine;
        let m = &engine.metrics;
        let (counts, nearest_lapse) = self
            .roster_gauges()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for env in Environment::ALL {
            // `status` is the condition: `failing` counted apart from `active`, as the
            // console's header and `status:failing` count them.
            for status in Condition::ALL {
                let n = counts
                    .iter()
                    .find(|(e, s, _)| *e == env && *s == status)
                    .map_or(0, |(_, _, n)| *n as i64);
                m.connections
                    .get_or_create(&StatusLabels {
                        environment: env.to_string(),
                        status: status.to_string(),
                    })
                    .set(n);
            }
        }
        let now = engine.clock.now();
        let lag = match engine.store.oldest_overdue(now).await? {
            Some(t) => (now - t).num_milliseconds().max(0) as f64 / 1000.0,
            None => 0.0,
        };
        m.scheduler_lag_seconds.set(lag);
        let lapse = nearest_lapse.map(|t| (t - now).num_milliseconds() as f64 / 1000.0);
        m.nearest_lapse_seconds.set(lapse.unwrap_or(f64::NAN));
        Ok(m.encode())
    }
}
