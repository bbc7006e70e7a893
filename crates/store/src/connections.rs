//! Queries on the `connections` table: listing, finding, leasing and the writes that the
//! lifecycle makes inside its transactions.

use super::leases::{Lease, Unanswered};
use super::rows::{
    ConnectionFilter, ConnectionRecord, NewConnection, SealedTokens, TokenUpdate, LAST_ACT_COLUMNS,
    RECORD_COLUMNS,
};
use super::{dispatch, dispatch_tx, dispatch_write, Store, Tx, TxInner};
use chrono::{DateTime, Utc};
use qbo_core::domain::{Environment, ErrorClass, Status, SyncStatus};

impl Store {
    pub async fn list_connections(
        &self,
        f: &ConnectionFilter,
    ) -> anyhow::Result<Vec<ConnectionRecord>> {
        // On SQLite the rows are sorted here, not by the query: SQLite would walk the tenant
        // index and look every row up in the table, which for 100,000 connections costs
        // about as much as reading them all. Its BINARY collation is Rust's byte order, so
        // the order is the same. PostgreSQL sorts by its own collation, as before.
        let order = match self {
            Store::Sqlite(_) => "",
            Store::Postgres(_) => "ORDER BY tenant, environment, realm_id",
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR environment = $2) {order}"
        );
        let status = f.status.map(|s| s.as_str());
        let env = f.environment.map(|e| e.as_str());
        let mut rows: Vec<ConnectionRecord> =
            dispatch!(self, p => sqlx::query_as(&sql).bind(status).bind(env).fetch_all(p).await)?;
        if let Store::Sqlite(_) = self {
            rows.sort_unstable_by(|a, b| {
                (
                    a.tenant.as_str(),
                    a.environment.as_str(),
                    a.realm_id.as_str(),
                )
                    .cmp(&(
                        b.tenant.as_str(),
                        b.environment.as_str(),
                        b.realm_id.as_str(),
                    ))
            });
        }
        Ok(rows)
    }

    pub async fn get_connection(&self, id: i64) -> anyhow::Result<Option<ConnectionRecord>> {
        let sql =
            format!("SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections WHERE id = $1");
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// Connections whose tenant name or realm id equals `needle` exactly.
    pub async fn find_connections(&self, needle: &str) -> anyhow::Result<Vec<ConnectionRecord>> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections \
             WHERE tenant = $1 OR realm_id = $1 \
             ORDER BY tenant, environment, realm_id"
        );
        Ok(dispatch!(self, p => sqlx::query_as(&sql).bind(needle).fetch_all(p).await)?)
    }

    /// Ids of connections that hold refreshable tokens.
    pub async fn live_connection_ids(&self) -> anyhow::Result<Vec<i64>> {
        let sql = "SELECT id FROM connections WHERE status IN ('active', 'expiring') ORDER BY id";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).fetch_all(p).await)?)
    }

    /// Live connections whose access token expires before `before` (or is unknown).
    pub async fn due_connection_ids(&self, before: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
        let sql = "SELECT id FROM connections WHERE status IN ('active', 'expiring') \
                   AND (access_expires_at IS NULL OR access_expires_at < $1) \
                   ORDER BY refresh_expires_at, access_expires_at, id";
        Ok(dispatch!(self, p => sqlx::query_scalar(sql).bind(before).fetch_all(p).await)?)
    }

    /// Puts off the next scheduled attempt on a connection that nobody else holds (after an
    /// error that reached no verdict, such as a stored value that will not open), so the
    /// scheduler does not pick it again at once.
    pub async fn defer(&self, id: i64, owner: &str, until: DateTime<Utc>) -> anyhow::Result<()> {
        let sql = "UPDATE connections SET next_attempt_at = $1 \
                   WHERE id = $2 AND (lease_owner IS NULL OR lease_owner = $3)";
        dispatch_write!(self, p => sqlx::query(sql).bind(until).bind(id).bind(owner).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn load_sealed(&self, id: i64) -> anyhow::Result<Option<SealedTokens>> {
        let sql = "SELECT version, access_token, refresh_token, previous_refresh_token FROM connections WHERE id = $1";
        Ok(dispatch!(self, p => sqlx::query_as(sql).bind(id).fetch_optional(p).await)?)
    }

    /// Counts by (environment, status), for summaries and metrics.
    pub async fn count_by_status(&self) -> anyhow::Result<Vec<(Environment, Status, i64)>> {
        let sql =
            "SELECT environment, status, COUNT(*) FROM connections GROUP BY environment, status";
        let rows: Vec<(String, String, i64)> =
            dispatch!(self, p => sqlx::query_as(sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(|(e, s, n)| {
                Ok((
                    e.parse().map_err(anyhow::Error::msg)?,
                    s.parse().map_err(anyhow::Error::msg)?,
                    n,
                ))
            })
            .collect()
    }
}

impl Tx {
    pub async fn find_by_realm(
        &mut self,
        env: Environment,
        realm: &str,
    ) -> anyhow::Result<Option<ConnectionRecord>> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM connections WHERE environment = $1 AND realm_id = $2"
        );
        Ok(
            dispatch_tx!(self, c => sqlx::query_as(&sql).bind(env.as_str()).bind(realm).fetch_optional(c).await)?,
        )
    }

    pub async fn insert_connection(
        &mut self,
        n: &NewConnection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        let sql = "INSERT INTO connections (tenant, realm_id, environment, company_name, scopes, status, \
                   access_expires_at, refresh_issued_at, refresh_expires_at, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(&n.tenant).bind(n.realm_id.as_str()).bind(n.environment.as_str()).bind(&n.company_name)
            .bind(&n.scopes).bind(n.status.as_str()).bind(n.access_expires_at).bind(n.refresh_issued_at)
            .bind(n.refresh_expires_at).bind(now)
            .fetch_one(c).await)?)
    }

    /// `qbo-console demo` only: records a connection that holds no tokens (pending or
    /// revoked) with the reason it is there, because the flows that would create such rows
    /// (reconnect links, revocation) do not exist yet. Refuses a status that holds tokens:
    /// live connections are only ever made by the real flows.
    pub async fn insert_demo_connection(
        &mut self,
        n: &NewConnection,
        reason: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        if n.status.has_tokens() || n.access_expires_at.is_some() {
            anyhow::bail!(
                "a demo connection in status {} would need tokens; only the real flows create those",
                n.status
            );
        }
        let sql = "INSERT INTO connections (tenant, realm_id, environment, company_name, scopes, status, \
                   status_reason, refresh_issued_at, refresh_expires_at, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id";
        Ok(dispatch_tx!(self, c => sqlx::query_scalar(sql)
            .bind(&n.tenant).bind(n.realm_id.as_str()).bind(n.environment.as_str()).bind(&n.company_name)
            .bind(&n.scopes).bind(n.status.as_str()).bind(reason).bind(n.refresh_issued_at)
            .bind(n.refresh_expires_at).bind(now)
            .fetch_one(c).await)?)
    }

    /// Overwrites an existing connection's identity and clocks (import --update). The row
    /// id, and with it the history, stays.
    pub async fn update_imported(
        &mut self,
        id: i64,
        n: &NewConnection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let sql = "UPDATE connections SET tenant = $1, company_name = COALESCE($2, company_name), status = $3, \
                   status_reason = NULL, access_expires_at = $4, refresh_issued_at = $5, refresh_expires_at = $6, \
                   consecutive_failures = 0, next_attempt_at = NULL, last_error_class = NULL, last_error_detail = NULL, \
                   previous_refresh_token = NULL, previous_refresh_replaced_at = NULL, \
                   version = version + 1, updated_at = $7 WHERE id = $8";
        dispatch_tx!(self, c => sqlx::query(sql)
            .bind(&n.tenant).bind(&n.company_name).bind(n.status.as_str()).bind(n.access_expires_at)
            .bind(n.refresh_issued_at).bind(n.refresh_expires_at).bind(now).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores sealed tokens as given (import). `access` None clears the access token.
    pub async fn set_sealed(
        &mut self,
        id: i64,
        access: Option<&[u8]>,
        refresh: &[u8],
    ) -> anyhow::Result<()> {
        let sql = "UPDATE connections SET access_token = $1, refresh_token = $2 WHERE id = $3";
        dispatch_tx!(self, c => sqlx::query(sql).bind(access).bind(refresh).bind(id).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Writes the results of successful refreshes and releases their leases, in a few
    /// multi-row statements (the group-commit path). Returns the ids written: a row whose
    /// lease is no longer ours (another owner, or another fence) is left as its new holder
    /// made it, and is not returned.
    pub async fn apply_refresh_successes(
        &mut self,
        rows: &[(&Lease, &TokenUpdate)],
    ) -> anyhow::Result<Vec<i64>> {
        let mut written = Vec::with_capacity(rows.len());
        for chunk in super::fixed_chunks(rows) {
            let ids: Vec<i64> = dispatch_tx!(self, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE connections SET access_token = v.access_token, refresh_token = v.refresh_token, \
                     previous_refresh_token = COALESCE(v.previous_refresh_token, connections.previous_refresh_token), \
                     previous_refresh_replaced_at = CASE WHEN v.previous_refresh_token IS NULL \
                         THEN connections.previous_refresh_replaced_at ELSE v.at END, \
                     access_expires_at = v.access_expires_at, \
                     refresh_issued_at = COALESCE(v.refresh_issued_at, connections.refresh_issued_at), \
                     refresh_expires_at = v.refresh_expires_at, \
                     hard_expires_at = COALESCE(v.hard_expires_at, connections.hard_expires_at), \
                     status = v.status, status_reason = NULL, last_refresh_at = v.at, last_refresh_outcome = 'ok', \
                     last_error_class = NULL, last_error_detail = NULL, last_intuit_tid = v.intuit_tid, \
                     consecutive_failures = 0, next_attempt_at = v.next_attempt_at, lease_owner = NULL, \
                     lease_until = NULL, inflight_until = NULL, unanswered_since = NULL, unanswered_by = NULL, \
                     unanswered_fence = NULL, version = connections.version + 1, updated_at = v.at FROM (",
                );
                for (i, (lease, u)) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" UNION ALL ");
                    }
                    q.push("SELECT ").push_bind(lease.id).push(" AS id, ").push_bind(lease.owner.as_str()).push(" AS owner, ")
                        .push_bind(lease.fence).push(" AS fence, ")
                        .push_bind(&u.access_token).push(" AS access_token, ").push_bind(&u.refresh_token)
                        .push(" AS refresh_token, ").push_bind(u.previous_refresh_token.as_deref())
                        .push(" AS previous_refresh_token, ").push_bind(u.at).push(" AS at, ")
                        .push_bind(u.access_expires_at).push(" AS access_expires_at, ").push_bind(u.refresh_issued_at)
                        .push(" AS refresh_issued_at, ").push_bind(u.refresh_expires_at).push(" AS refresh_expires_at, ")
                        .push_bind(u.hard_expires_at).push(" AS hard_expires_at, ").push_bind(u.status.as_str())
                        .push(" AS status, ").push_bind(&u.intuit_tid).push(" AS intuit_tid, ")
                        .push_bind(u.next_attempt_at).push(" AS next_attempt_at");
                }
                q.push(") AS v WHERE connections.id = v.id AND connections.lease_owner = v.owner \
                        AND connections.lease_fence = v.fence RETURNING connections.id");
                q.build_query_scalar().fetch_all(c).await
            })?;
            written.extend(ids);
        }
        Ok(written)
    }

    /// Records a failed refresh that leaves the tokens in place (transient, rate limited,
    /// invalid_client, other) and releases the lease, only while `lease` holds the row.
    /// `answered`: Intuit's answer says this request did not use the token (a 4xx, a 429),
    /// so this holder's own unanswered mark goes; without an answer (a timeout, a 5xx,
    /// garbage) it stays. An earlier holder's mark always stays: a 429 to this request says
    /// nothing about whether that earlier request rotated the token, and clearing it would
    /// let the next `invalid_grant` blame the customer for an answer lost in a kill.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_refresh_failure(
        &mut self,
        lease: &Lease,
        answered: bool,
        class: ErrorClass,
        detail: &str,
        tid: Option<&str>,
        next_attempt: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET last_refresh_at = $1, last_refresh_outcome = 'failed', last_error_class = $2, \
                   last_error_detail = $3, last_intuit_tid = $4, consecutive_failures = consecutive_failures + 1, \
                   next_attempt_at = $5, lease_owner = NULL, lease_until = NULL, inflight_until = NULL, \
                   unanswered_since = CASE WHEN $9 AND unanswered_fence = $8 THEN NULL ELSE unanswered_since END, \
                   unanswered_by = CASE WHEN $9 AND unanswered_fence = $8 THEN NULL ELSE unanswered_by END, \
                   unanswered_fence = CASE WHEN $9 AND unanswered_fence = $8 THEN NULL ELSE unanswered_fence END, \
                   version = version + 1, updated_at = $1 \
                   WHERE id = $6 AND lease_owner = $7 AND lease_fence = $8";
        let done = dispatch_tx!(self, c => sqlx::query(sql)
            .bind(now).bind(class.as_str()).bind(detail).bind(tid).bind(next_attempt).bind(lease.id)
            .bind(&lease.owner).bind(lease.fence).bind(answered)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Reads the sealed refresh token and the unanswered mark inside the transaction,
    /// locking the row on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already holds the database
    /// write lock).
    pub async fn sealed_refresh_for_update(
        &mut self,
        id: i64,
    ) -> anyhow::Result<(Option<Vec<u8>>, Option<Unanswered>)> {
        type Row = (
            Option<Vec<u8>>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<i64>,
        );
        let sql = "SELECT refresh_token, unanswered_since, unanswered_by, unanswered_fence \
                   FROM connections WHERE id = $1";
        let row: Option<Row> = match &mut self.inner {
            TxInner::Sqlite(t) => {
                sqlx::query_as(sql)
                    .bind(id)
                    .fetch_optional(&mut **t)
                    .await?
            }
            TxInner::Postgres(t) => {
                sqlx::query_as(&format!("{sql} FOR UPDATE"))
                    .bind(id)
                    .fetch_optional(&mut **t)
                    .await?
            }
        };
        Ok(match row {
            None => (None, None),
            Some((token, since, by, fence)) => (token, Unanswered::from_row((since, by, fence))),
        })
    }

    /// Marks a connection dead: only the customer can bring it back. Only while `lease`
    /// holds the row; returns whether it wrote.
    pub async fn mark_needs_reconnect(
        &mut self,
        lease: &Lease,
        reason: &str,
        tid: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET status = 'needs_reconnect', status_reason = $1, last_refresh_at = $2, \
                   last_refresh_outcome = 'failed', last_error_class = 'invalid_grant', last_error_detail = $1, \
                   last_intuit_tid = $3, consecutive_failures = consecutive_failures + 1, next_attempt_at = NULL, \
                   lease_owner = NULL, lease_until = NULL, inflight_until = NULL, unanswered_since = NULL, \
                   unanswered_by = NULL, unanswered_fence = NULL, version = version + 1, updated_at = $2 \
                   WHERE id = $4 AND lease_owner = $5 AND lease_fence = $6";
        let done = dispatch_tx!(self, c => sqlx::query(sql).bind(reason).bind(now).bind(tid).bind(lease.id)
            .bind(&lease.owner).bind(lease.fence).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Records a CompanyInfo health check.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_sync(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        status: SyncStatus,
        detail: &str,
        company_name: Option<&str>,
        tid: Option<&str>,
        error_class: Option<ErrorClass>,
    ) -> anyhow::Result<()> {
        // last_sync_ok_at keeps the last success through later failures (the forecast's
        // "no successful sync for N days").
        let sql = "UPDATE connections SET last_sync_at = $1, last_sync_status = $2, last_sync_detail = $3, \
                   last_sync_ok_at = CASE WHEN $2 = 'ok' THEN $1 ELSE last_sync_ok_at END, \
                   company_name = COALESCE($4, company_name), last_intuit_tid = COALESCE($5, last_intuit_tid), \
                   last_error_class = COALESCE($6, last_error_class), version = version + 1, updated_at = $1 WHERE id = $7";
        dispatch_tx!(self, c => sqlx::query(sql)
            .bind(now).bind(status.as_str()).bind(detail).bind(company_name).bind(tid).bind(error_class.map(|e| e.as_str())).bind(id)
            .execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
