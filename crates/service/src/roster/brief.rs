//! One connection as the roster keeps it: the figures the filter language and the sort
//! orders read, in about 80 bytes plus its searchable text in a shared arena, instead of
//! the kilobyte a full view takes. A million of them fit in the daemon beside everything
//! else it holds.

use crate::facts::Facts;
use crate::filter::{sync_outcome, Outcome};
use crate::{ConnectionView, Environment, Status};
use chrono::{DateTime, Utc};

/// No time: `i64::MIN` seconds, which no stored time is.
const NONE: i64 = i64::MIN;

#[derive(Debug, Clone)]
pub(super) struct Brief {
    pub id: i64,
    /// Seconds since the epoch of access expiry, refresh expiry, refresh issue, the 5-year
    /// limit, the last refresh and the last sync (`NONE` where absent).
    times: [i64; 6],
    pub failures: u32,
    /// Where this row's text starts in the arena, and the lengths of its tenant and realm
    /// parts (the company name runs to `hay_len`).
    pub hay_at: u32,
    pub hay_len: u32,
    tenant_len: u16,
    realm_len: u16,
    /// An index into the roster's actor names, or `u32::MAX` for nobody.
    pub actor: u32,
    pub status: Status,
    pub environment: Environment,
    sync: Outcome,
}

fn secs(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(NONE, |t| t.timestamp())
}

fn time(s: i64) -> Option<DateTime<Utc>> {
    (s != NONE)
        .then(|| DateTime::from_timestamp(s, 0))
        .flatten()
}

/// The text free words search, exactly as `Filter::haystack` makes it, and the lengths of
/// its first two parts.
pub(super) fn haystack(v: &ConnectionView) -> (String, u16, u16) {
    let hay = crate::filter::Filter::haystack(v);
    let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
    let (tenant, realm) = {
        let mut parts = hay.split('\n');
        (
            clamp(parts.next().map_or(0, str::len)),
            clamp(parts.next().map_or(0, str::len)),
        )
    };
    (hay, tenant, realm)
}

impl Brief {
    /// The brief of a view; `hay_at`/`hay_len` and `actor` are the roster's to fill.
    pub fn of(v: &ConnectionView, tenant_len: u16, realm_len: u16) -> Brief {
        Brief {
            id: v.id,
            times: [
                secs(v.access_expires_at),
                secs(v.refresh_expires_at),
                secs(v.refresh_issued_at),
                secs(v.hard_expires_at),
                secs(v.last_refresh_at),
                secs(v.last_sync_at),
            ],
            failures: u32::try_from(v.consecutive_failures.max(0)).unwrap_or(u32::MAX),
            hay_at: 0,
            hay_len: 0,
            tenant_len,
            realm_len,
            actor: u32::MAX,
            status: v.status,
            environment: v.environment,
            sync: sync_outcome(v),
        }
    }

    pub fn is_failing(&self) -> bool {
        self.status.is_live() && self.failures > 0
    }
}

/// A brief with the arena and the actor names it points into: what the filter and the
/// sort read.
pub(super) struct BriefRef<'a> {
    pub brief: &'a Brief,
    pub hay: &'a str,
    pub actors: &'a [String],
}

impl BriefRef<'_> {
    pub fn haystack(&self) -> &str {
        let at = self.brief.hay_at as usize;
        &self.hay[at..at + self.brief.hay_len as usize]
    }
}

impl Facts for BriefRef<'_> {
    fn id(&self) -> i64 {
        self.brief.id
    }
    /// Lower-cased: the sort compares tenants without regard to case anyway.
    fn tenant(&self) -> &str {
        &self.haystack()[..self.brief.tenant_len as usize]
    }
    fn realm_id(&self) -> &str {
        let start = self.brief.tenant_len as usize + 1;
        let h = self.haystack();
        h.get(start..start + self.brief.realm_len as usize)
            .unwrap_or_default()
    }
    fn environment(&self) -> Environment {
        self.brief.environment
    }
    fn status(&self) -> Status {
        self.brief.status
    }
    fn consecutive_failures(&self) -> i64 {
        i64::from(self.brief.failures)
    }
    fn access_expires_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[0])
    }
    fn refresh_expires_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[1])
    }
    fn refresh_issued_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[2])
    }
    fn hard_expires_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[3])
    }
    fn last_refresh_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[4])
    }
    fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        time(self.brief.times[5])
    }
    fn sync_outcome(&self) -> Outcome {
        self.brief.sync
    }
    fn last_actor(&self) -> Option<&str> {
        self.actors
            .get(self.brief.actor as usize)
            .map(String::as_str)
    }
}
