//! The audit log: every credential action, hash-chained so that changing, deleting or
//! reordering a row is detectable.
//!
//! Each event is appended in the same transaction as the change it records: if the audit
//! write fails, the change does not happen. Events carry keyed token fingerprints, never
//! tokens.

mod chain;
mod event;

pub use chain::{verify, VerifyReport};
pub use event::{AuditEvent, AuditRecord, Outcome};

use crate::store::{Change, Store, Tx, TxInner, NOTIFY_CHANNEL};

impl Tx {
    /// Appends one event to the chain. Concurrent writers serialize on the chain head
    /// (the SQLite write lock, or a row lock on PostgreSQL), so the chain stays linear.
    pub async fn audit(&mut self, event: &AuditEvent) -> anyhow::Result<AuditRecord> {
        let (last_seq, last_hash, last_at) = self.audit_head_for_update().await?;
        let record = event.seal(last_seq + 1, &last_hash, last_at.as_deref());
        self.insert_audit(&record).await?;
        let change = Change {
            audit_seq: record.seq,
            connection_id: record.connection_id,
        };
        if let TxInner::Postgres(t) = &mut self.inner {
            // Delivered to every listening daemon when (and only if) this transaction commits.
            let payload = serde_json::to_string(&change)?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(payload)
                .execute(&mut **t)
                .await?;
        }
        self.changes.push(change);
        Ok(record)
    }
}

impl Store {
    /// The latest `n` events, oldest first.
    pub async fn audit_tail(&self, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let mut rows = self.audit_page_desc(n).await?;
        rows.reverse();
        Ok(rows)
    }
}
