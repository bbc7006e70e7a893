//! Reading every connection without holding them all: the daemon's compact copy of the
//! table (`roster`) is built from a stream of rows, one at a time, and a screen's window
//! is read by its ids.

use super::rows::{ConnectionRecord, LAST_ACT_COLUMNS, RECORD_COLUMNS};
use super::{dispatch, fixed_chunks, Store};
use futures_util::TryStreamExt;

impl Store {
    /// Hands every connection to `each`, in id order, as the rows arrive: memory stays that
    /// of one page whatever the table's size. Read a page per statement, so no reader holds
    /// one snapshot for the half minute a million rows take: on SQLite such a reader keeps
    /// the write-ahead log from being emptied while the scheduler writes.
    pub async fn each_connection(
        &self,
        mut each: impl FnMut(ConnectionRecord) + Send,
    ) -> anyhow::Result<u64> {
        const PAGE: i64 = 5_000;
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections WHERE id > $1 \
             ORDER BY id LIMIT $2"
        );
        let mut n = 0u64;
        let mut after = 0i64;
        loop {
            let mut read = 0i64;
            dispatch!(self, p => {
                let mut rows = sqlx::query_as::<_, ConnectionRecord>(&sql).bind(after).bind(PAGE).fetch(p);
                while let Some(r) = rows.try_next().await? {
                    after = r.id;
                    each(r);
                    read += 1;
                }
            });
            n += read as u64;
            if read < PAGE {
                return Ok(n);
            }
        }
    }

    /// The connections with these ids that exist, in no particular order.
    pub async fn connections_by_id(&self, ids: &[i64]) -> anyhow::Result<Vec<ConnectionRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for piece in fixed_chunks(ids) {
            let marks = (1..=piece.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections WHERE id IN ({marks})"
            );
            let rows: Vec<ConnectionRecord> = dispatch!(self, p => {
                let mut q = sqlx::query_as(&sql);
                for id in piece {
                    q = q.bind(*id);
                }
                q.fetch_all(p).await
            })?;
            out.extend(rows);
        }
        Ok(out)
    }
}

/// Where a page of `list` ends: its last row's tenant, environment, realm id (empty for a
/// company that has not consented yet) and id, the listing's order (the id parts rows the
/// rest would tie, such as two invitations under one name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListMark {
    pub tenant: String,
    pub environment: String,
    pub realm_id: String,
    pub id: i64,
}

impl ListMark {
    pub fn after(r: &ConnectionRecord) -> ListMark {
        ListMark {
            tenant: r.tenant.clone(),
            environment: r.environment.as_str().to_string(),
            realm_id: if r.realm_id.is_unknown() {
                String::new()
            } else {
                r.realm_id.as_str().to_string()
            },
            id: r.id,
        }
    }
}

impl Store {
    /// Up to `n` connections after `after` in the listing's order (tenant, environment,
    /// realm id), optionally of one status and environment: a listing read page by page, so
    /// that its memory is a page's whatever the table's size. The tenant index finds each
    /// page's start.
    pub async fn list_page(
        &self,
        f: &super::rows::ConnectionFilter,
        after: Option<&ListMark>,
        n: u32,
    ) -> anyhow::Result<Vec<ConnectionRecord>> {
        // Two texts, so that the planner sees a plain range on the tenant index for every
        // page after the first (an `$3 IS NULL OR …` hides it, and each page then sorts the
        // whole table again).
        let from = if after.is_some() {
            "AND tenant >= $3 AND (tenant > $3 OR environment > $4 \
             OR (environment = $4 AND (COALESCE(realm_id, '') > $5 \
                 OR (COALESCE(realm_id, '') = $5 AND id > $6))))"
        } else {
            "AND $3 IS NULL AND $4 IS NULL AND $5 IS NULL AND $6 IS NULL"
        };
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR environment = $2) {from} \
             ORDER BY tenant, environment, COALESCE(realm_id, ''), id LIMIT $7"
        );
        let status = f.status.map(|s| s.as_str());
        let env = f.environment.map(|e| e.as_str());
        let (t, e, r, i) = match after {
            Some(m) => (
                Some(m.tenant.as_str()),
                Some(m.environment.as_str()),
                Some(m.realm_id.as_str()),
                Some(m.id),
            ),
            None => (None, None, None, None),
        };
        Ok(dispatch!(self, p => sqlx::query_as(&sql)
            .bind(status).bind(env).bind(t).bind(e).bind(r).bind(i).bind(i64::from(n))
            .fetch_all(p).await)?)
    }
}
