//! The lease on a connection: who may spend its refresh token, with which fence, and until
//! when. Why these rules make a superseded token unspendable is argued in
//! `lifecycle/refresh.rs`; this module only states them in SQL.
//!
//! - Taking a lease bumps `lease_fence`; every write a holder makes names its fence.
//! - A held lease can be taken only once both its own-clock `lease_until` and its
//!   database-clock `inflight_until` have passed (or by the same process, whose tasks the
//!   in-process flight guard already serializes).
//! - A lease taken to spend the refresh token marks the token as possibly sent and
//!   unanswered (`unanswered_*`) unless an earlier mark stands; a recorded answer clears it.

use super::{dispatch, dispatch_tx, dispatch_write, Store, Tx};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// A lease this process holds on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub owner: String,
    /// What every write under this lease must find in `lease_fence`.
    pub fence: i64,
    /// When (this process's monotonic clock) the taking was sent: the database stamped
    /// `inflight_until` no earlier than this plus the hold it was given.
    pub taken: Instant,
    /// The hold asked for: no one else can take the lease before `taken + hold`.
    pub hold: Duration,
    /// An earlier holder's unanswered mark, found standing when this lease was taken: the
    /// token may have been spent by it without an answer on record.
    pub earlier: Option<Unanswered>,
}

impl Lease {
    /// How long a request started now may take and still leave `commit` for recording its
    /// answer inside the hold; `None` if it is too late to start one at all.
    pub fn request_budget(&self, request: Duration, commit: Duration) -> Option<Duration> {
        let left = self.hold.checked_sub(self.taken.elapsed())?;
        let budget = left.checked_sub(commit)?;
        (budget >= request).then_some(request)
    }
}

/// Why a lease is taken: spending the refresh token marks it as possibly unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The refresh token will be sent to Intuit's token endpoint.
    SpendRefreshToken,
    /// Anything else (revoke, reconnect, re-sealing under a new key).
    Other,
}

/// The condition under which a row's lease may be taken by `$owner` (placeholder numbers
/// given): free, ours already, or both clocks past the previous holder's hold.
pub(super) fn takeable(store: &Store, owner: &str, now: &str) -> String {
    let db_now = db_now(store);
    format!(
        "(lease_owner IS NULL OR lease_owner = {owner} OR \
          ((lease_until IS NULL OR lease_until < {now}) \
           AND (inflight_until IS NULL OR inflight_until < {db_now})))"
    )
}

/// The database's own clock, in the form `inflight_until` is stored.
fn db_now(store: &Store) -> &'static str {
    match store {
        Store::Sqlite(_) => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        Store::Postgres(_) => "clock_timestamp()",
    }
}

/// The database's clock plus `hold`, as an SQL expression binding nothing (the hold is a
/// number written into the text; there are only a few distinct holds per process).
pub(super) fn db_after(store: &Store, hold: Duration) -> String {
    let secs = hold.as_secs_f64();
    match store {
        Store::Sqlite(_) => {
            format!("strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{secs:.3} seconds')")
        }
        Store::Postgres(_) => format!("(clock_timestamp() + interval '{secs:.3} seconds')"),
    }
}

/// The `SET` items that take a lease for `$owner` until `$until`, bumping the fence and,
/// for a spending lease, marking the token possibly unanswered since `$now` unless an
/// earlier mark stands.
pub(super) fn take_set(
    store: &Store,
    purpose: Purpose,
    owner: &str,
    until: &str,
    now: &str,
    hold: Duration,
) -> String {
    let inflight = db_after(store, hold);
    let mut set = format!(
        "lease_owner = {owner}, lease_until = {until}, lease_fence = lease_fence + 1, \
         inflight_until = {inflight}"
    );
    if purpose == Purpose::SpendRefreshToken {
        set.push_str(&format!(
            ", unanswered_by = CASE WHEN unanswered_since IS NULL THEN {owner} ELSE unanswered_by END, \
             unanswered_fence = CASE WHEN unanswered_since IS NULL THEN lease_fence + 1 ELSE unanswered_fence END, \
             unanswered_since = COALESCE(unanswered_since, {now})"
        ));
    }
    set
}

