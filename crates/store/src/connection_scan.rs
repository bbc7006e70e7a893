//! Reading every connection without holding them all: the daemon's compact copy of the
//! table (`roster`) is built from a stream of rows, one at a time, and a screen's window
//! is read by its ids.

use super::rows::{ConnectionRecord, LAST_ACT_COLUMNS, RECORD_COLUMNS};
use super::{dispatch, fixed_chunks, Store};
use futures_util::TryStreamExt;

impl Store {
    /// Hands every connection to `each`, in id order, as the rows arrive: memory stays that
    /// of one row whatever the table's size.
    pub async fn each_connection(
        &self,
        mut each: impl FnMut(ConnectionRecord) + Send,
    ) -> anyhow::Result<u64> {
        let sql =
            format!("SELECT {RECORD_COLUMNS}, {LAST_ACT_COLUMNS} FROM connections ORDER BY id");
        let mut n = 0u64;
        dispatch!(self, p => {
            let mut rows = sqlx::query_as::<_, ConnectionRecord>(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                each(r);
                n += 1;
            }
        });
        Ok(n)
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
