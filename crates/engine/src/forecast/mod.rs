//! The forecast: which connections will die within N days if nothing changes, when, why,
//! and what would save each. The rules are plain functions over a connection's record
//! (and the few facts kept beside it), shared by `qbo-console forecast`, the console's
//! forecast view and the alerts, so the three can never disagree.
//!
//! Adding a rule is adding one function to `RULES` (and, if it needs a fact the record
//! lacks, a field to `SyncFacts`): the "reconnect link sent and not used" rules
//! (`link_unused`, `link_expired`) arrived that way with the links table.

mod rules;

use chrono::{DateTime, Utc};
use qbo_core::domain::PausedEnvironment;
use qbo_store::{ConnectionRecord, SyncFacts};
use std::collections::HashMap;

pub use qbo_core::reports::{Cause, CauseSummary, Forecast, ForecastFrame, ForecastItem, Risk};
pub use rules::RULES;

/// One connection, as the rules see it.
pub struct Subject<'a> {
    pub record: &'a ConnectionRecord,
    pub facts: &'a SyncFacts,
}

/// What the rules know beyond the connection.
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    /// Environments the scheduler has paused (its state; an embedded service has none).
    pub paused: &'a [PausedEnvironment],
    pub no_sync_days: u32,
    /// `[forecast] link_unused_days`.
    pub link_unused_days: u32,
}

/// What one rule found: when the connection dies (or died) by it, why, and what saves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub risk: Risk,
    /// The group it is listed under (what it shares with others, and their one remedy).
    pub cause: Cause,
    pub date: DateTime<Utc>,
    pub reason: String,
    pub action: String,
}

pub type Rule = fn(&Subject<'_>, &Context<'_>) -> Option<Finding>;

/// Every risk the rules find for one connection.
pub fn assess(s: &Subject<'_>, ctx: &Context<'_>) -> Vec<ForecastItem> {
    let r = s.record;
    RULES
        .iter()
        .filter_map(|rule| rule(s, ctx))
        .map(|f| ForecastItem {
            connection_id: r.id,
            tenant: r.tenant.clone(),
            realm_id: r.realm_id.clone(),
            environment: r.environment,
            status: r.status,
            date: f.date,
            risk: f.risk,
            cause: f.cause,
            reason: f.reason,
            action: f.action,
            incident: None,
        })
        .collect()
}

/// Every risk whose date falls within `days` of now (or has passed), sorted by date,
/// then gravity, then tenant.
pub fn forecast(
    records: &[ConnectionRecord],
    facts: &[SyncFacts],
    ctx: &Context<'_>,
    days: u32,
) -> Vec<ForecastItem> {
    let by_id: HashMap<i64, &SyncFacts> = facts.iter().map(|f| (f.id, f)).collect();
    let none = SyncFacts::default();
    let horizon = ctx.now + chrono::Duration::days(i64::from(days));
    let mut items: Vec<ForecastItem> = records
        .iter()
        .flat_map(|r| {
            let facts = by_id.get(&r.id).copied().unwrap_or(&none);
            assess(&Subject { record: r, facts }, ctx)
        })
        .filter(|i| i.date <= horizon)
        .collect();
    sort(&mut items);
    items
}

/// The forecast's order: soonest first, graver first on the same date.
pub fn sort(items: &mut [ForecastItem]) {
    items.sort_by(order);
}

/// The forecast's order, as a comparison.
pub fn order(a: &ForecastItem, b: &ForecastItem) -> std::cmp::Ordering {
    a.date
        .cmp(&b.date)
        .then(a.risk.cmp(&b.risk))
        .then_with(|| a.tenant.cmp(&b.tenant))
        .then(a.connection_id.cmp(&b.connection_id))
}

#[cfg(test)]
mod tests;