impl Tx {
    /// Proves, leaving no trace, that an audit event could be appended now: a row inserted
    /// into the audit table and rolled back at once. Taking a lease to spend a refresh
    /// token does this first, so that a log that cannot be written (a broken table, a
    /// trigger, a damaged chain) stops the refresh before anything is sent to Intuit,
    /// rather than after Intuit has rotated the token.
    pub async fn probe_audit(&mut self) -> anyhow::Result<()> {
        const PROBE: &str =
            "INSERT INTO audit_events (seq, at, actor_account, actor_uid, interface, role, \
            action, outcome, fingerprints, prev_hash, hash) \
            VALUES (-1, '', '', 0, '', '', 'probe', 'ok', '', '', '')";
        // A chain blocked by rows past its head takes every insert, and would break the
        // chain with this one: it is named first, with the verb that repairs it.
        self.audit_appendable().await?;
        dispatch_tx!(self, c => sqlx::query("SAVEPOINT audit_probe").execute(c).await.map(|_| ()))?;
        let probed = dispatch_tx!(self, c => sqlx::query(PROBE).execute(c).await.map(|_| ()));
        dispatch_tx!(self, c => sqlx::query("ROLLBACK TO SAVEPOINT audit_probe").execute(c).await.map(|_| ()))?;
        dispatch_tx!(self, c => sqlx::query("RELEASE SAVEPOINT audit_probe").execute(c).await.map(|_| ()))?;
        probed.map_err(|e| {
            anyhow::anyhow!(
                "the audit log cannot be written ({e:#}), so nothing is sent to Intuit: a refresh \
                 whose answer could not be recorded could lose the connection. Fix the audit \
                 log (`qbo-console audit verify` names what is wrong), then try again"
            )
        })
    }
}

/// An earlier refresh whose answer was never recorded: the stored refresh token may have
/// been rotated at Intuit by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub since: DateTime<Utc>,
    pub by: String,
    /// The fence of the lease that made the mark.
    pub fence: Option<i64>,
}

/// What a taking returns: the new fence and the unanswered mark as it now stands.
pub(super) const TAKEN_COLUMNS: &str =
    "lease_fence, unanswered_since, unanswered_by, unanswered_fence";
pub(super) type TakenRow = (i64, Option<DateTime<Utc>>, Option<String>, Option<i64>);

impl Lease {
    pub(super) fn taken(
        id: i64,
        owner: &str,
        taken: Instant,
        hold: Duration,
        (fence, since, by, mark): TakenRow,
    ) -> Lease {
        // A mark this taking made carries its fence; any other is an earlier holder's.
        let earlier = Unanswered::from_row((since, by, mark)).filter(|u| u.fence != Some(fence));
        Lease {
            id,
            owner: owner.to_string(),
            fence,
            taken,
            hold,
            earlier,
        }
    }
}

/// `unanswered_since, unanswered_by, unanswered_fence` as read.
pub(super) type UnansweredRow = (Option<DateTime<Utc>>, Option<String>, Option<i64>);

impl Unanswered {
    pub(super) fn from_row((since, by, fence): UnansweredRow) -> Option<Unanswered> {
        Some(Unanswered {
            since: since?,
            by: by.unwrap_or_default(),
            fence,
        })
    }

    /// Whether the mark was made by an earlier lease than `lease` (whose own mark only
    /// says that it is sending now).
    pub fn before(&self, lease: &Lease) -> bool {
        self.fence != Some(lease.fence)
    }
}

