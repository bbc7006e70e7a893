//! The audit log: every credential action, hash-chained so that changing, deleting or
//! reordering a row is detectable.
//!
//! Each event is appended in the same transaction as the change it records: if the audit
//! write fails, the change does not happen. Events carry keyed token fingerprints, never
//! tokens.

use chain::AUDIT_COLUMNS;

mod blocked;
mod chain;
pub mod export;
mod held;
mod page;
pub mod quarantine;
pub mod retention;
pub mod signing;

pub use blocked::{chain_blocked, ChainBlocked, HeadCheck};
pub use chain::{verify, VerifyReport};
pub use page::{AuditPage, AuditQuery, MAX_PAGE};
pub use qbo_core::audit::{
    markdown_table, Action, AuditEvent, AuditRecord, Damage, EventSpec, Field, Outcome, Target,
    CATALOGUE, README_END, README_START,
};

use crate::{Change, Store, Tx, TxInner, NOTIFY_CHANNEL};

/// Names the connection an event is about, from its row: the event's shape lives in the
/// core, the row here.
pub trait AboutConnection {
    fn about(self, rec: &crate::ConnectionRecord) -> Self;
}

impl AboutConnection for AuditEvent {
    fn about(self, rec: &crate::ConnectionRecord) -> Self {
        self.target(
            rec.id,
            rec.environment.as_str(),
            rec.realm_id.as_str(),
            &rec.tenant,
        )
    }
}

impl Tx {
    /// Appends one event to the chain. Concurrent writers serialize on the chain head
    /// (the SQLite write lock, or a row lock on PostgreSQL), so the chain stays linear.
    pub async fn audit(&mut self, event: &AuditEvent) -> anyhow::Result<AuditRecord> {
        let mut records = self.audit_many(&[event]).await?;
        records
            .pop()
            .ok_or_else(|| anyhow::anyhow!("audit append returned no record"))
    }

    /// Appends several events in order: the chain head is read and written once, the rows
    /// inserted in multi-row statements (the group-commit path).
    pub async fn audit_many(&mut self, events: &[&AuditEvent]) -> anyhow::Result<Vec<AuditRecord>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // From here the events can only be stored by this transaction's commit.
        self.audit.pending = true;
        let (mut seq, mut hash, mut at) = self.audit_head_for_update().await?;
        // A row stored past the head would make the insert fail on its sequence number
        // (or a later one, further on): name it, and the verb that repairs it, instead.
        self.audit_appendable().await?;
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            seq += 1;
            let record = event.seal(seq, &hash, at.as_deref());
            hash = record.hash.clone();
            at = Some(record.at.clone());
            records.push(record);
        }
        self.insert_audit(&records).await?;
        let changes: Vec<Change> = records
            .iter()
            .map(|record| Change {
                audit_seq: record.seq,
                connection_id: record.connection_id,
            })
            .collect();
        if let TxInner::Postgres(t) = &mut self.inner {
            // Delivered to every listening daemon when (and only if) this commits, in order:
            // one statement for the whole batch (an import's thousand rows were a thousand
            // round trips).
            let payloads = changes
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            sqlx::query(
                "SELECT pg_notify($1, u.p) FROM UNNEST($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY u.n",
            )
            .bind(NOTIFY_CHANNEL)
            .bind(payloads)
            .execute(&mut **t)
            .await?;
        }
        self.changes.extend(changes);
        Ok(records)
    }
}

impl Store {
    /// The latest `n` events, oldest first.
    pub async fn audit_tail(&self, n: i64) -> anyhow::Result<Vec<AuditRecord>> {
        let mut rows = self.audit_page_desc(n).await?;
        rows.reverse();
        Ok(rows)
    }

    /// Where the latest `n` events start and end: read from there forward a page at a time
    /// (`audit_between`), a tail of any length holds one page. `None` for an empty log.
    pub async fn audit_tail_bounds(&self, n: i64) -> anyhow::Result<Option<(i64, i64)>> {
        // The index walks n entries back from the newest; with fewer, the tail is all.
        let sql = "SELECT MIN(seq), MAX(seq) FROM \
                   (SELECT seq FROM audit_events ORDER BY seq DESC LIMIT $1) AS tail";
        let (first, last): (Option<i64>, Option<i64>) =
            crate::dispatch!(self, p => sqlx::query_as(sql).bind(n.max(1)).fetch_one(p).await)?;
        Ok(first.zip(last))
    }

    /// Up to `n` events with `after < seq <= through`, oldest first.
    pub async fn audit_between(
        &self,
        after: i64,
        through: i64,
        n: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE seq > $1 AND seq <= $2 \
             ORDER BY seq LIMIT $3"
        );
        Ok(
            crate::dispatch!(self, p => sqlx::query_as(&sql).bind(after).bind(through).bind(n).fetch_all(p).await)?,
        )
    }
}
