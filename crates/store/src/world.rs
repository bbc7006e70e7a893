//! A world of N connections for benchmarks, written straight into the table in batches
//! (not through N Intuit calls and N audit events): realistic tenants, realms and
//! companies, in every state at realistic shares, with times around `now` so that nothing
//! is due for the scheduler for a quarter of an hour. A million rows take seconds, so any
//! figure in BENCHMARKS.md can be measured again by anyone (`cargo bench --bench console`).
//!
//! The rows hold no tokens: nothing may refresh them. A world is for reading (consoles,
//! lists, metrics), and for the scheduler only as a table to search.

use super::{dispatch_tx, Store};
use chrono::{DateTime, Duration, Utc};

/// Tenant names are a word and a number, so a typed name narrows step by step.
pub const WORLD_WORDS: [&str; 20] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "cyberdyne",
    "soylent",
    "tyrell",
    "wonka",
    "gringotts",
    "oscorp",
    "massive",
    "duff",
    "vandelay",
    "bluth",
    "dunder",
    "prestige",
    "sterling",
];

/// Values bound per row.
const VALUES: usize = 19;
/// Rows per INSERT statement: under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 200;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: usize = 50_000;

/// How many connections of each kind a world holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorldCounts {
    pub active: u64,
    pub failing: u64,
    pub expiring: u64,
    pub needs_reconnect: u64,
    pub pending: u64,
    pub revoked: u64,
}

impl WorldCounts {
    pub fn total(&self) -> u64 {
        self.active
            + self.failing
            + self.expiring
            + self.needs_reconnect
            + self.pending
            + self.revoked
    }
}

/// The tenant name of the `i`th connection of a world.
pub fn world_tenant(i: u64) -> String {
    format!(
        "{}-{i:07}",
        WORLD_WORDS[(i % WORLD_WORDS.len() as u64) as usize]
    )
}

struct Row {
    tenant: String,
    realm: String,
    environment: &'static str,
    company: String,
    status: &'static str,
    reason: Option<&'static str>,
    access: Option<DateTime<Utc>>,
    issued: Option<DateTime<Utc>>,
    refresh_expires: Option<DateTime<Utc>>,
    hard: Option<DateTime<Utc>>,
    last_refresh: Option<DateTime<Utc>>,
    outcome: Option<&'static str>,
    error: Option<&'static str>,
    sync_at: Option<DateTime<Utc>>,
    sync: Option<&'static str>,
    failures: i64,
    created: DateTime<Utc>,
    /// When the scheduler looks at it next: as it would have set it after the last refresh.
    next: Option<DateTime<Utc>>,
}

/// The `i`th row: one in 100 pending, one in 100 revoked, two in 100 needing their
/// customer, two failing to refresh, three in their last 30 days, the rest healthy.
fn row(i: u64, now: DateTime<Utc>) -> (Row, &'static str) {
    // Spread over the hour, but nothing due within twenty minutes.
    let access = now + Duration::seconds(1_200 + (i * 7_919 % 2_400) as i64);
    let issued = now - Duration::seconds((i * 104_729 % (60 * 86_400)) as i64);
    let created = now - Duration::days(30 + (i % 1_500) as i64);
    let mut r = Row {
        tenant: world_tenant(i),
        realm: format!("{}", 9_130_000_000_000_000u64 + i),
        environment: if i % 10 == 3 { "sandbox" } else { "production" },
        company: format!(
            "{} {}",
            WORLD_WORDS[((i / 7) % WORLD_WORDS.len() as u64) as usize],
            ["Holdings", "LLC", "Inc", "Partners", "Group"][(i % 5) as usize]
        ),
        status: "active",
        reason: None,
        access: Some(access),
        issued: Some(issued),
        refresh_expires: Some(issued + Duration::days(100)),
        hard: Some(created + Duration::days(5 * 365)),
        last_refresh: Some(issued),
        outcome: Some("ok"),
        error: None,
        sync_at: Some(issued + Duration::minutes(1)),
        sync: Some(if i.is_multiple_of(37) { "failed" } else { "ok" }),
        failures: 0,
        created,
        next: None,
    };
    let kind = match i % 100 {
        0 => {
            r.status = "pending";
            r.reason = Some("waiting for the customer's consent");
            r.access = None;
            r.issued = None;
            r.refresh_expires = None;
            r.last_refresh = None;
            r.outcome = None;
            r.sync_at = None;
            r.sync = None;
            "pending"
        }
        1 => {
            r.status = "revoked";
            r.reason = Some("revoked by an operator");
            r.access = None;
            "revoked"
        }
        2 | 3 => {
            r.status = "needs_reconnect";
            r.reason = Some("Intuit refused the refresh token (invalid_grant)");
            r.access = Some(now - Duration::hours((i % 72) as i64));
            r.outcome = Some("failed");
            r.error = Some("invalid_grant");
            "needs_reconnect"
        }
        4 | 5 => {
            r.outcome = Some("failed");
            r.error = Some("transient");
            r.failures = 1 + (i % 6) as i64;
            "failing"
        }
        6..=8 => {
            let issued = now - Duration::days(71 + (i % 28) as i64);
            r.status = "expiring";
            r.issued = Some(issued);
            r.refresh_expires = Some(issued + Duration::days(100));
            "expiring"
        }
        _ => "active",
    };
    // The scheduler's time for a live row: a little before its access token expires (so
    // nothing is due for a quarter of an hour); a row left without one would be due at once.
    if matches!(r.status, "active" | "expiring") {
        r.next = r.access.map(|a| a - Duration::minutes(5));
    }
    (r, kind)
}