impl Store {
    /// Takes the lease on a connection if it is takeable. Returns the lease when this
    /// caller now holds it.
    pub async fn try_lease(
        &self,
        id: i64,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        purpose: Purpose,
    ) -> anyhow::Result<Option<Lease>> {
        let hold = (until - now).to_std().unwrap_or_default();
        let sql = format!(
            "UPDATE connections SET {} WHERE id = $3 AND {} RETURNING {TAKEN_COLUMNS}",
            take_set(self, purpose, "$1", "$2", "$4", hold),
            takeable(self, "$1", "$4"),
        );
        let taken = Instant::now();
        let mut tx = self.begin().await?;
        if purpose == Purpose::SpendRefreshToken {
            tx.probe_audit().await?;
        }
        let row: Option<TakenRow> = dispatch_tx!(tx, c => sqlx::query_as(&sql)
            .bind(owner).bind(until).bind(id).bind(now).fetch_optional(c).await)?;
        tx.commit().await?;
        Ok(row.map(|row| Lease::taken(id, owner, taken, hold, row)))
    }

    /// Gives a lease back without having sent anything: the holder's own unanswered mark
    /// goes with it (an earlier holder's stays). The fence keeps its new number: fences
    /// only grow, so a lease object kept by mistake can never match a later lease of the
    /// same owner.
    pub async fn release_unsent(&self, lease: &Lease) -> anyhow::Result<()> {
        let sql = "UPDATE connections SET lease_owner = NULL, lease_until = NULL, inflight_until = NULL, \
                   unanswered_since = CASE WHEN unanswered_fence = $3 THEN NULL ELSE unanswered_since END, \
                   unanswered_by = CASE WHEN unanswered_fence = $3 THEN NULL ELSE unanswered_by END, \
                   unanswered_fence = CASE WHEN unanswered_fence = $3 THEN NULL ELSE unanswered_fence END \
                   WHERE id = $1 AND lease_owner = $2 AND lease_fence = $3";
        dispatch_write!(self, p => sqlx::query(sql).bind(lease.id).bind(&lease.owner).bind(lease.fence)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives a lease back after an error that reached no verdict: whatever was sent stays
    /// marked unanswered.
    pub async fn release_lease(&self, lease: &Lease) -> anyhow::Result<()> {
        let sql =
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL, inflight_until = NULL \
                   WHERE id = $1 AND lease_owner = $2 AND lease_fence = $3";
        dispatch_write!(self, p => sqlx::query(sql).bind(lease.id).bind(&lease.owner).bind(lease.fence)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives back a lease taken for anything but spending the refresh token (revoke,
    /// reconnect, re-sealing), whose writes name the owner and the row's version: those
    /// paths never leave an unanswered mark of their own.
    pub async fn release_owned(&self, id: i64, owner: &str) -> anyhow::Result<()> {
        let sql =
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL, inflight_until = NULL \
                   WHERE id = $1 AND lease_owner = $2";
        dispatch_write!(self, p => sqlx::query(sql).bind(id).bind(owner)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Whether `lease` still holds the row and the row still stores `sealed_refresh`:
    /// checked, under the in-process flight guard, right before the token is sent.
    pub async fn lease_still_current(
        &self,
        lease: &Lease,
        sealed_refresh: &[u8],
    ) -> anyhow::Result<bool> {
        let sql = "SELECT COUNT(*) FROM connections WHERE id = $1 AND lease_owner = $2 \
                   AND lease_fence = $3 AND refresh_token = $4";
        let n: i64 = dispatch!(self, p => sqlx::query_scalar(sql).bind(lease.id).bind(&lease.owner)
            .bind(lease.fence).bind(sealed_refresh).fetch_one(p).await)?;
        Ok(n == 1)
    }

    /// The unanswered mark on a connection, if any.
    pub async fn unanswered(&self, id: i64) -> anyhow::Result<Option<Unanswered>> {
        let sql = "SELECT unanswered_since, unanswered_by, unanswered_fence FROM connections WHERE id = $1";
        let row: Option<UnansweredRow> =
            dispatch!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?;
        Ok(row.and_then(Unanswered::from_row))
    }
}
