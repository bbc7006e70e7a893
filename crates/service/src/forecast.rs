//! `forecast`: the connections that will die within N days if nothing changes, from the
//! shared rules (`qbo_engine::forecast`), with the last alerts sent about them.

use super::{Result, Service, ServiceError};
use qbo_core::identity::{Actor, Permission};
use qbo_engine::forecast::{self, Context, Forecast};
use qbo_store::audit::Action;

/// Connections read per page by the forecast.
const FORECAST_PAGE: i64 = 2000;

/// How many of the latest alert deliveries a forecast carries (the console shows them).
pub const RECENT_ALERTS: i64 = 10;

/// The longest horizon asked for: ten years covers Intuit's 5-year limit twice over.
pub const MAX_FORECAST_DAYS: u32 = 3650;

impl Service {
    /// The forecast over `days` (else `[forecast] days`). Everyone who may see the
    /// connections may see it; it is recorded like a list.
    pub async fn forecast(&self, caller: &Actor, days: Option<u32>) -> Result<Forecast> {
        self.authorize(caller, Permission::ViewConnections, Action::Forecast)
            .await?;
        let days = days.unwrap_or(self.forecast_cfg.days);
        if days == 0 || days > MAX_FORECAST_DAYS {
            return Err(ServiceError::Input(format!(
                "--days {days}: expected 1 to {MAX_FORECAST_DAYS}"
            )));
        }
        let report = self.compute_forecast(days).await?;
        let shown = format!(
            "forecast over {days} days: {} connections at risk",
            report.items.len()
        );
        self.record_view(caller, Action::Forecast, None, shown)
            .await?;
        Ok(report)
    }

    /// The forecast itself, unrecorded: what the alerts evaluate too.
    pub async fn compute_forecast(&self, days: u32) -> anyhow::Result<Forecast> {
        let engine = &self.engine;
        let now = engine.clock.now();
        let paused = engine.scheduler_state().borrow().paused.clone();
        let ctx = Context {
            now,
            paused: &paused,
            no_sync_days: self.forecast_cfg.no_sync_days,
            link_unused_days: self.forecast_cfg.link_unused_days,
        };
        // A page at a time: only the risks found are kept, not every connection's record.
        let mut items = Vec::new();
        let mut after = 0;
        loop {
            let records = engine
                .store
                .forecast_connections(after, FORECAST_PAGE)
                .await?;
            let (Some(first), Some(last)) = (records.first(), records.last()) else {
                break;
            };
            let facts = engine.store.sync_facts(first.id, last.id).await?;
            items.extend(forecast::forecast(&records, &facts, &ctx, days));
            after = last.id;
            if (records.len() as i64) < FORECAST_PAGE {
                break;
            }
        }
        forecast::sort(&mut items);
        let alerts = engine.store.recent_alert_deliveries(RECENT_ALERTS).await?;
        Ok(Forecast {
            generated_at: now,
            days,
            items,
            alerts,
        })
    }
}
