//! The writes of an import, a batch at a time: which of a batch's realms exist already,
//! the new connections inserted together, their sealed tokens stored together. A row at a
//! time, a million rows were four million statements; a batch of a thousand is a few dozen.

use super::rows::NewConnection;
use super::{dispatch, dispatch_tx, fixed_chunks, Store, Tx};
use chrono::{DateTime, Utc};
use qbo_core::domain::Environment;

/// A connection an import names that exists already.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Present {
    pub id: i64,
    pub realm_id: String,
    pub tenant: String,
}

/// Sealed tokens for one connection, as an import stores them.
pub struct SealedPair<'a> {
    pub id: i64,
    pub access: Option<&'a [u8]>,
    pub refresh: &'a [u8],
}

/// One statement text per piece size (see `fixed_chunks`): `environment = $1 AND realm_id
/// IN (…)`, found by the (environment, realm_id) unique index on both engines.
macro_rules! present_in {
    ($c:ident, $env:expr, $piece:expr) => {{
        let mut q = sqlx::QueryBuilder::new(
            "SELECT id, realm_id, tenant FROM connections WHERE environment = ",
        );
        q.push_bind($env.as_str()).push(" AND realm_id IN (");
        let mut list = q.separated(", ");
        for realm in $piece {
            list.push_bind(*realm);
        }
        q.push(")");
        q.build_query_as::<Present>().fetch_all($c).await
    }};
}

impl Store {
    /// Which of `realms` (of one environment) exist, read outside any transaction: the
    /// check an import makes of its whole file before it writes anything.
    pub async fn realms_present(
        &self,
        env: Environment,
        realms: &[&str],
    ) -> anyhow::Result<Vec<Present>> {
        let mut out = Vec::new();
        for piece in fixed_chunks(realms) {
            out.extend(dispatch!(self, c => present_in!(c, env, piece))?);
        }
        Ok(out)
    }
}

impl Tx {
    /// Which of `realms` (of one environment) exist, inside the transaction that will write
    /// the batch, so that a connection made since the check is seen.
    pub async fn realms_present(
        &mut self,
        env: Environment,
        realms: &[&str],
    ) -> anyhow::Result<Vec<Present>> {
        let mut out = Vec::new();
        for piece in fixed_chunks(realms) {
            out.extend(dispatch_tx!(self, c => present_in!(c, env, piece))?);
        }
        Ok(out)
    }

    /// Inserts new connections in multi-row statements. Returns each one's id with its
    /// (environment, realm id): neither engine promises RETURNING rows in VALUES order.
    pub async fn insert_connections(
        &mut self,
        rows: &[&NewConnection],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(i64, String, String)>> {
        let mut out = Vec::with_capacity(rows.len());
        for piece in fixed_chunks(rows) {
            let ids: Vec<(i64, String, String)> = dispatch_tx!(self, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO connections (tenant, realm_id, environment, company_name, scopes, status, \
                     access_expires_at, refresh_issued_at, refresh_expires_at, created_at, updated_at) ",
                );
                q.push_values(piece, |mut b, n| {
                    b.push_bind(&n.tenant).push_bind(n.realm_id.as_str()).push_bind(n.environment.as_str())
                        .push_bind(&n.company_name).push_bind(&n.scopes).push_bind(n.status.as_str())
                        .push_bind(n.access_expires_at).push_bind(n.refresh_issued_at)
                        .push_bind(n.refresh_expires_at).push_bind(now).push_bind(now);
                });
                q.push(" RETURNING id, environment, realm_id");
                q.build_query_as().fetch_all(c).await
            })?;
            out.extend(ids);
        }
        Ok(out)
    }

    /// Stores sealed tokens for many connections in multi-row statements. `access` None
    /// clears the access token.
    pub async fn set_sealed_many(&mut self, rows: &[SealedPair<'_>]) -> anyhow::Result<()> {
        for piece in fixed_chunks(rows) {
            dispatch_tx!(self, c => {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE connections SET access_token = v.access_token, refresh_token = v.refresh_token FROM (",
                );
                for (i, r) in piece.iter().enumerate() {
                    if i > 0 {
                        q.push(" UNION ALL ");
                    }
                    q.push("SELECT ").push_bind(r.id).push(" AS id, ").push_bind(r.access)
                        .push(" AS access_token, ").push_bind(r.refresh).push(" AS refresh_token");
                }
                q.push(") AS v WHERE connections.id = v.id");
                q.build().execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(())
    }
}
