//! The table's order. The default is urgency, what dies soonest first: connections that
//! need the customer, then refreshes that keep failing, then the nearest of the two token
//! clocks (the 100-day window and the 5-year limit), then the access token; connections
//! with nothing left to lose (revoking, pending, revoked) last.
//!
//! Every key compares absolute times, not "days from now", so an order stays right while
//! the clock moves and the table is re-sorted only when rows or the key change.

use crate::facts::Facts;
use crate::{Condition, Status};
use chrono::{DateTime, Utc};
use qbo_core::domain::InvalidValue;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Urgency,
    Tenant,
    Realm,
    Env,
    Status,
    /// Access token expiry.
    Access,
    /// Days used of the refresh window (fewest first).
    Age,
    /// Days left of the refresh window (fewest first).
    Left,
    /// Days to the 5-year limit.
    Hard,
    LastRefresh,
    LastSync,
    Actor,
}

impl SortKey {
    pub const ALL: [SortKey; 12] = [
        SortKey::Urgency,
        SortKey::Tenant,
        SortKey::Realm,
        SortKey::Env,
        SortKey::Status,
        SortKey::Access,
        SortKey::Age,
        SortKey::Left,
        SortKey::Hard,
        SortKey::LastRefresh,
        SortKey::LastSync,
        SortKey::Actor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Urgency => "urgency",
            SortKey::Tenant => "tenant",
            SortKey::Realm => "realm",
            SortKey::Env => "env",
            SortKey::Status => "status",
            SortKey::Access => "access",
            SortKey::Age => "age",
            SortKey::Left => "left",
            SortKey::Hard => "hard",
            SortKey::LastRefresh => "refresh",
            SortKey::LastSync => "sync",
            SortKey::Actor => "actor",
        }
    }

    pub fn parse(s: &str) -> Result<SortKey, InvalidValue> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "window" => "age",
            "last-refresh" | "last_refresh" => "refresh",
            "last-sync" | "last_sync" => "sync",
            "environment" => "env",
            other => other,
        };
        SortKey::ALL
            .into_iter()
            .find(|k| k.name() == alias)
            .ok_or_else(|| {
                InvalidValue(format!(
                    "unknown sort column {s:?}: expected one of {}",
                    SortKey::ALL.map(SortKey::name).join(", ")
                ))
            })
    }

    /// The next column, for the key that cycles through them.
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }
}

/// A column and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sort {
    pub key: SortKey,
    #[serde(default)]
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Urgency,
            descending: false,
        }
    }
}

impl Sort {
    /// Rows without the figure sort last either way; ties fall back to urgency, then id,
    /// so the order is total and a re-sort never shuffles equal rows.
    pub fn compare<C: Facts + ?Sized>(self, a: &C, b: &C) -> Ordering {
        let primary = match self.key {
            SortKey::Urgency => Known(Ordering::Equal),
            SortKey::Tenant => Known(text(a.tenant(), b.tenant())),
            // Realm ids are digits: the shorter is the smaller number.
            SortKey::Realm => Known(
                a.realm_id()
                    .len()
                    .cmp(&b.realm_id().len())
                    .then_with(|| a.realm_id().cmp(b.realm_id())),
            ),
            SortKey::Env => Known(a.environment().cmp(&b.environment())),
            SortKey::Status => Known(status_rank(a.condition()).cmp(&status_rank(b.condition()))),
            SortKey::Access => opt(a.access_expires_at(), b.access_expires_at()),
            // More days used is a nearer lapse: fewest used first is latest expiry first.
            SortKey::Age => opt(b.refresh_expires_at(), a.refresh_expires_at()).swap_missing(),
            SortKey::Left => opt(a.refresh_expires_at(), b.refresh_expires_at()),
            SortKey::Hard => opt(a.hard_expires_at(), b.hard_expires_at()),
            SortKey::LastRefresh => opt(a.last_refresh_at(), b.last_refresh_at()),
            SortKey::LastSync => opt(a.last_sync_at(), b.last_sync_at()),
            SortKey::Actor => match (a.last_actor(), b.last_actor()) {
                (Some(x), Some(y)) => Known(text(x, y)),
                (Some(_), None) => Missing(Ordering::Less),
                (None, Some(_)) => Missing(Ordering::Greater),
                (None, None) => Known(Ordering::Equal),
            },
        }
        .resolve(self.descending);
        let rest = || {
            let u = urgency(a, b);
            if self.key == SortKey::Urgency && self.descending {
                u.reverse()
            } else {
                u
            }
        };
        primary.then_with(rest).then_with(|| a.id().cmp(&b.id()))
    }
}

/// A comparison that knows whether it involved a missing figure (which stays last).
enum Cmp {
    Known(Ordering),
    Missing(Ordering),
}
use Cmp::{Known, Missing};

impl Cmp {
    fn resolve(self, descending: bool) -> Ordering {
        match self {
            Known(o) if descending => o.reverse(),
            Known(o) | Missing(o) => o,
        }
    }

    /// For a comparison made with its arguments swapped: the missing side is still last.
    fn swap_missing(self) -> Cmp {
        match self {
            Missing(o) => Missing(o.reverse()),
            known => known,
        }
    }
}

