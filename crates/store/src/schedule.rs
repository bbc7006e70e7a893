//! The scheduler's queries: claiming due work in batches, and the figures `/metrics` shows.

use super::leases::{take_set, takeable, Lease, Purpose, TAKEN_COLUMNS};
use super::rows::RECORD_COLUMNS;
use super::{dispatch, dispatch_tx, ConnectionRecord, Store};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;
use sqlx::{FromRow, Row};

/// A claimed connection, as read by the claim itself: the scheduler needs no further read
/// before calling Intuit.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub record: ConnectionRecord,
    pub refresh_token: Option<Vec<u8>>,
    /// The lease the claim took: its fence, and when it was taken.
    pub lease: Lease,
}

/// Due for a refresh (bound: `$3` now, `$5`/`$6` the environments); whether its lease can
/// be taken is added by `claim_where`.
const DUE: &str = "status IN ('active', 'expiring') \
    AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
    AND environment IN ($5, $6)";

/// The ids of the live connections due at `$now`, as two ranges of `connections_schedule`
/// (unscheduled ones and those whose time has come).
macro_rules! due_ranges {
    ($now:literal) => {
        concat!(
            "SELECT id FROM connections WHERE status IN ('active', 'expiring') AND next_attempt_at <= ",
            $now,
            " UNION ALL SELECT id FROM connections WHERE status IN ('active', 'expiring') AND next_attempt_at IS NULL"
        )
    };
}

/// `DUE` for SQLite when few rows are due: the two index ranges of `connections_schedule`
/// that hold them (SQLite reads no `OR` of two ranges from one index), and no use of the
/// environment's index (`+`), which would read every row of the environment.
const DUE_FEW_SQLITE: &str = concat!(
    "id IN (",
    due_ranges!("$3"),
    ") AND +environment IN ($5, $6)"
);

/// From this many due rows the claim walks the urgency index (`connections_urgency`) and
/// skips the rows not due, instead of sorting every due row: past it the walk meets a due
/// row every few entries, below it the sort is of at most this many (about 60 ms).
const BACKLOG: i64 = 65_536;

impl Store {
    /// Takes the lease on up to `limit` due connections of the given environments, most
    /// urgent first (refresh tokens closest to lapse, unknown ones before all). On
    /// PostgreSQL `SKIP LOCKED` lets several daemons claim side by side without waiting on
    /// or double-claiming each other's rows.
    pub async fn claim_due(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
        envs: &[Environment],
    ) -> anyhow::Result<Vec<Claimed>> {
        // SQLite has no planner statistics to choose between the two ways; PostgreSQL
        // chooses from its own (the urgency index's order is the claim's).
        let (from, due) = match self {
            Store::Sqlite(_) if self.due_at_least(now, BACKLOG).await? => {
                ("connections INDEXED BY connections_urgency", DUE)
            }
            Store::Sqlite(_) => ("connections", DUE_FEW_SQLITE),
            Store::Postgres(_) => ("connections", DUE),
        };
        let mut rows = self
            .claim_where(
                from,
                due,
                "refresh_expires_at ASC NULLS FIRST, id",
                Purpose::SpendRefreshToken,
                owner,
                until,
                now,
                limit,
                envs,
            )
            .await?;
        rows.sort_by(|a, b| {
            let (x, y) = (&a.record, &b.record);
            match (x.refresh_expires_at, y.refresh_expires_at) {
                (None, None) => x.id.cmp(&y.id),
                (None, Some(_)) => std::cmp::Ordering::Less,
                (Some(_), None) => std::cmp::Ordering::Greater,
                (Some(p), Some(q)) => p.cmp(&q).then(x.id.cmp(&y.id)),
            }
        });
        Ok(rows)
    }

    /// Takes the lease on the live connection of `env` scheduled soonest, due or not: an
    /// incident's probe, which must find out whether Intuit answers again even when nothing
    /// is due (a refresh made early costs nothing but the call).
    pub async fn claim_for_probe(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        env: Environment,
    ) -> anyhow::Result<Option<Claimed>> {
        let live = "status IN ('active', 'expiring') AND environment IN ($5, $6)";
        // Those failing least first, then the soonest scheduled: a company Intuit fails on
        // its own (failing since before the incident, or again after a probe) says nothing
        // of Intuit as a whole, and probing it every time would keep the incident open.
        let mut rows = self
            .claim_where(
                "connections",
                live,
                "consecutive_failures ASC, next_attempt_at ASC NULLS FIRST, refresh_expires_at ASC NULLS FIRST, id",
                Purpose::SpendRefreshToken,
                owner,
                until,
                now,
                1,
                &[env],
            )
            .await?;
        Ok(rows.pop())
    }

