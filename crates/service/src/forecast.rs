//! `forecast`: the connections that will die within N days if nothing changes, from the
//! shared rules (`qbo_engine::forecast`), with the last alerts sent about them.

use super::{Result, Service, ServiceError};
use crate::soonest::Soonest;
use chrono::{DateTime, Utc};
use qbo_core::domain::PausedEnvironment;
use qbo_core::identity::{Actor, Permission};
use qbo_engine::forecast::{
    self, Cause, CauseSummary, Context, Forecast, ForecastFrame, ForecastItem,
};
use qbo_store::audit::Action;
use std::collections::BTreeMap;

/// Connections read per page by the forecast.
const FORECAST_PAGE: i64 = 2000;

/// How many of the latest alert deliveries a forecast carries (the console shows them).
pub const RECENT_ALERTS: i64 = 10;

/// The longest horizon asked for: ten years covers Intuit's 5-year limit twice over.
pub const MAX_FORECAST_DAYS: u32 = 3650;

impl Service {
    /// The forecast over `days` (else `[forecast] days`): the `limit` soonest items (all
    /// without one), with the count of every item by risk. Everyone who may see the
    /// connections may see it; it is recorded like a list.
    pub async fn forecast(
        &self,
        caller: &Actor,
        days: Option<u32>,
        limit: Option<u32>,
    ) -> Result<Forecast> {
        let days = self.forecast_days(caller, days).await?;
        let keep = limit.map_or(usize::MAX, |n| n as usize);
        let report = self.compute_forecast(days, keep).await?;
        let shown = format!(
            "forecast over {days} days: {} risk{} found, {} shown",
            report.count,
            if report.count == 1 { "" } else { "s" },
            report.items.len()
        );
        self.record_view(caller, Action::Forecast, None, shown)
            .await?;
        Ok(report)
    }

    /// Authorizes a forecast and settles its horizon.
    async fn forecast_days(&self, caller: &Actor, days: Option<u32>) -> Result<u32> {
        self.authorize(caller, Permission::ViewConnections, Action::Forecast)
            .await?;
        let days = days.unwrap_or(self.forecast_cfg.days);
        if days == 0 || days > MAX_FORECAST_DAYS {
            return Err(ServiceError::Input(format!(
                "--days {days}: expected 1 to {MAX_FORECAST_DAYS}"
            )));
        }
        Ok(days)
    }

    /// The forecast itself, unrecorded: the `keep` soonest items, sorted, and the count of
    /// all. Only those kept are held, whatever the number of connections.
    pub async fn compute_forecast(&self, days: u32, keep: usize) -> anyhow::Result<Forecast> {
        let mut walk = self.forecast_walk(days);
        let mut soonest = Soonest::new(keep, forecast::order);
        while let Some(page) = self.forecast_next(&mut walk).await? {
            page.items.into_iter().for_each(|i| soonest.push(i));
        }
        let alerts = self
            .engine
            .store
            .recent_alert_deliveries(RECENT_ALERTS)
            .await?;
        Ok(Forecast {
            generated_at: walk.now,
            days,
            items: soonest.into_sorted(),
            count: walk.count,
            by_risk: walk.by_risk,
            causes: CauseSummary::of(&walk.by_cause),
            alerts,
        })
    }

    /// Starts a streamed forecast (`forecast --json`): authorized and on the record before
    /// its first item leaves, like a streamed listing.
    pub async fn forecast_stream_begin(
        &self,
        caller: &Actor,
        days: Option<u32>,
    ) -> Result<ForecastWalk> {
        let days = self.forecast_days(caller, days).await?;
        let shown = format!("forecast over {days} days, streamed in connection order");
        self.record_view(caller, Action::Forecast, None, shown)
            .await?;
        Ok(self.forecast_walk(days))
    }

    /// The next frame of a streamed forecast (the head first), or `None` after the end.
    pub async fn forecast_stream_next(
        &self,
        w: &mut ForecastWalk,
    ) -> Result<Option<ForecastFrame>> {
        if !w.headed {
            w.headed = true;
            return Ok(Some(ForecastFrame::Head {
                generated_at: w.now,
                days: w.days,
            }));
        }
        while let Some(mut page) = self.forecast_next(w).await? {
            if !page.items.is_empty() {
                // Connection order across the whole stream, a connection's risks by date.
                page.items.sort_by(|a, b| {
                    a.connection_id
                        .cmp(&b.connection_id)
                        .then_with(|| forecast::order(a, b))
                });
                return Ok(Some(ForecastFrame::Items { items: page.items }));
            }
        }
        if w.ended {
            return Ok(None);
        }
        w.ended = true;
        Ok(Some(ForecastFrame::End {
            count: w.count,
            by_risk: std::mem::take(&mut w.by_risk),
            causes: CauseSummary::of(&w.by_cause),
            alerts: self
                .engine
                .store
                .recent_alert_deliveries(RECENT_ALERTS)
                .await?,
        }))
    }