impl Store {
    /// Adds `n` connections (see the module's doc) and says how many of each kind.
    pub async fn fill_world(&self, n: u64, now: DateTime<Utc>) -> anyhow::Result<WorldCounts> {
        let mut counts = WorldCounts::default();
        let mut i = 0u64;
        while i < n {
            let end = (i + ROWS_PER_TRANSACTION as u64).min(n);
            let mut tx = self.begin().await?;
            while i < end {
                let stop = (i + ROWS_PER_STATEMENT as u64).min(end);
                let rows: Vec<Row> = (i..stop)
                    .map(|k| {
                        let (r, kind) = row(k, now);
                        match kind {
                            "pending" => counts.pending += 1,
                            "revoked" => counts.revoked += 1,
                            "needs_reconnect" => counts.needs_reconnect += 1,
                            "failing" => counts.failing += 1,
                            "expiring" => counts.expiring += 1,
                            _ => counts.active += 1,
                        }
                        r
                    })
                    .collect();
                // SQLite binds `?` by position; `$N` it would look up by name, parameter by
                // parameter, which grows with the square of a statement's size.
                let sqlite = matches!(self, Store::Sqlite(_));
                let marks = (0..rows.len())
                    .map(|k| {
                        let p: Vec<String> = (1..=VALUES)
                            .map(|v| {
                                if sqlite {
                                    "?".to_string()
                                } else {
                                    format!("${}", k * VALUES + v)
                                }
                            })
                            .collect();
                        // The fifth column, scopes, is the same empty text for every row.
                        format!("({}, '', {})", p[..4].join(", "), p[4..].join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO connections (tenant, realm_id, environment, company_name, scopes, \
                     status, status_reason, access_expires_at, refresh_issued_at, refresh_expires_at, \
                     hard_expires_at, last_refresh_at, last_refresh_outcome, last_error_class, \
                     last_sync_at, last_sync_status, consecutive_failures, created_at, updated_at, \
                     next_attempt_at) \
                     VALUES {marks}"
                );
                dispatch_tx!(tx, c => {
                    let mut q = sqlx::query(&sql);
                    for r in &rows {
                        q = q
                            .bind(&r.tenant)
                            .bind(&r.realm)
                            .bind(r.environment)
                            .bind(&r.company)
                            .bind(r.status)
                            .bind(r.reason)
                            .bind(r.access)
                            .bind(r.issued)
                            .bind(r.refresh_expires)
                            .bind(r.hard)
                            .bind(r.last_refresh)
                            .bind(r.outcome)
                            .bind(r.error)
                            .bind(r.sync_at)
                            .bind(r.sync)
                            .bind(r.failures)
                            .bind(r.created)
                            .bind(now)
                            .bind(r.next);
                    }
                    q.execute(c).await.map(|r| r.rows_affected())
                })?;
                i = stop;
            }
            tx.commit().await?;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_world_holds_every_state_at_its_share() {
        let now = Utc::now();
        let mut kinds = std::collections::HashMap::new();
        for i in 0..1_000 {
            *kinds.entry(row(i, now).1).or_insert(0) += 1;
        }
        assert_eq!(kinds["pending"], 10);
        assert_eq!(kinds["revoked"], 10);
        assert_eq!(kinds["needs_reconnect"], 20);
        assert_eq!(kinds["failing"], 20);
        assert_eq!(kinds["expiring"], 30);
        assert_eq!(kinds["active"], 910);
        // Nothing live is due within a quarter of an hour, and every live row has its
        // time (a live row without one is due at once).
        assert!((0..1_000).all(|i| row(i, now).0.access.is_none_or(|a| {
            a > now + Duration::minutes(19) || row(i, now).0.status == "needs_reconnect"
        })));
        assert!((0..1_000).all(|i| {
            let r = row(i, now).0;
            !matches!(r.status, "active" | "expiring")
                || r.next.is_some_and(|t| t >= now + Duration::minutes(15))
        }));
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test --release -p qbo-store world_fill_timing -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread")]
    #[ignore]
    async fn world_fill_timing() {
        let dir = tempfile::tempdir().unwrap();
        let db = qbo_core::config::DatabaseConfig {
            url: format!("sqlite://{}/w.db", dir.path().display()),
            max_connections: 4,
            connect_timeout: std::time::Duration::from_secs(10),
        };
        let store = crate::Store::connect(&db, None).await.unwrap();
        store.migrate().await.unwrap();
        let t = std::time::Instant::now();
        store.fill_world(100_000, chrono::Utc::now()).await.unwrap();
        println!("filled 100,000 in {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let (mut after, mut n) = (None, 0);
        loop {
            let page = store
                .list_page(&Default::default(), after.as_ref(), 1000)
                .await
                .unwrap();
            n += page.len();
            match page.last() {
                Some(r) => after = Some(crate::ListMark::after(r)),
                None => break,
            }
        }
        assert_eq!(n, 100_000);
        println!("listed 100,000 page by page in {:?}", t.elapsed());
    }
}
