//! One connection as the roster keeps it: the figures the filter language and the sort
//! orders read, in about 80 bytes plus its searchable text in a shared arena, instead of
//! the kilobyte a full view takes. A million of them fit in the daemon beside everything
//! else it holds.

use crate::facts::Facts;
use crate::filter::{sync_outcome, Outcome};
use crate::{ConnectionView, Environment, Status};
use chrono::{DateTime, Utc};

/// No time: `i64::MIN`, which no stored time is.
const NONE: i64 = i64::MIN;

#[derive(Debug, Clone)]
pub(super) struct Brief {
    pub id: i64,
    /// Nanoseconds since the epoch of access expiry, refresh expiry, refresh issue, the
    /// 5-year limit, the last refresh and the last sync (`NONE` where absent): as precise as
    /// the database, so that two connections refreshed in the same second sort as a full
    /// list sorts them.
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
    // Past 2262 (beyond any token's life) the time saturates, keeping its order.
    t.map_or(NONE, |t| {
        t.timestamp_nanos_opt().unwrap_or(if t.timestamp() > 0 {
            i64::MAX
        } else {
            NONE + 1
        })
    })
}

pub(super) fn time(ns: i64) -> Option<DateTime<Utc>> {
    (ns != NONE).then(|| DateTime::from_timestamp_nanos(ns))
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
    /// When this connection's refresh token lapses, if it holds a live one (active or
    /// expiring), in nanoseconds.
    pub fn live_lapse(&self) -> Option<i64> {
        let live = matches!(self.status, Status::Active | Status::Expiring);
        (live && self.times[1] != NONE).then_some(self.times[1])
    }

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

    pub fn condition(&self) -> crate::Condition {
        crate::Condition::of(self.status, i64::from(self.failures))
    }

    /// The urgency tier (as `sort::urgency` ranks it).
    fn tier(&self) -> i64 {
        match self.status {
            Status::NeedsReconnect => 0,
            Status::Active | Status::Expiring if self.failures > 0 => 1,
            Status::Active | Status::Expiring => 2,
            Status::Revoking => 3,
            Status::Pending => 4,
            Status::Revoked => 5,
        }
    }
}

/// A missing time sorts last.
fn last_if_none(t: i64) -> i64 {
    if t == NONE {
        i64::MAX
    } else {
        t
    }
}

/// Eight bytes of a text from `at`, lower-cased, as a number in the same order as the
/// text (an unsigned big-endian number, shifted into the signed range).
fn prefix(text: &str, at: usize) -> i64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(text.bytes().skip(at)) {
        *d = s.to_ascii_lowercase();
    }
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// The first 24 bytes of a text as three numbers: enough for almost every tenant name and
/// realm id to differ in them. Where they tie, the rows are compared in full.
fn text_key(text: &str) -> [i64; 3] {
    [prefix(text, 0), prefix(text, 8), prefix(text, 16)]
}

/// A sort key in numbers that orders rows as `Sort::compare` does wherever the keys
/// differ (rows whose keys are equal are then compared in full): sorting a million rows by
/// numbers takes a fraction of comparing them field by field.
pub(super) fn sort_key(sort: crate::sort::Sort, r: &BriefRef<'_>) -> [i64; 5] {
    use crate::facts::Facts;
    use crate::sort::SortKey;
    let b = r.brief;
    let desc = sort.descending;
    // A known figure's order flips with the direction; a missing one stays last.
    let time = |t: i64, flip: bool| match (t == NONE, flip) {
        (true, _) => i64::MAX,
        (false, false) => t,
        (false, true) => -t,
    };
    let word = |v: i64| if desc { !v } else { v };
    // A text decides the order up to its full comparison: nothing after it may, so a key
    // led by a text holds that text alone.
    let text = |t: &str| {
        let [a, b, c] = text_key(t);
        [word(a), word(b), word(c), 0, 0]
    };
    let primary: [i64; 2] = match sort.key {
        SortKey::Urgency => [0, 0],
        SortKey::Tenant => return text(r.tenant()),
        SortKey::Realm => {
            let len = r.realm_id().len() as i64;
            let [a, b, c] = text(r.realm_id())[..3].try_into().expect("three parts");
            return [if desc { -len } else { len }, a, b, c, 0];
        }
        SortKey::Env => [word(b.environment as i64), 0],
        SortKey::Status => [
            word(super::super::sort::status_rank(b.condition()) as i64),
            0,
        ],
        SortKey::Access => [time(b.times[0], desc), 0],
        // Fewest days used first is the latest expiry first.
        SortKey::Age => [time(b.times[1], !desc), 0],
        SortKey::Left => [time(b.times[1], desc), 0],
        SortKey::Hard => [time(b.times[3], desc), 0],
        SortKey::LastRefresh => [time(b.times[4], desc), 0],
        SortKey::LastSync => [time(b.times[5], desc), 0],
        // Known names first whichever way, by the name's rank (a name's order flips with
        // the direction), then urgency: the names are few, so ranking them whole beats
        // comparing the thousands of rows one account acted on by anything else. Nobody
        // acted: last (1, not a large number: the packed keys give a part the bits its
        // range needs).
        SortKey::Actor => match r.actor_ranks.get(b.actor as usize) {
            None => [1, 0],
            Some(&rank) => [0, word(i64::from(rank))],
        },
    };
    let deadline = match (b.times[1], b.times[3]) {
        (NONE, h) => last_if_none(h),
        (r, NONE) => r,
        (r, h) => r.min(h),
    };
    let rest = [b.tier(), deadline, last_if_none(b.times[0])];
    if sort.key == SortKey::Urgency && desc {
        [primary[0], primary[1], -rest[0], !rest[1], !rest[2]]
    } else {
        [primary[0], primary[1], rest[0], rest[1], rest[2]]
    }
}

/// A brief with the arena and the actor names it points into: what the filter and the
/// sort read.
pub(super) struct BriefRef<'a> {
    pub brief: &'a Brief,
    pub hay: &'a str,
    pub actors: &'a [String],
    /// Each actor name's place among them all in the sort's text order (names equal but
    /// for case share one).
    pub actor_ranks: &'a [u32],
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