    /// Leases up to `limit` rows of `envs` matching `due` (bound: `$3` now, `$5`/`$6` the
    /// environments) whose lease can be taken, in `order`, and returns them as the claim
    /// read them. On PostgreSQL `SKIP LOCKED` keeps daemons claiming side by side off each
    /// other's rows. The refresh claim and the revoke-retry claim differ only in `due`,
    /// `order` and `purpose`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn claim_where(
        &self,
        from: &str,
        due: &str,
        order: &str,
        purpose: Purpose,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
        envs: &[Environment],
    ) -> anyhow::Result<Vec<Claimed>> {
        let Some(first) = envs.first() else {
            return Ok(Vec::new());
        };
        let second = envs.get(1).unwrap_or(first);
        let lock = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        };
        let hold = (until - now).to_std().unwrap_or_default();
        // `takeable` names `$1` (the owner): a claim never takes a lease this process
        // already holds, which the scheduler would then be working on twice.
        let set = take_set(self, purpose, "$1", "$2", "$3", hold);
        let free = takeable(self, "NULL", "$3");
        let sql = format!(
            "UPDATE connections SET {set} WHERE id IN (\
             SELECT id FROM {from} WHERE {due} AND {free} ORDER BY {order} LIMIT $4 {lock}) \
             RETURNING {RECORD_COLUMNS}, refresh_token, {TAKEN_COLUMNS}"
        );
        let taken = std::time::Instant::now();
        let mut tx = self.begin().await?;
        if purpose == Purpose::SpendRefreshToken {
            tx.probe_audit().await?;
        }
        let claimed = dispatch_tx!(tx, c => {
            let raw = sqlx::query(&sql)
                .bind(owner).bind(until).bind(now).bind(limit).bind(first.as_str()).bind(second.as_str())
                .fetch_all(&mut *c).await?;
            raw.iter()
                .map(|r| {
                    let record = ConnectionRecord::from_row(r)?;
                    let row = (r.try_get("lease_fence")?, r.try_get("unanswered_since")?, r.try_get("unanswered_by")?, r.try_get("unanswered_fence")?);
                    let lease = Lease::taken(record.id, owner, taken, hold, row);
                    Ok(Claimed { record, refresh_token: r.try_get("refresh_token")?, lease })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Whether at least `n` live connections are due at `now` (a count that stops at `n`,
    /// over the two index ranges that hold due rows).
    async fn due_at_least(&self, now: DateTime<Utc>, n: i64) -> anyhow::Result<bool> {
        let sql = concat!(
            "SELECT COUNT(*) FROM (",
            due_ranges!("$1"),
            " LIMIT $2) AS due"
        );
        let found: i64 =
            dispatch!(self, p => sqlx::query_scalar(sql).bind(now).bind(n).fetch_one(p).await)?;
        Ok(found >= n)
    }

    /// The most overdue live connection's scheduled time, if any is overdue.
    pub async fn oldest_overdue(
        &self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<DateTime<Utc>>> {
        // One index seek per live status, on (status, next_attempt_at): `MIN` over
        // `status IN (…)` read every overdue row, all of them after a long downtime.
        let sql = "SELECT MIN(t) FROM ( \
                   SELECT (SELECT next_attempt_at FROM connections WHERE status = 'active' \
                           AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 1) AS t \
                   UNION ALL \
                   SELECT (SELECT next_attempt_at FROM connections WHERE status = 'expiring' \
                           AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT 1) AS t) AS u";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(now).fetch_one(p).await)?)
    }

    /// Whether some live connection has never been scheduled (imported, not yet refreshed).
    pub async fn unscheduled_live(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM connections WHERE status IN ('active', 'expiring') AND next_attempt_at IS NULL";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).fetch_one(p).await)?)
    }
}