    /// A walk over the forecast a page of connections at a time (`forecast_next`).
    pub(crate) fn forecast_walk(&self, days: u32) -> ForecastWalk {
        self.forecast_walk_by(days, FORECAST_PAGE)
    }

    /// As [`Service::forecast_walk`], `page` connections at a time.
    pub(crate) fn forecast_walk_by(&self, days: u32, page: i64) -> ForecastWalk {
        ForecastWalk {
            page,
            days,
            now: self.engine.clock.now(),
            paused: self.engine.scheduler_state().borrow().paused.clone(),
            after: 0,
            done: false,
            count: 0,
            by_risk: BTreeMap::new(),
            by_cause: BTreeMap::new(),
            headed: false,
            ended: false,
        }
    }

    /// The next page of the forecast, in connection id order, or `None` once it is done.
    /// The pages cover every id between them: the last one reaches past the last id, so
    /// a reader comparing them with what it kept (the alerts) also sees what was deleted.
    pub(crate) async fn forecast_next(
        &self,
        w: &mut ForecastWalk,
    ) -> anyhow::Result<Option<ForecastPage>> {
        if w.done {
            return Ok(None);
        }
        let store = &self.engine.store;
        let records = store.forecast_connections(w.after, w.page).await?;
        let after = w.after;
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            w.done = true;
            return Ok(Some(ForecastPage {
                after,
                through: None,
                items: Vec::new(),
            }));
        };
        let facts = store.sync_facts(first.id, last.id).await?;
        let ctx = Context {
            now: w.now,
            paused: &w.paused,
            no_sync_days: self.forecast_cfg.no_sync_days,
            link_unused_days: self.forecast_cfg.link_unused_days,
        };
        let mut items = forecast::forecast(&records, &facts, &ctx, w.days);
        self.tie_to_incidents(&mut items, &records).await?;
        w.count += items.len() as u64;
        for i in &items {
            count(&mut w.by_risk, i.risk.as_str());
            *w.by_cause.entry(i.cause).or_default() += 1;
        }
        w.after = last.id;
        w.done = (records.len() as i64) < w.page;
        Ok(Some(ForecastPage {
            after,
            through: (!w.done).then_some(last.id),
            items,
        }))
    }
}

impl Service {
    /// Marks the failing connections whose failures are an Intuit incident's: members of
    /// it that have not failed on their own since it ended (a connection still failing
    /// after the incident is its own problem again, and alerted as such).
    async fn tie_to_incidents(
        &self,
        items: &mut [ForecastItem],
        records: &[qbo_store::ConnectionRecord],
    ) -> anyhow::Result<()> {
        let failing: Vec<i64> = items
            .iter()
            .filter(|i| i.risk == qbo_engine::forecast::Risk::RefreshFailing)
            .map(|i| i.connection_id)
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        let of = self
            .engine
            .store
            .incidents_of(&failing, qbo_core::incident::Endpoint::Token)
            .await?;
        for item in items
            .iter_mut()
            .filter(|i| i.risk == qbo_engine::forecast::Risk::RefreshFailing)
        {
            let Some((id, ended)) = of.get(&item.connection_id) else {
                continue;
            };
            let last = records
                .iter()
                .find(|r| r.id == item.connection_id)
                .and_then(|r| r.last_refresh_at);
            if qbo_core::incident::still_holds(*ended, last) {
                item.incident = Some(*id);
                item.reason = format!(
                    "part of Intuit incident {id} (`qbo-console incidents show {id}`): {}",
                    item.reason
                );
            }
        }
        Ok(())
    }
}

/// One more of `risk`: a name is allocated once per risk, not once per item (a million
/// items are counted per pass).
pub(crate) fn count(by_risk: &mut BTreeMap<String, u64>, risk: &str) {
    match by_risk.get_mut(risk) {
        Some(n) => *n += 1,
        None => {
            by_risk.insert(risk.to_string(), 1);
        }
    }
}

/// Where a walk over the forecast is; the time and the scheduler's pauses are read once,
/// so every page is judged at the same moment.
pub struct ForecastWalk {
    /// Connections read per page.
    page: i64,
    days: u32,
    now: DateTime<Utc>,
    paused: Vec<PausedEnvironment>,
    after: i64,
    done: bool,
    /// Items found so far, and of each risk.
    count: u64,
    by_risk: BTreeMap<String, u64>,
    by_cause: BTreeMap<Cause, u64>,
    /// A stream's head and end were sent.
    headed: bool,
    ended: bool,
}

/// The risks of the connections with ids in `after < id <= through` (`None`: to the end).
pub(crate) struct ForecastPage {
    pub after: i64,
    pub through: Option<i64>,
    pub items: Vec<ForecastItem>,
}
