//! The queries key rotation and `keys status` make: which key sealed what, and re-sealed
//! values written back under the rotation's lease.

use super::{dispatch, dispatch_write, Store};

/// How the values sealed under one key id are spread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedUnder {
    /// The key id bytes as stored in each value's header.
    pub key_id: Vec<u8>,
    /// Sealed values (access, refresh and previous refresh tokens) under it.
    pub values: i64,
    /// Connections holding at least one of them.
    pub connections: i64,
}

/// Every sealed column with its key id (bytes 2 to 9 of the value: after the format byte).
const SEALED_UNDER: &str = "\
    SELECT id, substr(access_token, 2, 8) AS k FROM connections WHERE access_token IS NOT NULL \
    UNION ALL SELECT id, substr(refresh_token, 2, 8) AS k FROM connections WHERE refresh_token IS NOT NULL \
    UNION ALL SELECT id, substr(previous_refresh_token, 2, 8) AS k FROM connections \
      WHERE previous_refresh_token IS NOT NULL";

impl Store {
    /// Counts of sealed values and connections by the key id that sealed them.
    pub async fn sealed_by_key(&self) -> anyhow::Result<Vec<SealedUnder>> {
        let sql = format!(
            "SELECT k, COUNT(*), COUNT(DISTINCT id) FROM ({SEALED_UNDER}) s GROUP BY k ORDER BY k"
        );
        let rows: Vec<(Vec<u8>, i64, i64)> =
            dispatch!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(key_id, values, connections)| SealedUnder {
                key_id,
                values,
                connections,
            })
            .collect())
    }

    /// Connections holding a value sealed under any key but `key_id`: what a rotation to
    /// `key_id` still has to do. Each value records its key, so this is also where an
    /// interrupted rotation resumes.
    pub async fn connections_not_under(&self, key_id: &[u8]) -> anyhow::Result<Vec<i64>> {
        let sql = format!("SELECT DISTINCT id FROM ({SEALED_UNDER}) s WHERE k <> $1 ORDER BY id");
        Ok(dispatch!(self, p => sqlx::query_scalar(&sql).bind(key_id).fetch_all(p).await)?)
    }

    /// Writes re-sealed values and releases the lease, only while `owner` still holds it
    /// and the row is as it was read (`version`): a refresh that wrote in between wins,
    /// and the rotation reads the row again. `None` leaves a column as it is.
    pub async fn write_resealed(
        &self,
        id: i64,
        owner: &str,
        version: i64,
        access: Option<&[u8]>,
        refresh: Option<&[u8]>,
        previous: Option<&[u8]>,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE connections SET access_token = COALESCE($1, access_token), \
                   refresh_token = COALESCE($2, refresh_token), \
                   previous_refresh_token = COALESCE($3, previous_refresh_token), \
                   version = version + 1, lease_owner = NULL, lease_until = NULL \
                   WHERE id = $4 AND lease_owner = $5 AND version = $6";
        let n = dispatch_write!(self, p => sqlx::query(sql)
            .bind(access).bind(refresh).bind(previous).bind(id).bind(owner).bind(version)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
