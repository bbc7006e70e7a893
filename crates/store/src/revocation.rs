//! The revocation writes: a connection Intuit has not yet confirmed revoked (`revoking`,
//! tokens kept), one it has (`revoked`, every ciphertext gone), the scheduler's claim of
//! unconfirmed revokes, and the purge of long-revoked rows.

use super::schedule::Claimed;
use super::{dispatch, dispatch_tx, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, ErrorClass};

const REVOKE_DUE: &str = "status = 'revoking' \
    AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
    AND environment IN ($5, $6)";

impl Store {
    /// Takes the lease on up to `limit` connections whose revoke is due for a retry, as
    /// `claim_due` does for refreshes (a `revoking` row is never claimed for a refresh).
    pub async fn claim_revoking(
        &self,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: i64,
        envs: &[Environment],
    ) -> anyhow::Result<Vec<Claimed>> {
        let mut rows = self
            .claim_where(
                "connections",
                REVOKE_DUE,
                "id",
                super::leases::Purpose::Other,
                owner,
                until,
                now,
                limit,
                envs,
            )
            .await?;
        rows.sort_by_key(|c| c.record.id);
        Ok(rows)
    }

    /// Ids of revoked connections last written before `before`. A revoked row
    /// is never written again (nothing refreshes, verifies or leases it), so its
    /// `updated_at` is the time of its revocation.
    pub async fn revoked_before(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
        let sql =
            "SELECT id FROM connections WHERE status = 'revoked' AND updated_at < $1 ORDER BY id";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(before).fetch_all(p).await)?)
    }
}

impl Tx {
    /// Intuit confirmed the revoke: every ciphertext goes, the connection is `revoked` and
    /// released. Only while this owner holds the lease; returns whether it did.
    pub async fn mark_revoked(
        &mut self,
        id: i64,
        owner: &str,
        reason: &str,
        tid: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET status = 'revoked', status_reason = $1, access_token = NULL, \
                   refresh_token = NULL, previous_refresh_token = NULL, previous_refresh_replaced_at = NULL, \
                   access_expires_at = NULL, last_intuit_tid = COALESCE($2, last_intuit_tid), \
                   last_error_class = NULL, last_error_detail = NULL, consecutive_failures = 0, \
                   next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, version = version + 1, \
                   updated_at = $3 WHERE id = $4 AND lease_owner = $5";
        let done = dispatch_tx!(self, c => sqlx::query(sql).bind(reason).bind(tid).bind(now).bind(id).bind(owner)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Intuit could not be reached or refused: the connection shows `revoking`, keeps its
    /// tokens (they are still live at Intuit) and is retried at `next_attempt`.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_revoking(
        &mut self,
        id: i64,
        owner: &str,
        reason: &str,
        class: ErrorClass,
        tid: Option<&str>,
        next_attempt: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET status = 'revoking', status_reason = $1, last_error_class = $2, \
                   last_error_detail = $1, last_intuit_tid = COALESCE($3, last_intuit_tid), \
                   consecutive_failures = consecutive_failures + 1, next_attempt_at = $4, lease_owner = NULL, \
                   lease_until = NULL, version = version + 1, updated_at = $5 WHERE id = $6 AND lease_owner = $7";
        let done = dispatch_tx!(self, c => sqlx::query(sql).bind(reason).bind(class.as_str()).bind(tid)
            .bind(next_attempt).bind(now).bind(id).bind(owner)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Deletes a revoked connection (its audit events stay: they name it by id, tenant and
    /// realm, with no foreign key to this row). Returns whether it did.
    pub async fn delete_revoked(&mut self, id: i64) -> anyhow::Result<bool> {
        let sql = "DELETE FROM connections WHERE id = $1 AND status = 'revoked'";
        let done = dispatch_tx!(self, c => sqlx::query(sql).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}