fn opt<T: Ord>(a: Option<T>, b: Option<T>) -> Cmp {
    match (a, b) {
        (Some(x), Some(y)) => Known(x.cmp(&y)),
        (Some(_), None) => Missing(Ordering::Less),
        (None, Some(_)) => Missing(Ordering::Greater),
        (None, None) => Known(Ordering::Equal),
    }
}

/// Case-insensitive for ASCII, without allocating: sorting 100,000 tenants by name should
/// not make 100,000 strings.
pub(crate) fn text(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Severity of a status alone: the order of the urgency tiers it belongs to.
/// The status column's order: what it shows (the condition), the worst first.
pub(crate) fn status_rank(c: Condition) -> u8 {
    match c {
        Condition::NeedsReconnect => 0,
        Condition::Failing => 1,
        Condition::Expiring => 2,
        Condition::Active => 3,
        Condition::Revoking => 4,
        Condition::Pending => 5,
        Condition::Revoked => 6,
    }
}

fn tier(c: &(impl Facts + ?Sized)) -> u8 {
    match c.status() {
        Status::NeedsReconnect => 0,
        Status::Active | Status::Expiring if c.consecutive_failures() > 0 => 1,
        Status::Active | Status::Expiring => 2,
        Status::Revoking => 3,
        Status::Pending => 4,
        Status::Revoked => 5,
    }
}

/// The nearer of the refresh-window lapse and the 5-year limit.
fn deadline(c: &(impl Facts + ?Sized)) -> Option<DateTime<Utc>> {
    match (c.refresh_expires_at(), c.hard_expires_at()) {
        (Some(r), Some(h)) => Some(r.min(h)),
        (r, h) => r.or(h),
    }
}

/// What dies soonest first.
pub fn urgency<C: Facts + ?Sized>(a: &C, b: &C) -> Ordering {
    tier(a)
        .cmp(&tier(b))
        .then_with(|| opt(deadline(a), deadline(b)).resolve(false))
        .then_with(|| opt(a.access_expires_at(), b.access_expires_at()).resolve(false))
        .then_with(|| text(a.tenant(), b.tenant()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{conn, every_state};

    fn order(sort: Sort) -> Vec<String> {
        let mut rows = every_state();
        rows.sort_by(|a, b| sort.compare(a, b));
        rows.into_iter().map(|c| c.tenant).collect()
    }

    #[test]
    fn what_dies_soonest_comes_first() {
        assert_eq!(
            order(Sort::default()),
            [
                "globex",     // needs reconnect
                "initech",    // refresh failing
                "stark",      // 15 days left of the refresh window
                "wayne",      // 20 days to the 5-year limit
                "acme-corp",  // refreshed 19 hours ago
                "umbrella",   // refreshed 56 minutes ago
                "cyberdyne",  // revoking
                "pied-piper", // pending
                "hooli",      // revoked
            ]
        );
    }

    #[test]
    fn a_failing_refresh_outranks_a_nearer_deadline() {
        let rows = every_state();
        let initech = rows.iter().find(|c| c.tenant == "initech").unwrap();
        let stark = rows.iter().find(|c| c.tenant == "stark").unwrap();
        assert!(initech.refresh_expires_at > stark.refresh_expires_at);
        assert_eq!(urgency(initech, stark), Ordering::Less);
    }

    #[test]
    fn the_access_token_breaks_a_tie_of_the_long_clocks() {
        let mut a = conn(1, "a", Status::Active);
        let mut b = conn(2, "b", Status::Active);
        let t = crate::fixtures::at(crate::fixtures::NOW);
        a.refresh_expires_at = Some(t);
        b.refresh_expires_at = Some(t);
        a.access_expires_at = Some(t + chrono::Duration::minutes(30));
        b.access_expires_at = Some(t + chrono::Duration::minutes(5));
        assert_eq!(urgency(&b, &a), Ordering::Less);
    }

    #[test]
    fn any_column_sorts_both_ways_with_missing_figures_last() {
        let asc = order(Sort {
            key: SortKey::Hard,
            descending: false,
        });
        assert_eq!(asc.first().map(String::as_str), Some("wayne"));
        assert_eq!(asc.last().map(String::as_str), Some("hooli"));
        let desc = order(Sort {
            key: SortKey::Hard,
            descending: true,
        });
        assert_eq!(desc.last().map(String::as_str), Some("hooli"));
        assert_ne!(desc.first().map(String::as_str), Some("wayne"));

        let by_name = order(Sort {
            key: SortKey::Tenant,
            descending: false,
        });
        assert_eq!(by_name.first().map(String::as_str), Some("acme-corp"));
        assert_eq!(by_name.last().map(String::as_str), Some("wayne"));

        let used = order(Sort {
            key: SortKey::Age,
            descending: true,
        });
        assert_eq!(used.first().map(String::as_str), Some("stark"));
    }

    #[test]
    fn sort_columns_parse_by_name_and_cycle() {
        assert_eq!(SortKey::parse("left"), Ok(SortKey::Left));
        assert_eq!(SortKey::parse("Window"), Ok(SortKey::Age));
        assert!(SortKey::parse("colour")
            .unwrap_err()
            .0
            .contains("expected one of urgency, tenant"));
        let mut k = SortKey::Urgency;
        for _ in 0..SortKey::ALL.len() {
            k = k.next();
        }
        assert_eq!(k, SortKey::Urgency);
    }
}
